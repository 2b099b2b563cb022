"""Execute the chapters with papermill and render the book with Jupyter Book, strictly and offline.

Papermill executes, Jupyter Book only renders. ``execute`` runs every chapter of ``_toc.yml``
against real servers into ``_build/executed/`` (a mirror of the repository layout) and never
touches the committed notebooks; ``build`` stages a source tree (executed or committed notebooks,
the Markdown pages, the configuration and the vendored Vega bundle) and runs ``jupyter-book build
-W -n --keep-going`` on it; ``refresh`` re-executes every chapter in one run to a temporary copy and
replaces the committed notebooks together, only if every chapter ran to its end with every finding held.

A book that fails still renders: every chapter runs even if another stops, a finding that does not hold is a
box on its chapter's page (`experiments.findings`), a chapter that stops is shown as such under its title,
and the command exits non-zero at the end with one line per failed chapter or finding. Ctrl-C and SIGTERM
stop the running chapters, their kernels and servers, remove their lab namespaces and route, and say so in
one line.

    python -m experiments.bookkit all [-j 2] [-p profile full]   # execute (two at a time), then build _build/html
    python -m experiments.bookkit execute economics -p profile quick
    python -m experiments.bookkit build --committed       # render the committed outputs
    python -m experiments.bookkit refresh [chapter ...]

Every failure is reported as one line naming the chapter and the cell (or the finding), and the command
checks that no server process outlived the run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from experiments import params
from experiments.bookkit.aftermath import (
    Interrupted,
    Outcome,
    cleanup_after_interrupt,
    failed_findings,
    mark_crashed,
    on_sigterm,
    wait_for_servers_to_exit,
    wait_for_workdir_owners,
)
from experiments.charts import vega_bundle
from experiments.errors import BookError, ParameterError
from experiments.findings import RENDER_ENV
from experiments.lab import netlab
from experiments.lab.processes import SESSION_ENV, descendants, server_processes
from experiments.lab.spawner import die_with_parent, sweep_orphan_workdirs
from experiments.paths import BUILD, ROOT

EXECUTED = BUILD / "executed"
COMMITTED = BUILD / "committed"
VENDOR = BUILD / "vendor"
"""Where the Vega bundle is cached between builds (the decide page uses the same folder)."""
HTML = BUILD / "html"


def chapters() -> list[Path]:
    """The notebooks listed in ``_toc.yml``, in reading order (paths relative to the root)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            if "root" in node:
                files.append(node["root"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return [Path(f).with_suffix(".ipynb") for f in files if (ROOT / f).with_suffix(".ipynb").exists()]


def select(names: list[str]) -> list[Path]:
    """Chapters by stem (``economics``) or path; all chapters when ``names`` is empty."""
    every = chapters()
    if not names:
        return every
    chosen = []
    for name in names:
        match = [c for c in every if name in (c.stem, str(c), str(c.with_suffix("")))]
        if not match:
            raise ParameterError(f"no chapter {name!r}; chapters are: {', '.join(c.stem for c in every)}")
        chosen.extend(match)
    return chosen


def parse_value(text: str):
    """A ``-p`` value as papermill's ``-p`` would read it: a Python literal, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_parameters(notebook: Path, parameters: dict) -> dict:
    """The parameters ``notebook`` declares among ``parameters``; unknown names are an error."""
    import papermill

    declared = papermill.inspect_notebook(str(ROOT / notebook))
    if not declared:
        raise ParameterError(f"{notebook} has no cell tagged 'parameters'")
    return {k: v for k, v in parameters.items() if k in declared}


LAST = {Path("book/summary.ipynb")}
"""Chapters that read the other chapters' results: they run after all the others."""


def _start(notebook: Path, destination: Path, parameters: dict, log: Path) -> subprocess.Popen:
    """One chapter in a child process of its own session (see `execute`); its stderr goes to ``log``. The
    child dies with the runner, even a SIGKILLed one (PR_SET_PDEATHSIG; the runner forks from its main
    thread), and its kernel and servers follow it."""
    with open(log, "w") as errors:
        return subprocess.Popen(
            [sys.executable, "-m", "experiments.bookkit", "_execute-one", str(notebook), str(destination),
             json.dumps(parameters)],
            stderr=errors, text=True, start_new_session=True, preexec_fn=die_with_parent(os.getpid()),
        )


def _error_line(notebook: Path, child: subprocess.Popen, log: Path) -> str:
    """The chapter's one-line error if its child process failed, else an empty string."""
    if child.returncode == 0:
        return ""
    lines = [line for line in log.read_text(errors="replace").strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("error: ") if lines else f"{notebook} failed (exit {child.returncode})"


def _stop(children: dict[Path, subprocess.Popen]) -> None:
    """SIGKILL each chapter process and everything below it — its kernel is not in its process group
    and would otherwise exit only when it notices, seconds later on a loaded machine. The servers
    the kernel started die with it (PR_SET_PDEATHSIG)."""
    for child in children.values():
        below = descendants(child.pid)  # collected first: once the child dies they are orphans
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        child.wait()


class Progress:
    """One line per chapter started and finished, and a heartbeat while chapters run, so that a
    four-minute build never looks hung: chapter k of n, elapsed time, what is running and for how long."""

    HEARTBEAT_S = 15.0

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.start = self.last = time.monotonic()
        self.running: dict[Path, float] = {}

    def _print(self, text: str) -> None:
        now = time.monotonic()
        print(f"[{now - self.start:5.0f} s] {text}", flush=True)
        self.last = now

    def _running(self) -> str:
        now = time.monotonic()
        return ", ".join(f"{n.stem} ({now - t:.0f} s)" for n, t in self.running.items()) or "nothing"

    def started(self, notebook: Path, parameters: dict) -> None:
        """Record a chapter as running and print its line (with its parameters, if any)."""
        self.running[notebook] = time.monotonic()
        extra = f" with {parameters}" if parameters else ""
        self._print(f"chapter {self.done + len(self.running)} of {self.total}: {notebook}{extra}")

    def finished(self, notebook: Path, error: str = "") -> None:
        """Record a chapter as done and print how long it took, or its one-line error if it stopped."""
        took = time.monotonic() - self.running.pop(notebook)
        self.done += 1
        what = f"FAILED {notebook.stem} after {took:.0f} s: {error}" if error else f"done {notebook.stem} in {took:.0f} s"
        self._print(f"{what} ({self.done} of {self.total} done)")

    def tick(self) -> None:
        """Print the heartbeat if chapters are running and nothing was printed for `HEARTBEAT_S` seconds."""
        if self.running and time.monotonic() - self.last >= self.HEARTBEAT_S:
            self._print(f"{self.done} of {self.total} done; running: {self._running()}")


def execute(plans: list[tuple[Path, Path, dict]], *, jobs: int = 1) -> dict[Path, str]:
    """Run chapters, ``jobs`` at a time, each in a child process; Ctrl-C stops them and their servers.

    Every chapter runs even if another fails: the result maps each chapter that stopped before its end to its
    one-line error (a chapter's failed *findings* do not stop it when the runner renders the book; see
    `experiments.findings`). nbclient answers SIGINT by scheduling a kernel shutdown and then waits on the
    dead kernel, so an interrupted in-process run hangs. In a child process in its own session, an interrupt
    (Ctrl-C, or SIGTERM, which the runner turns into one) becomes SIGKILL of the child; its kernel is killed
    too, and the servers the kernel started die with it (PR_SET_PDEATHSIG); the runner then removes what a
    killed kernel cannot (`execute_all`). A chapter that reads the others' results (`LAST`) starts when they
    are done.
    """
    # plans are (notebook, destination, parameters); the pages in LAST start after all the others
    waiting = [plan for plan in plans if plan[0] not in LAST] + [plan for plan in plans if plan[0] in LAST]
    running: dict[Path, subprocess.Popen] = {}
    crashed: dict[Path, str] = {}
    destinations = {notebook: destination for notebook, destination, _ in plans}
    progress = Progress(len(plans))
    logs = Path(tempfile.mkdtemp(prefix="cachebook-logs-", dir=BUILD))
    try:
        while waiting or running:
            while waiting and len(running) < jobs and not (waiting[0][0] in LAST and running):
                notebook, destination, accepted = waiting.pop(0)
                progress.started(notebook, accepted)
                running[notebook] = _start(notebook, destination, accepted, logs / f"{notebook.stem}.log")
            time.sleep(0.1)
            for notebook, child in list(running.items()):
                if child.poll() is not None:
                    del running[notebook]
                    error = _error_line(notebook, child, logs / f"{notebook.stem}.log")
                    if error:
                        crashed[notebook] = error
                        mark_crashed(destinations[notebook], error)
                    progress.finished(notebook, error)
            progress.tick()
    except KeyboardInterrupt:
        names = ", ".join(str(n) for n in running) or "the book"
        servers = frozenset(server_processes(os.environ.get(SESSION_ENV, "")))
        _stop(running)
        raise Interrupted(f"{names}: interrupted", servers) from None
    except BaseException:
        _stop(running)
        raise
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    return crashed


def _execute_here(notebook: Path, destination: Path, parameters: dict) -> None:
    """Run one chapter with papermill into ``destination``; a failure names the cell and the error."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(ROOT / notebook), str(destination), parameters=parameters, cwd=str(destination.parent),
            kernel_name="python3", progress_bar=False, log_output=False,
            # ipykernel 7 warns on every start that loopback TCP is unencrypted; that is noise here.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as exc:
        evalue = str(exc.evalue).splitlines()[0] if exc.evalue else ""
        raise BookError(f"{notebook} failed in cell {exc.exec_count or exc.cell_index}: {exc.ename}: {evalue}") from None


def execute_all(names: list[str], parameters: dict, *, jobs: int = 1, into: Path = EXECUTED,
                render_findings: bool = True) -> Outcome:
    """Execute the selected chapters into the mirror ``into``, ``jobs`` at a time; every chapter runs even if
    one fails. With ``render_findings`` a failed finding is a box on its page and a line of the outcome;
    without, it stops its chapter (a crash)."""
    selected = select(names)
    unknown = set(parameters)
    plans = []
    for notebook in selected:
        accepted = check_parameters(notebook, parameters)
        unknown -= set(accepted)
        plans.append((notebook, accepted))
    if unknown:
        raise ParameterError(
            f"no selected chapter declares parameter(s) {', '.join(sorted(unknown))}; "
            f"see each chapter's 'parameters' cell"
        )
    # the parameters every chapter shares are checked once here, so a bad one is one line, not one per chapter
    if "profile" in parameters:
        params.profile(parameters["profile"])
    if "seed" in parameters:
        params.seed(parameters["seed"])
    session = os.environ.setdefault(SESSION_ENV, f"book-{os.getpid()}")
    BUILD.mkdir(exist_ok=True)
    findings_dir = Path(tempfile.mkdtemp(prefix="cachebook-findings-", dir=BUILD))
    if render_findings:
        os.environ[RENDER_ENV] = str(findings_dir)
    else:
        os.environ.pop(RENDER_ENV, None)
    outcome = Outcome()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if threading.current_thread() is threading.main_thread() else None
    try:
        try:
            outcome.crashed = execute([(notebook, into / notebook, accepted) for notebook, accepted in plans], jobs=jobs)
        except Interrupted as stop:
            raise Interrupted(f"{stop}; {cleanup_after_interrupt(session, stop.servers)}") from None
        finally:
            leaked = wait_for_servers_to_exit(session)
            wait_for_workdir_owners(session)
            sweep_orphan_workdirs()
            netlab.sweep_orphans()
        outcome.failed_findings = failed_findings(findings_dir)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        os.environ.pop(RENDER_ENV, None)
        shutil.rmtree(findings_dir, ignore_errors=True)
    if leaked:
        raise BookError(f"server processes outlived the chapters that started them: {sorted(leaked)}")
    return outcome


def mathjax_files() -> Path:
    """MathJax 3 (the ``django-static-mathjax`` wheel's copy): the combined TeX/CHTML component and its fonts."""
    import mathjax

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def stage(notebooks_from: Path, destination: Path) -> Path:
    """A buildable source tree: config, pages and static files from the repository, notebooks from
    ``notebooks_from`` (the repository itself, or the executed mirror)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, destination / name)
    for source in (ROOT / "book").rglob("*"):
        if source.is_dir() or ".ipynb_checkpoints" in source.parts or source.suffix == ".ipynb":
            continue
        target = destination / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for notebook in chapters():
        source = notebooks_from / notebook
        if not source.exists():
            raise BookError(f"{notebook} has not been executed yet: run `make book` (or execute it first)")
        if source.resolve() != (destination / notebook).resolve():
            (destination / notebook).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / notebook)
    # Not `_static`: Jupyter Book adds every .js file there to every page, MathJax's lazily loaded
    # parts included. Sphinx copies `_vendor` into the output's `_static` (html_static_path).
    static = destination / "_vendor"
    static.mkdir(exist_ok=True)
    shutil.copy2(vega_bundle(VENDOR), static / "vega-bundle.js")
    es5 = mathjax_files()
    (static / "mathjax").mkdir(exist_ok=True)
    shutil.copy2(es5 / "tex-mml-chtml.js", static / "mathjax" / "tex-mml-chtml.js")
    shutil.copytree(es5 / "output", static / "mathjax" / "output", dirs_exist_ok=True)
    return destination


def build(source: Path, output: Path, *, strict: bool = True) -> Path:
    """Render ``source`` with Jupyter Book into ``output``. Strict: any warning fails the build; not strict
    (a chapter stopped before its end, so numbers other pages glue from it are missing): warnings are allowed."""
    work = Path(tempfile.mkdtemp(prefix="cachebook-build-", dir=BUILD))
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source), "--path-output", str(work),
             *(["-W"] if strict else []), "-n", "--keep-going", "--quiet"],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            problems = [line for line in (result.stdout + result.stderr).splitlines()
                        if "WARNING" in line or "ERROR" in line or "Error" in line]
            detail = " | ".join(problems[:5]) or (result.stdout + result.stderr).strip()[-400:]
            raise BookError(f"jupyter-book build of {source.relative_to(ROOT)} failed: {detail}")
        if not (work / "_build" / "html" / "index.html").exists():
            raise BookError(f"jupyter-book build of {source.relative_to(ROOT)} produced no index.html")
        if output.exists():
            shutil.rmtree(output)
        shutil.move(str(work / "_build" / "html"), output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return output


def refresh(names: list[str], parameters: dict) -> None:
    """Re-execute chapters in one run (two at a time, the summary last) and replace the committed notebooks
    together, or none of them: one failed chapter or finding keeps every committed notebook as it was. Named
    chapters are refreshed with the summary, which quotes them."""
    selected = select(names)
    if names and LAST - set(selected):
        selected += sorted(LAST - set(selected))
    with tempfile.TemporaryDirectory(prefix="cachebook-refresh-", dir=BUILD) as tmp:
        print(f"refresh: executing {len(selected)} chapters into a temporary copy", flush=True)
        outcome = execute_all([str(n) for n in selected], parameters, jobs=2, into=Path(tmp), render_findings=False)
        if outcome.crashed:
            raise BookError("refresh replaced nothing: " + "; ".join(outcome.lines()))
        for notebook in selected:
            shutil.copy2(Path(tmp) / notebook, ROOT / notebook)
    print(f"refresh: replaced {len(selected)} committed notebooks from one run", flush=True)


def main(argv: list[str] | None = None) -> int:
    """The command line: exit status 0, 1 if a finding did not hold, 2 if a chapter stopped or the
    command failed. ``_execute-one`` is the child process `execute` starts for each chapter."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_execute-one"]:  # the child process of `execute`
        try:
            _execute_here(Path(argv[1]), Path(argv[2]), json.loads(argv[3]))
        except BookError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    parser = argparse.ArgumentParser(prog="python -m experiments.bookkit", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["all", "execute", "build", "refresh"])
    parser.add_argument("chapters", nargs="*", help="chapter names (default: every chapter)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--committed", action="store_true", help="build: render the committed notebooks")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="execute: chapters run at the same time (1 or 2)")
    args = parser.parse_args(argv)
    parameters = {name: parse_value(value) for name, value in args.parameter}
    outcome = Outcome()
    try:
        if args.command in ("all", "execute"):
            if args.jobs not in (1, 2):
                raise ParameterError(f"--jobs {args.jobs}: use 1, or 2 on this 2-core machine")
            outcome = execute_all(args.chapters, parameters, jobs=args.jobs)
        if args.command == "all" or (args.command == "build" and not args.committed):
            strict = not outcome.crashed
            print(f"rendering {HTML.relative_to(ROOT)}" + ("" if strict else " (warnings allowed: a chapter stopped)"),
                  flush=True)
            build(stage(EXECUTED, EXECUTED), HTML, strict=strict)
        if args.command == "build" and args.committed:
            build(stage(ROOT, COMMITTED), BUILD / "committed-html")
        if args.command == "refresh":
            refresh(args.chapters, parameters)
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in outcome.lines():
        print(f"error: {line}", file=sys.stderr)
    return 2 if outcome.crashed else 1 if outcome.failed_findings else 0

