"""`python -m experiments.decide`: the examples rank as their files say, one field flips an answer, the command
line fails in one line, and the page opens offline in headless Chromium with every chart drawn."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from browser import visit_all

from experiments.decide import edge, engine
from experiments.decide.__main__ import main
from experiments.decide.workload import load
from experiments.paths import DATA, ROOT

EXAMPLES = DATA / "workloads"


def first(w) -> tuple[str, str]:
    ordered, _ = engine.rank(w)
    return ordered[0].option, "rejected" if ordered[0].rejected_because else "viable"


EXPECTED_FIRST = {"taxonomy": "in-process", "dynamodb-hot-set": "valkey-dynamodb", "prices": "no-cache",
                  "network-bound": "near-cache", "large-rare-catalog": "valkey-serverless",
                  "durable-wins": "valkey-durable"}
"""What each example file says should come first (the chatbot and the launch: nothing viable; see their files)."""


@pytest.mark.parametrize("name,expected", sorted(EXPECTED_FIRST.items()))
def test_each_example_ranks_as_its_file_says(name, expected):
    assert first(load(EXAMPLES / f"{name}.toml")) == (expected, "viable")


def test_the_note_s_chatbot_has_no_headroom_and_a_larger_catalog_flips_it():
    """The catalog is sized for exactly its planned misses: at 100 % no plan is viable; at 1.25x capacity (80 %) the
    durable Valkey comes first, and the flip search finds that capacity."""
    chatbot = load(EXAMPLES / "chatbot.toml")
    ordered, numbers = engine.rank(chatbot)
    assert all(a.rejected_because for a in ordered)
    assert 0.99 < numbers["valkey"]["origin_load_normal"] < 1.01
    roomy = dataclasses.replace(chatbot, origin_capacity_per_s=chatbot.origin_capacity_per_s * 1.25)
    assert first(roomy) == ("valkey-durable", "viable")
    (capacity,) = [f for f in edge.flips(chatbot) if f["input"] == "origin_capacity_per_s" and f["direction"] == "up"]
    assert capacity["first"] == "valkey-durable" and capacity["factor"] == pytest.approx(1.25, rel=0.02)


def test_the_launch_overloads_the_catalog_whatever_the_cache():
    ordered, _ = engine.rank(load(EXAMPLES / "launch.toml"))
    assert all(a.rejected_because for a in ordered)


def _family(w, **changes):
    return dataclasses.replace(w, families=(dataclasses.replace(w.families[0], **changes),))


def test_changed_by_events_flips_the_taxonomy_from_per_task_caches_to_a_shared_one():
    taxonomy = load(EXAMPLES / "taxonomy.toml")
    option, verdict = first(_family(taxonomy, changed_by_events=True, max_stale_s=5.0))
    assert option != "in-process" and verdict == "viable"
    ordered, _ = engine.rank(_family(taxonomy, changed_by_events=True, max_stale_s=5.0))
    in_process = next(a for a in ordered if a.option == "in-process")
    assert any("reads live" in r for r in in_process.reasons)


def test_in_dynamodb_decides_whether_dax_can_run():
    hot = load(EXAMPLES / "dynamodb-hot-set.toml")
    assert first(_family(hot, in_dynamodb=False))[0] != "dax"
    _, families = engine.rank(_family(hot, in_dynamodb=False))
    assert families["dax"]["families"]["summary"]["read_live_because"] == "not in DynamoDB"


def test_cacheable_false_leaves_a_workload_without_a_viable_cache():
    durable = load(EXAMPLES / "durable-wins.toml")
    assert first(durable) == ("valkey-durable", "viable")
    _, verdict = first(_family(durable, cacheable=False))
    assert verdict == "rejected"


def test_a_trace_family_is_replayed(tmp_path):
    rows = "\n".join(f"{t},k{t % 7},2048" for t in range(400))
    (tmp_path / "t.csv").write_text("timestamp,key,size\n" + rows + "\n")
    text = (EXAMPLES / "taxonomy.toml").read_text().replace("keys = 2000\nzipf_alpha = 0.8", 'trace = "t.csv"').replace(
        "value_kb = 1.0\n", "")
    (tmp_path / "w.toml").write_text(text)
    _, families = engine.rank(load(tmp_path / "w.toml"))
    assert families["valkey"]["families"]["taxonomy"]["hit_rate"] == pytest.approx(393 / 400)


def test_the_configured_eviction_policy_replays_a_trace(tmp_path):
    """Per-task caches too small for the trace: the policy named in the file is the one replayed."""
    rng = np.random.default_rng(3)
    keys = np.minimum(rng.zipf(1.2, 20_000), 5000)
    (tmp_path / "t.csv").write_text("timestamp,key,size\n" + "\n".join(f"{i},k{k},1000" for i, k in enumerate(keys)))
    text = (EXAMPLES / "taxonomy.toml").read_text().replace("keys = 2000\nzipf_alpha = 0.8", 'trace = "t.csv"').replace(
        "value_kb = 1.0\n", "")
    text = text.replace("tasks = 60", "tasks = 2\ntask_cache_mb = 0.2")  # 200 entries of 1 KB per task
    rates = {}
    for policy in ("lru", "fifo", "wtinylfu"):
        (tmp_path / "w.toml").write_text(text.replace("tasks = 2", f'tasks = 2\neviction = "{policy}"'))
        _, numbers = engine.rank(load(tmp_path / "w.toml"))
        rates[policy] = numbers["in-process"]["families"]["taxonomy"]["hit_rate"]
    assert len(set(rates.values())) == 3 and rates["fifo"] < rates["wtinylfu"]


def test_the_command_writes_the_documented_json_and_is_fast(tmp_path, capsys):
    start = time.monotonic()
    assert main(["--workload", str(EXAMPLES / "chatbot.toml"), "--out", str(tmp_path)]) == 0
    assert time.monotonic() - start < 30
    result = json.loads((tmp_path / "decision.json").read_text())
    assert result["workload"] == "the note's chatbot"
    assert {r["option"] for r in result["ranking"]} == set(engine.OPTIONS)
    fields = {"hit_rate", "origin_load", "origin_load_normal", "resident_gb", "cluster", "transfer_usd_per_month",
              "usd_per_month", "breaks_at_peak_multiple", "stale_bound_s", "stale_worst_s", "families"}
    assert all(r["verdict"] in ("viable", "rejected") and r["reasons"] and fields <= set(r["numbers"])
               for r in result["ranking"])
    valkey = next(r for r in result["ranking"] if r["option"] == "valkey")["numbers"]
    assert valkey["cluster"]["binding"] in ("memory", "network", "ops", "connections")
    assert set(valkey["cluster"]["utilization"]) >= {"memory", "network", "ops", "connections"}
    assert valkey["resident_gb"] < valkey["catalog_gb"] / 20  # the resident set, not the catalog
    assert result["flips"] and all(f["text"] for f in result["flips"])
    out = capsys.readouterr().out
    assert out.startswith("deciding for") and "what would change the answer" in out


def test_a_bad_file_is_one_line_and_exit_status_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((EXAMPLES / "chatbot.toml").read_text().replace("ttl_s = 300", "ttl_s = -1"))
    run = subprocess.run([sys.executable, "-m", "experiments.decide", "--workload", str(bad), "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == ["error: bad.toml: families[0].ttl_s = -1: must be above 0"]


def test_the_page_opens_offline_with_every_chart_drawn(tmp_path):
    assert main(["--workload", str(EXAMPLES / "dynamodb-hot-set.toml"), "--out", str(tmp_path / "decide")]) == 0
    (report,) = visit_all(tmp_path / "decide", tmp_path / "shots")
    assert report.charts == 4 and report.rendered == 4
    assert not report.errors and not report.external_requests


@pytest.fixture(scope="module")
def workload_2kb():
    return load(EXAMPLES / "dynamodb-hot-set.toml")


def test_a_reader_s_redis_is_measured_and_its_memory_per_item_sizes_the_cluster(workload_2kb):
    from experiments.decide import endpoint
    from experiments.lab.servers import RedisServer
    with RedisServer() as server:
        measured = endpoint.measure_redis(workload_2kb, server.url)
        with server.client() as client:
            assert not client.keys("cachebook:*")  # only the run's keys were written, and they are gone
    (size,) = measured["sizes"]
    assert size["value_kb"] == 2.0 and 0 < size["p50_ms"] <= size["p99_ms"] < 50
    assert 1.0 < measured["item_overhead"] < 1.5
    ordered, _ = engine.rank(workload_2kb, {"redis": measured})
    valkey = next(a for a in ordered if a.option == "valkey")
    assert any(r.startswith(f"measured on {measured['address']}") for r in valkey.reasons)


def test_tls_and_cluster_endpoints_are_measured_too(workload_2kb):
    from experiments.decide import endpoint
    from experiments.lab.servers import TlsRedisServer
    from experiments.lab.topologies import RedisClusterSet
    with TlsRedisServer() as server:
        tls = endpoint.measure_redis(workload_2kb, f"{server.url}?ssl_ca_certs={server.certificate}")
    assert tls["sizes"][0]["p50_ms"] > 0
    with RedisClusterSet() as cluster:
        node = cluster.nodes[0]
        clustered = endpoint.measure_redis(workload_2kb, node.url)
    assert clustered["item_overhead"] > 1.0


def test_a_reader_s_memcached_is_measured(workload_2kb):
    from experiments.decide import endpoint
    from experiments.lab.servers import MemcachedServer
    with MemcachedServer() as server:
        measured = endpoint.measure_memcached(workload_2kb, server.address)
    assert measured["sizes"][0]["p99_ms"] > 0


def test_an_unreachable_endpoint_is_one_line_and_exit_status_2(tmp_path, capsys):
    code = main(["--workload", str(EXAMPLES / "chatbot.toml"), "--out", str(tmp_path),
                 "--redis-url", "redis://127.0.0.1:1/0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: cannot reach Redis at 127.0.0.1:1")


def test_the_stampede_exposure_is_the_hottest_key_s_reads_during_one_reload():
    taxonomy = load(EXAMPLES / "taxonomy.toml")
    one_key = _family(taxonomy, keys=1)  # every read is the hottest key's: 2,000/s x 3 peak x 40 ms = 240 calls
    assert engine.stampede_calls(one_key, one_key.families[0], "valkey") == pytest.approx(240)
    # 60 tasks each see a sixtieth of the reads (4 during a reload) and miss apart: 240 in all
    assert engine.stampede_calls(one_key, one_key.families[0], "in-process") == pytest.approx(240)


def test_a_catalog_no_cluster_holds_rejects_the_option_in_one_line():
    """A resident set of tens of TB (a day's TTL over a billion 100 KB keys) needs more than 500 nodes."""
    huge = _family(load(EXAMPLES / "taxonomy.toml"), keys=1_000_000_000, value_kb=100.0)
    ordered, _ = engine.rank(huge)
    valkey = next(a for a in ordered if a.option == "valkey")
    assert valkey.rejected_because[0].startswith("no valkey cluster of up to 500 nodes")


def test_a_trace_sets_the_value_size_and_dax_replays_it(tmp_path):
    """A uniform trace: its sizes set the bytes (25.6 KB a request, not a value_kb), and DAX replays it instead of
    assuming a Zipf popularity the trace does not have."""
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 2000, 20_000)
    rows = "\n".join(f"{i / 100},k{k},{25_600}" for i, k in enumerate(keys))
    (tmp_path / "t.csv").write_text("timestamp,key,size\n" + rows)
    text = (EXAMPLES / "dynamodb-hot-set.toml").read_text().replace("keys = 50000\nzipf_alpha = 1.0", 'trace = "t.csv"')
    (tmp_path / "w.toml").write_text(text.replace("value_kb = 2.0\n", ""))
    w = load(tmp_path / "w.toml")
    assert w.families[0].value_kb == pytest.approx(25.6)
    _, numbers = engine.rank(w)
    assert numbers["dax"]["families"]["summary"]["hit_rate"] == pytest.approx(
        numbers["valkey"]["families"]["summary"]["hit_rate"], abs=0.05)
