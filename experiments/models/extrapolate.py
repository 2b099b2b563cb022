"""A recovery time measured at short failure-detection settings, carried to the documented default.

The book runs failure detection at 1–2 s (Sentinel's ``down-after-milliseconds``, ``cluster-node-timeout``)
to stay fast; the services' defaults are 30 s and 15 s. Two ways to carry a measurement there, each for the
mechanism it fits:

* `after_detection` — recovery = detection + a constant. Sentinel's steps after its detection time do not
  depend on it: a sentinel pings every second (``min(down-after, 1 s)``), the others confirm within a second
  and the leader starts the failover after a random delay of up to a second (``sentinel.c``). The constant is
  the median overhead over the runs; the free line's slope is reported beside it as a check.
* `line_at` — a straight line fitted through the runs, for Redis Cluster: its nodes ping each other every half
  node timeout, so what follows the timeout grows with it too.
"""

from __future__ import annotations

import numpy as np

from experiments.errors import ParameterError

PROMOTION_BOUND_S = 10.0
"""How long after its detection time a Sentinel promotion may come and still be "detection plus seconds": the
steps after detection (a ping a second, confirmation within a second, a random delay of up to a second, the
leader's election and the replica's promotion) take a few seconds, which the book measures at 1–3 s. Ten
seconds keeps the Redis, Valkey and network chapters' findings three spreads clear of the bound on a busy
machine, and still says what the note's failover range hangs on: detection, not what follows it."""


def _pairs(settings_s, measured_s) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(settings_s, dtype=float), np.asarray(measured_s, dtype=float)
    if len(x) == 0 or len(x) != len(y):
        raise ParameterError("give one measurement per setting, at least one")
    return x, y


def line_at(settings_s, measured_s, at_s: float) -> dict[str, float]:
    """The line fitted through the runs (``slope``, ``overhead_s``) and its value ``at_s`` (``value_s``); with
    one setting only, slope 1."""
    x, y = _pairs(settings_s, measured_s)
    if len(set(x.tolist())) < 2:
        slope, overhead = 1.0, float(np.mean(y - x))
    else:
        slope, overhead = (float(v) for v in np.polyfit(x, y, 1))
    return {"slope": slope, "overhead_s": overhead, "value_s": slope * at_s + overhead}


def after_detection(settings_s, measured_s, at_s: float) -> dict[str, float]:
    """Detection plus the median overhead beyond it (``overhead_s``), at ``at_s`` (``value_s``); ``slope`` is the
    free line's, for the check that it is near 1."""
    x, y = _pairs(settings_s, measured_s)
    overhead = float(np.median(y - x))
    return {"slope": line_at(x, y, at_s)["slope"], "overhead_s": overhead, "value_s": at_s + overhead}
