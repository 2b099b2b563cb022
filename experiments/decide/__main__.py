"""``python -m experiments.decide --workload FILE``: the options ranked for the reader's workload.

Prints a progress line, then the ranked table with one line of reasons per option, and writes
``_build/decide/decision.json`` and a page, ``_build/decide/index.html``, with the charts (offline). A bad
workload file is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from experiments.decide import endpoint, engine, page
from experiments.decide.workload import WorkloadError, load
from experiments.errors import EndpointError
from experiments.paths import BUILD

OUT = BUILD / "decide"


def decision_json(w, ordered, families) -> dict:
    """The decision as the JSON the README documents: the workload's name and the options best first."""
    ranking = []
    for a in ordered:
        numbers = {"hit_rate": a.hit_rate, "origin_load": a.origin_load,
                   "origin_load_normal": families[a.option]["origin_load_normal"], "stale_bound_s": a.stale_bound_s,
                   "usd_per_month": None if math.isnan(a.usd_per_month) else a.usd_per_month,
                   "families": families[a.option]["families"]}
        ranking.append({"option": a.option, "verdict": "rejected" if a.rejected_because else "viable",
                        "reasons": a.reasons + [f"needs {b}" for b in a.builds] + a.rejected_because,
                        "numbers": numbers})
    return {"workload": w.name, "ranking": ranking}


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
    ordered, families = engine.rank(w, measured)
    result = decision_json(w, ordered, families) | ({"measured": measured} if measured else {})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decision.json").write_text(json.dumps(result, indent=1))
    page.write(result, out)
    for position, row in enumerate(result["ranking"], start=1):
        cost = row["numbers"]["usd_per_month"]
        price = f"${cost:,.0f}/month" if cost is not None else "not priced"
        print(f"{position}. {row['option']:<18} {row['verdict']:<9} hit {100 * row['numbers']['hit_rate']:5.1f} %  "
              f"origin {100 * row['numbers']['origin_load']:6.0f} %  {price}")
        print(f"   {'; '.join(row['reasons'])}")
    print(f"wrote {out / 'decision.json'} and {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
