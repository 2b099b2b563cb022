"""Machine-wide quiet sections: a timing is taken while no other chapter's load runs beside it.

Chapters run two at a time (`make book`, nbval in `make test`) and each loads the machine — servers
driven by benchmark clients, worker processes, compiled simulations. A latency percentile or a
throughput measured while the other chapter runs measures the other chapter. So the book shares one
lock file between every process on the machine (``/tmp/cachebook-quiet.lock``, an ``fcntl.flock``):

* `busy` — a section that makes load takes the lock **shared**: any number of them run together.
  Every notebook cell is such a section (`hold_during_cells` registers IPython hooks), as is every
  package test (the test session's fixture); a thread that keeps loading after its cell ends holds
  `busy` itself.
* `quiet` — a measurement whose number is asserted or compared takes the lock **exclusively**: it
  waits for the other processes' busy sections to end and keeps new ones waiting until it is done.

A second lock file (``…-quiet.turn``) is a turnstile that gives a waiting quiet section priority over new
busy sections, so a chapter that runs cell after cell cannot starve the other's measurement. A process
that holds the lock shared releases it before it waits for the exclusive lock, so two processes that
both want a quiet section never wait for each other. A process started while its parent holds a cell or a
test (`OWNER_ENV` names the holder) runs under that hold: its busy sections are its parent's, and its quiet
sections cannot exclude its own parent, so they run at once and say so (``quiet=False``) instead of waiting
for a lock their own parent holds. The process's own background load (a thread that
holds `busy`) may run beside its own quiet section; each `Section` records how many such holders there
were, so a chapter can say what ran beside a measurement. Waits are bounded (`MAX_WAIT_S`): a section
that could not get the lock in time runs anyway and says so (``quiet=False``).

The lock excludes the load of processes that take it, not of those that do not: a kernel starting, a test
session collecting, anything else on the machine. So a quiet section, once it holds the lock, also waits (at
most `CPU_WAIT_S`) until the machine's runnable tasks have averaged at most its cores plus a half over
`CPU_SETTLE_S` (``procs_running`` in ``/proc/stat``, this process included; `wait_for_cpu`) before its timing
starts: a process that keeps one core busy leaves the other to the timing, a burst that oversubscribes both is
waited out. The wait is recorded (``cpu_waited_s``, ``cpu_calm``); after one wait that ran out, the process's
later sections do not wait again (a machine kept busy from outside would cost every section the full wait).

Load that starts after the wait, from a process that takes no lock, still lands inside the timing. So a probe
takes each round of a timing through `calm_round`: where the kernel reports CPU pressure (``/proc/pressure/cpu``),
a round during which some runnable task waited for a CPU more than `PRESSURE_LIMIT` of the time is taken again
after the machine settles. The criterion is the machine's, never the round's own result: a slow round on a calm
machine is kept. Retakes are bounded per round and per section and recorded (``rounds_retaken``, and
``rounds_crowded`` for rounds kept because the bound ran out).
"""

from __future__ import annotations

import collections
import fcntl
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd

from experiments.lab.processes import running

LOCK_DIR = Path("/tmp")
"""Machine-wide on purpose: not ``$TMPDIR``, which differs between runs (a test gives its runner its own)."""
LOCK_PATH = LOCK_DIR / "cachebook-quiet.lock"
TURN_PATH = LOCK_DIR / "cachebook-quiet.turn"
OWNER_ENV = "CACHEBOOK_QUIET_HOLDER"
"""Set while a process holds a foreground section (a test): its children run under its hold."""
MAX_WAIT_S = 600.0
"""The longest a section waits for the lock before it runs anyway (reported, never silent)."""
CPU_SETTLE_S = 0.5
"""The window over which the machine's runnable tasks must average at most its cores plus a half."""
CPU_WAIT_S = 60.0
"""The longest a section waits for that before it runs anyway (reported as ``cpu_calm=False``)."""
PRESSURE_PATH = Path("/proc/pressure/cpu")
PRESSURE_LIMIT = 0.40
"""The share of a round's time during which some runnable task waited for a CPU (PSI's ``some``) above which the
round was crowded. Measured on the book's two-core machine, rounds of 666 Redis GETs: 7–27 % alone or beside one
process that keeps a core busy (p99 0.07–0.25 ms), 55–98 % beside two or three (p99 up to 4 ms)."""
ROUND_RETAKES = 3
"""The most times one round is taken again."""
SECTION_RETAKES = 12
"""The most retakes in one quiet section: a machine crowded for good costs a bounded time, then rounds are kept."""
RETAKE_CPU_WAIT_S = 5.0
"""The longest a retake waits for the runnable tasks to settle (`wait_for_cpu`) before it runs."""
T = TypeVar("T")


