"""``python -m experiments.rehearse --workload FILE [--option ID]``: the design rehearsed on real local servers.

Prints a progress line every few seconds, then the engine's prediction beside the measurement (hit rate, the
origin's load at the peak, the turns answered within the budget), the changes each path lost, and any price
served stale; writes ``_build/rehearse/rehearsal.json``. A bad workload file, or an option the workload rejects,
is one line on stderr and exit status 2; a missing server binary or capability is one line naming the fix.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from experiments.decide.workload import WorkloadError, load, with_headroom
from experiments.errors import BookError, MissingBinaryError
from experiments.paths import BUILD
from experiments.rehearse.run import Options, rehearse

OUT = BUILD / "rehearse"


def report(result: dict) -> str:
    """The prediction beside the measurement, and what the changes' paths lost, as lines for a terminal."""
    totals = result["totals"]
    run, written, measured = totals["predicted"]["as_run"], totals["predicted"]["as_written"], totals["measured"]
    lines = [f"{result['option']} on {result['workload']!r}, at {result['scale']:.3g} of its traffic and "
             f"{result['speed']:.3g}x its speed (the peak measured over {measured['seconds']} s)",
             f"{'':26}{'predicted':>12}{'measured':>12}{'as written':>12}"]
    for key, label, fmt in (("hit_rate", "hit rate", "{:.1%}"), ("origin_load_peak", "origin load at the peak", "{:.2f}x"),
                            ("turns_in_budget", "turns within the budget", "{:.1%}")):
        lines.append(f"{label:26}{fmt.format(run[key]):>12}{fmt.format(measured[key]):>12}"
                     f"{fmt.format(written[key]):>12}")
    agree = totals["agreement"]
    verdict = {True: "agrees with", False: "differs from", None: "is not compared with"}[agree["agree"]]
    lines.append(f"the origin's own count {verdict} the engine's ({agree['because']}): {agree['difference']:+.2f}x "
                 f"from {agree['expected']:.2f}x with the changes' deletes, tolerance {agree['tolerance']:.2f}x")
    lost, beyond = totals["lost_changes"], totals["stale_beyond_bound"]
    prices = totals["stale_prices_served"]
    lines.append(f"changes lost: outbox {lost['outbox']}, dual write {lost['dual_write']}; hits stale beyond their "
                 f"family's limit: {', '.join(f'{f} {n:,}' for f, n in beyond.items())}; prices served stale: "
                 f"{'no price family' if prices is None else prices}")
    return "\n".join(lines)


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """The command line: exit status 0, or 2 with one line on stderr."""
    parser = argparse.ArgumentParser(prog="python -m experiments.rehearse", description=__doc__.splitlines()[0])
    parser.add_argument("--workload", required=True, help="the workload file (TOML; see README)")
    parser.add_argument("--option", help="the option to rehearse (default: the one make decide ranks first)")
    parser.add_argument("--headroom", action="store_true",
                        help="divide the origin's capacity by its utilization limit (the catalog with headroom)")
    parser.add_argument("--origin-load", type=float,
                        help="the share of its capacity the origin is at the peak (default: the engine's plan)")
    parser.add_argument("--ttl-s", type=float, default=10.0, help="the shortest TTL as run (sets the speed-up)")
    parser.add_argument("--out", default=str(OUT), help="where rehearsal.json goes (default: _build/rehearse)")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {line}", flush=True)

    signal.signal(signal.SIGTERM, _interrupt)  # what `timeout` and CI limits send: stop like Ctrl-C
    try:
        w = load(args.workload)
        result = rehearse(with_headroom(w) if args.headroom else w, args.option,
                          Options(target_ttl_s=args.ttl_s, progress=say, origin_load=args.origin_load))
    except (WorkloadError, MissingBinaryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BookError as exc:  # the machine, not the input: too busy, a process that died
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: every server and process the rehearsal started is stopped", file=sys.stderr)
        return 130
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rehearsal.json").write_text(json.dumps(result, indent=1, default=float))
    print(report(result))
    print(f"wrote {out / 'rehearsal.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
