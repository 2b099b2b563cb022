#!/usr/bin/env bash
# Repeat the fault-injection tests (server lifecycle, failover, lost invalidation, missed events, the
# near cache's worker processes, the network lab's partitions) N times; count the passing rounds and any
# server or worker process, network-lab namespace or guard route left behind after a round. SOAK_TESTS
# overrides which tests a round runs.
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
PY=_build/venv/bin/python
tests=${SOAK_TESTS:-"tests/test_servers.py tests/test_redis.py tests/test_valkey.py tests/test_memcached.py
  tests/test_in_process_lru.py::test_near_cache_invalidates_every_process_and_survives_a_broken_link
  tests/test_read_through.py tests/test_netlab.py tests/test_partition.py tests/test_network.py
  tests/test_interrupt.py tests/test_economics.py::test_hits_on_real_servers_end_to_end
  tests/test_no_cache.py::test_real_collapse_is_bounded_and_leaves_nothing_running
  tests/test_in_process_lru.py::test_gc_measurement_in_a_fresh_process
  tests/test_in_process_lru.py::test_gc_under_traffic_counts_the_request_path"}
# servers of this soak only: every process it starts carries CACHEBOOK_SESSION (see experiments/processes.py)
export CACHEBOOK_SESSION="soak-$$"
servers() { $PY -c 'import os; from experiments.lab.processes import server_processes as s; print(len(s(os.environ["CACHEBOOK_SESSION"])))'; }
# what a finished round left of the network lab: namespaces whose owner is gone, a guard route with no lab to guard
# (a live run's lab beside the soak — a book build, another test session — is not counted)
labs() { $PY -c 'from experiments.lab.netlab import guard_route_orphaned as g, orphaned_namespaces as n; print(len(n()) + g())'; }
before=$(servers); passed=0; leaked=0; netleft=0; start=$(date +%s)
for i in $(seq "$rounds"); do
  # shellcheck disable=SC2086  # SOAK_TESTS is a list of test ids
  if $PY -m pytest -q -x $tests >"_build/soak-$i.log" 2>&1; then
    passed=$((passed + 1))
  else
    echo "soak: round $i failed, see _build/soak-$i.log"
  fi
  now=$(servers); [ "$now" -gt "$before" ] && leaked=$((leaked + now - before)) && echo "soak: round $i left $((now - before)) servers"
  left=$(labs); [ "$left" -gt 0 ] && netleft=$((netleft + left)) && echo "soak: round $i left $left lab namespaces or routes"
done
echo "soak: $passed/$rounds rounds passed, $leaked server processes and $netleft lab namespaces or routes left behind, $(( $(date +%s) - start )) s"
[ "$passed" -eq "$rounds" ] && [ "$leaked" -eq 0 ] && [ "$netleft" -eq 0 ]