@dataclass(frozen=True)
class Section:
    """One quiet section of this process: what it timed, how long it waited and ran, and what ran beside it."""

    what: str
    waited_s: float
    took_s: float
    quiet: bool
    """True when no other process's busy section overlapped it (False: the wait ran out)."""
    own_background: int
    """This process's own busy holders (background threads) that ran beside it, besides the cell itself."""
    cpu_waited_s: float = 0.0
    """How long it waited, holding the lock, for the machine's runnable tasks to settle (`wait_for_cpu`)."""
    cpu_calm: bool = True
    """False when that wait ran out (`CPU_WAIT_S`) and the timing ran beside an oversubscribed machine."""
    rounds_retaken: int = 0
    """Rounds of its timings taken again because the CPU was crowded while they ran (`calm_round`)."""
    rounds_crowded: int = 0
    """Rounds kept although the CPU was crowded, because their retakes ran out."""


def runnable() -> int | None:
    """Tasks running or ready to run on the whole machine now (``procs_running`` in ``/proc/stat``); None where the
    system does not say."""
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                if line.startswith("procs_running"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_pressure_us() -> int | None:
    """The machine's cumulative time (µs) during which some runnable task waited for a CPU (PSI's ``some total``
    in ``/proc/pressure/cpu``); None where the kernel does not report pressure."""
    try:
        with open(PRESSURE_PATH) as pressure:
            for line in pressure:
                if line.startswith("some"):
                    return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def calm_round(measure: Callable[[], T]) -> T:
    """``measure()`` (one round of a timing, inside a quiet section), taken again after the runnable tasks settle
    when the CPU was crowded while it ran: some task waited for a CPU over `PRESSURE_LIMIT` of the round's time.
    At most `ROUND_RETAKES` per round and `SECTION_RETAKES` per section; then the last round is kept and counted
    as crowded. Where the kernel reports no pressure every round is kept as it is."""
    counts = _IN_CELL.__dict__.setdefault("retakes", [0, 0])  # [retaken, crowded] in this thread's section
    retakes = 0
    while True:
        before, start = cpu_pressure_us(), time.monotonic()
        value = measure()
        after, took = cpu_pressure_us(), time.monotonic() - start
        if before is None or after is None or took <= 0 or (after - before) / 1e6 <= PRESSURE_LIMIT * took:
            return value
        if retakes == ROUND_RETAKES or counts[0] >= SECTION_RETAKES:
            counts[1] += 1
            return value
        retakes += 1
        counts[0] += 1
        wait_for_cpu(limit_s=RETAKE_CPU_WAIT_S)


def wait_for_cpu(*, settle_s: float = CPU_SETTLE_S, limit_s: float = CPU_WAIT_S) -> tuple[float, bool]:
    """Wait until the runnable tasks, sampled every 20 ms over the last ``settle_s``, average at most the cores
    plus a half (a thread that wakes now and then, as a chapter's own background writer does, does not count; a
    process that keeps running does), at most ``limit_s``; returns the time waited and whether it settled. A
    system that does not count its runnable tasks has nothing to wait for."""
    cores = os.cpu_count() or 1
    window = collections.deque(maxlen=max(1, round(settle_s / 0.02)))
    start = time.monotonic()
    while True:
        now_runnable = runnable()
        if now_runnable is None:
            return 0.0, True
        window.append(now_runnable)
        waited = time.monotonic() - start
        if len(window) == window.maxlen and sum(window) / len(window) <= cores + 0.5:
            return waited, True
        if waited >= limit_s:
            return waited, False
        time.sleep(0.02)


class _Lock:
    """This process's side of the machine-wide lock: one open file, a count of busy holders, quiet depth."""

    def __init__(self) -> None:
        self._mutex = threading.RLock()
        self._fd: int | None = None
        self._turn: int | None = None
        self._pid = os.getpid()
        self.busy_holders = 0
        self.quiet_depth = 0
        self.sections: list[Section] = []
        self.cpu_gave_up = False

    def _files(self) -> tuple[int, int]:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            self._turn = os.open(TURN_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            self._pid = os.getpid()
            self.busy_holders = self.quiet_depth = 0
        return self._fd, self._turn

    @staticmethod
    def under_parent() -> bool:
        """True in a process started by another that holds the lock for it (see `OWNER_ENV`)."""
        holder = os.environ.get(OWNER_ENV, "")
        return holder.isdigit() and int(holder) != os.getpid() and running(int(holder))

    @staticmethod
    def _flock(fd: int, operation: int, deadline: float) -> bool:
        """Take ``operation`` on ``fd``, polling until ``deadline``; False if it did not come in time."""
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.02)

    def _through_turnstile(self, operation: int, deadline: float) -> bool:
        fd, turn = self._files()
        if not self._flock(turn, fcntl.LOCK_EX, deadline):
            return False
        try:
            return self._flock(fd, operation, deadline)
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)

    def enter_busy(self) -> None:
        if self.under_parent():
            return
        with self._mutex:
            self._files()
            if self.busy_holders == 0 and self.quiet_depth == 0:
                self._through_turnstile(fcntl.LOCK_SH, time.monotonic() + MAX_WAIT_S)
            self.busy_holders += 1

    def exit_busy(self) -> None:
        if self.under_parent():
            return
        with self._mutex:
            self.busy_holders = max(0, self.busy_holders - 1)
            if self.busy_holders == 0 and self.quiet_depth == 0:
                fcntl.flock(self._files()[0], fcntl.LOCK_UN)

    def enter_quiet(self) -> tuple[float, bool]:
        if self.under_parent():
            self.quiet_depth += 1
            return 0.0, False
        with self._mutex:
            fd, _ = self._files()
            self.quiet_depth += 1
            if self.quiet_depth > 1:
                return 0.0, True
            start = time.monotonic()
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)  # never wait for the exclusive lock while holding it shared
                got = self._through_turnstile(fcntl.LOCK_EX, start + MAX_WAIT_S)
            except BaseException:  # interrupted while waiting: this section never began
                self.quiet_depth -= 1
                fcntl.flock(fd, fcntl.LOCK_SH if self.busy_holders else fcntl.LOCK_UN)
                raise
            return time.monotonic() - start, got

    def exit_quiet(self) -> None:
        with self._mutex:
            self.quiet_depth -= 1
            if self.quiet_depth == 0 and not self.under_parent():
                fd = self._files()[0]
                if self.busy_holders:
                    fcntl.flock(fd, fcntl.LOCK_SH)  # a downgrade: never blocks for long
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)


