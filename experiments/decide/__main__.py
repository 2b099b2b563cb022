"""``python -m experiments.decide --workload FILE``: the options ranked for the reader's workload.

Prints a progress line, then the ranked table with one line of reasons per option, what would change the
answer, and the first option's deployment; writes ``_build/decide/decision.json`` and a page,
``_build/decide/index.html``, with the charts (offline). A bad workload file is one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from experiments.decide import edge, endpoint, engine, page, spec
from experiments.decide.workload import WorkloadError, load
from experiments.errors import EndpointError
from experiments.paths import BUILD

OUT = BUILD / "decide"


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else x


def decision_json(w, ordered, numbers, flips: list[dict] | None = None) -> dict:
    """The decision as the JSON the README documents: the workload's name, the options best first with their
    numbers, what would change the answer (``flips``), and the first option's deployment."""
    ranking = []
    for a in ordered:
        n = numbers[a.option]
        out = {"hit_rate": a.hit_rate, "origin_load": a.origin_load, "origin_load_normal": n["origin_load_normal"],
               "stale_bound_s": a.stale_bound_s, "stale_worst_s": a.stale_worst_s, "resident_gb": n["resident_gb"],
               "catalog_gb": n["catalog_gb"], "cluster": n["cluster"],
               "service_usd_per_month": _finite(a.usd_per_month) and a.usd_per_month - n["transfer_usd_per_month"],
               "transfer_usd_per_month": n["transfer_usd_per_month"], "team_usd_per_month": a.team_usd_per_month,
               "usd_per_month": _finite(a.total_usd_per_month),
               "breaks_at_peak_multiple": _finite(n.get("breaks_at_peak_multiple", math.nan)),
               "cluster_full_at_multiple": _finite(n["cluster_full_at_multiple"]),
               "families": n["families"]}
        ranking.append({"option": a.option, "verdict": "rejected" if a.rejected_because else "viable",
                        "reasons": a.reasons + [f"needs {b}" for b in a.builds] + a.rejected_because,
                        "numbers": out})
    first = ordered[0]
    chosen = None if first.rejected_because else spec.deployment(w, first.option,
                                                                  numbers[first.option] | {"builds": first.builds})
    return {"workload": w.name, "max_origin_utilization": w.origin_max_utilization, "ranking": ranking,
            "flips": [f | {"text": edge.describe(f, w)} for f in (flips or [])], "deployment": chosen}


def main(argv: list[str] | None = None) -> int:
    """The command line: exit status 0, or 2 with one line on stderr for a bad workload file or an
    unreachable endpoint."""
    parser = argparse.ArgumentParser(prog="python -m experiments.decide", description=__doc__.splitlines()[0])
    parser.add_argument("--workload", required=True, help="the workload file (TOML; see README)")
    parser.add_argument("--out", default=str(OUT), help="where decision.json goes (default: _build/decide)")
    parser.add_argument("--redis-url", help="measure your Redis or Valkey endpoint (redis[s]://…; cluster mode works)")
    parser.add_argument("--memcached-servers", help="measure your memcached nodes (host:port[,host:port…])")
    args = parser.parse_args(argv)
    try:
        w = load(args.workload)
    except WorkloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    measured = {}
    try:
        if args.redis_url:
            print(f"measuring GET latency and memory per item on {args.redis_url.split('@')[-1]} …", flush=True)
            measured["redis"] = endpoint.measure_redis(w, args.redis_url)
        if args.memcached_servers:
            print(f"measuring GET latency on {args.memcached_servers} …", flush=True)
            measured["memcached"] = endpoint.measure_memcached(w, args.memcached_servers)
    except EndpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"deciding for {w.name!r}: {len(w.families)} key families × {len(engine.OPTIONS)} options …", flush=True)
    ordered, numbers = engine.rank(w, measured)
    print("finding where the answer changes (peak, value size, staleness limit, origin capacity) …", flush=True)
    overhead = (measured.get("redis") or {}).get("item_overhead") or engine.ITEM_OVERHEAD
    result = decision_json(w, ordered, numbers, edge.flips(w, item_overhead=overhead)) | (
        {"measured": measured} if measured else {})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decision.json").write_text(json.dumps(result, indent=1))
    page.write(result, out)
    for position, row in enumerate(result["ranking"], start=1):
        cost = row["numbers"]["usd_per_month"]
        price = f"${cost:,.0f}/month" if cost is not None else "not priced"
        print(f"{position}. {row['option']:<18} {row['verdict']:<9} hit {100 * row['numbers']['hit_rate']:5.1f} %  "
              f"origin {100 * row['numbers']['origin_load']:6.0f} %  {price} in all")
        print(f"   {'; '.join(row['reasons'])}")
    print("what would change the answer:")
    for flip in result["flips"]:
        print(f"   {flip['text']}")
    if result["deployment"]:
        print(f"deploy: {result['deployment']['cli']}")
    print(f"wrote {out / 'decision.json'} and {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
