"""What a run of chapters leaves behind, and how the runner accounts for it.

* `Outcome` — the chapters that stopped before their end and the findings that did not hold, as the lines the
  runner prints last (`experiments.findings` records a failed finding when the runner renders the book).
* `mark_crashed` — a chapter that stopped is shown as such on its page: a box under its title, each traceback
  one line.
* Interrupts — SIGTERM becomes the same interrupt as Ctrl-C (`on_sigterm`); after one, `cleanup_after_interrupt`
  removes what the killed kernels could not (their lab namespaces, the lab's route) and says what it removed.
* Waits — the run's servers and server-directory owners are gone before the runner checks for leaks.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from experiments.errors import BookError
from experiments.lab import netlab
from experiments.lab.processes import in_session, running, server_processes
from experiments.lab.spawner import workdir_owners


class Interrupted(BookError):
    """Ctrl-C or SIGTERM of the runner: the chapters that were running, stopped."""

    def __init__(self, message: str, servers: frozenset[int] = frozenset()) -> None:
        super().__init__(message)
        self.servers = servers
        """The run's server processes when the interrupt came (they die with the killed kernels)."""


def on_sigterm(signum, _frame) -> None:
    """SIGTERM (what `timeout`, CI limits and service managers send) ends the run like Ctrl-C."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def mark_crashed(executed: Path, error: str) -> None:
    """Show a chapter that stopped before its end as such on its page: a box under its title with the error in
    one line, and each traceback replaced by that line (the cells after it have no outputs)."""
    import nbformat

    if not executed.exists():
        return
    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    def one_line(output):
        if output.output_type != "error":
            return output
        first = (output.evalue or "").splitlines()[:1]
        return nbformat.v4.new_output("stream", name="stdout", text=f"{output.ename}: {''.join(first)}\n")

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [one_line(o) for o in cell.outputs]
    box = nbformat.v4.new_markdown_cell(
        "```{error}\nThis chapter stopped before its end on this machine: " + error.replace("`", "'")
        + ".\nThe cells after that one did not run; their outputs and the numbers they glue are missing.\n```")
    nb.cells.insert(1, box)
    nbformat.write(nb, executed)


@dataclass
class Outcome:
    """What a run of chapters came to: the chapters that stopped before their end (one line each) and the
    findings that did not hold ({chapter: {statement: its numbers}})."""

    crashed: dict[Path, str] = field(default_factory=dict)
    failed_findings: dict[str, dict[str, str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One line per chapter that stopped and per finding that did not hold."""
        lines = [error if error.startswith(str(notebook)) else f"{notebook}: {error}" for notebook, error in self.crashed.items()]
        for chapter, failures in self.failed_findings.items():
            lines += [f"{chapter}: a finding did not hold on this machine: {statement}" + (f" ({numbers})" if numbers else "")
                      for statement, numbers in failures.items()]
        return lines


def failed_findings(folder: Path) -> dict[str, dict[str, str]]:
    """The findings that did not hold, per chapter, from the JSON files `experiments.findings` wrote
    in ``folder``."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def cleanup_after_interrupt(session: str, servers_before: frozenset[int]) -> str:
    """Remove what killed kernels cannot (their lab namespaces, the lab's route) and say what was removed."""
    leaked = wait_for_servers_to_exit(session)
    route = netlab.guard_route_present()
    swept = netlab.sweep_orphans()
    removed = [f"{len(servers_before - leaked)} server process(es)", f"{len(swept)} lab namespace(s)"]
    if route and not netlab.guard_route_present():
        removed.append("the lab's blackhole route")
    return "stopped its kernel; removed " + ", ".join(removed)


def session_workdir_owners(session: str) -> list[int]:
    """Running owners of server directories that belong to this run. A process that is still exiting
    (SIGKILLed, its memory being released) no longer shows its environment: it counts as ours, so
    that the sweep waits for it to be gone instead of skipping its directories."""
    owners = []
    for pid in workdir_owners():
        if pid == os.getpid() or not running(pid):
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            environ = b""
        if not environ or in_session(pid, session):
            owners.append(pid)
    return owners


def wait_for_workdir_owners(session: str, timeout_s: float = 5.0) -> None:
    """Wait for this run's processes that own server directories (an interrupted chapter's kernel,
    which exits a moment after its servers) so that `sweep_orphan_workdirs` can remove them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not session_workdir_owners(session):
            return
        time.sleep(0.05)


def wait_for_servers_to_exit(session: str, timeout_s: float = 5.0) -> set[int]:
    """Servers of this run's ``session`` that are still running after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (leaked := set(server_processes(session))) and time.monotonic() < deadline:
        time.sleep(0.1)
    return leaked