_LOCK = _Lock()
_IN_CELL = threading.local()
"""Per thread: whether it runs a cell (or a test), and how deep in quiet sections it is."""


@contextmanager
def busy():
    """A section that makes load: shared with other load, never beside another process's quiet section."""
    _LOCK.enter_busy()
    try:
        yield
    finally:
        _LOCK.exit_busy()


@contextmanager
def quiet(what: str):
    """A measurement whose number is asserted or compared: no other process's load runs beside it.

    Yields nothing; when the block ends a `Section` is recorded (see `sections`).
    """
    depth = getattr(_IN_CELL, "quiet_depth", 0)  # a section inside another of its thread is part of it
    _IN_CELL.quiet_depth = depth + 1
    if depth == 0:
        _IN_CELL.retakes = [0, 0]
    try:
        waited, got = _LOCK.enter_quiet()
    except BaseException:
        _IN_CELL.quiet_depth = depth
        raise
    start = None
    try:  # from here on the lock is released however the block ends, an interrupted CPU wait included
        cpu_waited, calm = 0.0, True
        if depth == 0 and got:
            cpu_waited, calm = wait_for_cpu(limit_s=0.0 if _LOCK.cpu_gave_up else CPU_WAIT_S)
            _LOCK.cpu_gave_up = _LOCK.cpu_gave_up or not calm
        beside = max(0, _LOCK.busy_holders - (1 if getattr(_IN_CELL, "active", False) else 0))
        start = time.monotonic()
        yield
    finally:
        _LOCK.exit_quiet()
        _IN_CELL.quiet_depth = depth
        if depth == 0 and start is not None:
            took = time.monotonic() - start
            retaken, crowded = _IN_CELL.retakes
            _LOCK.sections.append(Section(what, round(waited, 3), round(took, 3), got, beside, round(cpu_waited, 3), calm,
                                          retaken, crowded))


