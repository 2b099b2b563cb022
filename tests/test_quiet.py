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


def test_a_quiet_section_waits_out_load_that_takes_no_lock():
    """Processes that never take the lock (a kernel starting, another program) but oversubscribe the cores are
    waited out before a timing starts, and the wait is recorded; with the cores not oversubscribed it is short."""
    assert quiet.runnable() >= 1  # this process
    cores = os.cpu_count() or 1
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN, "1.5"]) for _ in range(cores + 1)]
    try:
        time.sleep(0.3)
        assert quiet.runnable() > cores
        with quiet.quiet("beside spinners"):
            pass
        section = quiet.sections().iloc[-1]
        assert section.cpu_calm and 0.8 <= section.cpu_waited_s < 10, section
    finally:
        for spinner in spinners:
            spinner.wait(10)
    waited, calm = quiet.wait_for_cpu(settle_s=0.1, limit_s=5)
    assert calm and waited < 5
    waited, calm = quiet.wait_for_cpu(settle_s=10, limit_s=0.2)  # a settle longer than the limit runs out
    assert not calm and 0.2 <= waited < 1
