"""Quiet sections across real processes: a timing waits for other processes' load and keeps new load waiting;
load runs beside load; a process started under a test's hold does not wait for its own parent."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from experiments.lab import quiet

pytestmark = pytest.mark.holds_no_lock

HOLD = """
import sys, time
from experiments.lab import quiet
with quiet.{section}:
    print("in", flush=True)
    time.sleep(float(sys.argv[1]))
"""


def _other_process(section: str, seconds: float) -> subprocess.Popen:
    """A process of its own in the lock's eyes (no holder in its environment), inside ``section`` once it prints."""
    env = {k: v for k, v in os.environ.items() if k != quiet.OWNER_ENV}
    child = subprocess.Popen([sys.executable, "-c", HOLD.format(section=section), str(seconds)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "in"
    return child


def test_a_quiet_section_waits_for_another_process_s_load():
    other = _other_process("busy()", 1.0)
    try:
        with quiet.quiet("a timing"):
            pass
        section = quiet.sections().iloc[-1]
        assert section.what == "a timing" and section.quiet and section.waited_s > 0.5  # (the other worker may add)
    finally:
        other.wait(10)


def test_load_runs_beside_load_but_not_beside_a_quiet_section():
    other = _other_process("busy()", 1.0)
    started = time.monotonic()
    with quiet.busy():
        shared = time.monotonic() - started
    other.wait(10)
    assert shared < 0.5, "load waited for other load"
    timing = _other_process('quiet("the other")', 1.0)
    started = time.monotonic()
    with quiet.busy():
        waited = time.monotonic() - started
    timing.wait(10)
    assert waited > 0.5, "new load started beside another process's quiet section"


def test_a_process_that_holds_load_and_wants_quiet_does_not_deadlock_with_another():
    other = _other_process('busy()', 1.0)  # holds shared, then (below) we hold shared and want exclusive too
    with quiet.busy():
        with quiet.quiet("nested"):
            pass
    other.wait(10)
    assert quiet.sections().iloc[-1].what == "nested"


def test_a_child_of_a_holding_process_does_not_wait_for_its_parent():
    code = ("from experiments.lab import quiet\n"
            "with quiet.quiet('child'):\n    pass\n"
            "s = quiet.sections().iloc[-1]\nprint(bool(s.quiet), s.waited_s)")
    with quiet.foreground():  # what a test holds: its children run under it
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    held, waited = out.stdout.split()
    assert held == "False" and float(waited) == 0.0


def test_the_report_says_what_ran_beside():
    with quiet.quiet("short"):
        pass
    assert "quiet sections" in quiet.beside_text()


SPIN = "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\nwhile time.monotonic() < end: pass\n"


def test_the_cpu_wait_sees_load_that_takes_no_lock_and_runs_out():
    """Processes that never take the lock (a kernel starting, another program) and oversubscribe the cores keep
    `wait_for_cpu` from settling until its limit; a settle longer than the limit runs out too. (The wait is called
    directly: through the lock, how long it waits would depend on what else the test session runs.)"""
    assert quiet.runnable() >= 1  # this process
    cores = os.cpu_count() or 1
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN, "30"]) for _ in range(cores + 2)]
    try:
        time.sleep(0.3)
        waited, calm = quiet.wait_for_cpu(settle_s=0.2, limit_s=1.0)
        assert not calm and 1.0 <= waited < 3
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait(10)
    waited, calm = quiet.wait_for_cpu(settle_s=10, limit_s=0.2)
    assert not calm and 0.2 <= waited < 1


def test_an_interrupted_cpu_wait_releases_the_lock(monkeypatch):
    """A Ctrl-C while a section waits for the CPU (in JupyterLab the kernel lives on) must not keep the lock: another
    process's quiet section gets it at once, and the next section of this process records itself again."""
    def interrupted(**_):
        raise KeyboardInterrupt
    monkeypatch.setattr(quiet, "wait_for_cpu", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with quiet.quiet("interrupted"):
            pass
    monkeypatch.undo()
    other = _other_process('quiet("the other")', 0.1)
    assert other.wait(20) == 0
    with quiet.quiet("after"):
        pass
    assert quiet.sections().iloc[-1].what == "after"


def _busy_round(calls: list, seconds: float = 0.05):
    """A round of a timing that keeps this process's thread on a CPU for ``seconds`` (counts its calls)."""
    def measure():
        calls.append(1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return len(calls)
    return measure


@pytest.mark.skipif(quiet.cpu_pressure_us() is None, reason="the kernel reports no CPU pressure (PSI)")
def test_a_round_on_a_crowded_cpu_is_taken_again_and_a_calm_one_is_not(monkeypatch):
    """Beside processes that take no lock and oversubscribe the cores, every take of a round is crowded: it is
    taken `ROUND_RETAKES` times more, then kept and counted; once they stop, a round is taken once."""
    monkeypatch.setattr(quiet, "wait_for_cpu", lambda **_: (0.0, True))  # the retakes' wait is tested above
    cores = os.cpu_count() or 1
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN, "30"]) for _ in range(cores + 2)]
    crowded: list = []
    try:
        time.sleep(0.3)
        with quiet.quiet("crowded rounds"):
            quiet.calm_round(_busy_round(crowded))
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait(10)
    section = quiet.sections().iloc[-1]
    assert len(crowded) == quiet.ROUND_RETAKES + 1
    assert (section.rounds_retaken, section.rounds_crowded) == (quiet.ROUND_RETAKES, 1)
    assert "taken again" in quiet.beside_text() and "were kept" in quiet.beside_text()
    calm: list = []
    time.sleep(0.3)
    with quiet.quiet("calm rounds"):
        quiet.calm_round(_busy_round(calm))
    assert len(calm) == 1 and quiet.sections().iloc[-1].rounds_retaken == 0


def test_without_pressure_figures_a_round_is_taken_once(monkeypatch):
    """A kernel without PSI (``/proc/pressure/cpu`` absent) gives no criterion: the round is kept as it is."""
    monkeypatch.setattr(quiet, "PRESSURE_PATH", quiet.Path("/nonexistent/pressure/cpu"))
    assert quiet.cpu_pressure_us() is None
    calls: list = []
    with quiet.quiet("no pressure figures"):
        assert quiet.calm_round(_busy_round(calls)) == 1
    assert len(calls) == 1