def sections() -> pd.DataFrame:
    """This process's quiet sections so far, in order (what, waited_s, took_s, quiet, own_background, cpu_waited_s,
    cpu_calm, rounds_retaken, rounds_crowded)."""
    return pd.DataFrame([vars(s) for s in _LOCK.sections], columns=list(Section.__dataclass_fields__))


def beside_text() -> str:
    """One sentence for a chapter's text: how its timings were isolated, from its recorded sections."""
    table = sections()
    if table.empty:
        return "no timing of this run needed a quiet section"
    waited = float(table.waited_s.sum())
    lost = int((~table.quiet).sum())
    own = int(table.own_background.max())
    text = (f"{len(table)} timings ran in quiet sections ({table.took_s.sum():.0f} s in all), with no other "
            f"chapter's load beside them (they waited {waited:.0f} s for it to pause)")
    if own:
        text += f"; this chapter's own background work ({own} holder(s)) ran beside some of them"
    cpu = float(table.cpu_waited_s.sum())
    if cpu >= 1:
        text += f", and {cpu:.0f} s more for the machine to have no more runnable tasks than cores"
    if lost:
        text += (f"; {lost} ran without the machine to themselves (started under a test's hold, or still waiting "
                 f"after {MAX_WAIT_S:.0f} s)")
    crowded = int((~table.cpu_calm).sum())
    if crowded:
        text += f"; {crowded} began with more runnable tasks than cores (the wait for them ran out)"
    retaken, kept = int(table.rounds_retaken.sum()), int(table.rounds_crowded.sum())
    if retaken:
        text += f"; {retaken} round(s) were taken again because other tasks crowded the CPU while they ran"
    if kept:
        text += f"; {kept} round(s) ran on a crowded CPU and were kept (their retakes ran out)"
    return text


def _pre_cell(*_args) -> None:
    if not getattr(_IN_CELL, "active", False):
        _IN_CELL.active = True
        _LOCK.enter_busy()


def _post_cell(*_args) -> None:
    if getattr(_IN_CELL, "active", False):
        _IN_CELL.active = False
        _LOCK.exit_busy()


@contextmanager
def foreground():
    """A busy section that stands for a notebook cell (a package test holds one for its duration); the processes
    it starts meanwhile run under its hold (`OWNER_ENV`)."""
    _pre_cell()
    before = os.environ.get(OWNER_ENV)
    os.environ[OWNER_ENV] = str(os.getpid())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(OWNER_ENV, None)
        else:
            os.environ[OWNER_ENV] = before
        _post_cell()


def hold_during_cells() -> None:
    """Make every cell of this IPython kernel a busy section (a chapter's first cell calls it; idempotent)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - plain Python
        return
    shell = get_ipython()
    if shell is None:
        return
    for event, hook in (("pre_run_cell", _pre_cell), ("post_run_cell", _post_cell)):
        if hook not in shell.events.callbacks[event]:
            shell.events.register(event, hook)
    _pre_cell()  # the cell that called this is running now
