"""Execute the chapters with papermill and render the book with Jupyter Book, strictly and offline.

Papermill executes, Jupyter Book only renders. ``execute`` runs every chapter of ``_toc.yml``
against real servers into ``_build/executed/`` (a mirror of the repository layout) and never
touches the committed notebooks; ``build`` stages a source tree (executed or committed notebooks,
the Markdown pages, the configuration and the vendored Vega bundle) and runs ``jupyter-book build
-W -n --keep-going`` on it; ``refresh`` re-executes chapters to a temporary copy and replaces the
committed notebook only on success.

    python -m experiments.bookkit all [-j 2] [-p profile full]   # execute (two at a time), then build _build/html
    python -m experiments.bookkit execute economics -p profile quick
    python -m experiments.bookkit build --committed       # render the committed outputs
    python -m experiments.bookkit refresh [chapter ...]

Every failure is reported as one line naming the chapter and the cell, and the command checks that
no server process outlived the run.
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
import time
from pathlib import Path

import yaml

from experiments.charts import vega_bundle
from experiments.errors import BookError, ParameterError
from experiments.lab.processes import SESSION_ENV, descendants, in_session, running, server_processes
from experiments.lab.spawner import die_with_parent, sweep_orphan_workdirs, workdir_owners
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


def _check(notebook: Path, child: subprocess.Popen, log: Path) -> None:
    """Raise the chapter's one-line error if its child process failed."""
    if child.returncode != 0:
        lines = [line for line in log.read_text(errors="replace").strip().splitlines() if line.strip()]
        raise BookError(lines[-1].removeprefix("error: ") if lines else f"{notebook} failed (exit {child.returncode})")


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
        self.running[notebook] = time.monotonic()
        extra = f" with {parameters}" if parameters else ""
        self._print(f"chapter {self.done + len(self.running)} of {self.total}: {notebook}{extra}")

    def finished(self, notebook: Path) -> None:
        took = time.monotonic() - self.running.pop(notebook)
        self.done += 1
        self._print(f"done {notebook.stem} in {took:.0f} s ({self.done} of {self.total} done)")

    def tick(self) -> None:
        if self.running and time.monotonic() - self.last >= self.HEARTBEAT_S:
            self._print(f"{self.done} of {self.total} done; running: {self._running()}")


def execute(plans: list[tuple[Path, Path, dict]], *, jobs: int = 1) -> None:
    """Run chapters, ``jobs`` at a time, each in a child process; Ctrl-C stops them and their servers.

    nbclient answers SIGINT by scheduling a kernel shutdown and then waits on the dead kernel, so an
    interrupted in-process run hangs. In a child process in its own session, an interrupt becomes
    SIGKILL of the child; its kernel is killed too, and the servers the kernel started die with it
    (PR_SET_PDEATHSIG). A chapter that reads the others' results (`LAST`) starts when they are done.
    """
    # plans are (notebook, destination, parameters); the pages in LAST start after all the others
    waiting = [plan for plan in plans if plan[0] not in LAST] + [plan for plan in plans if plan[0] in LAST]
    running: dict[Path, subprocess.Popen] = {}
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
                    _check(notebook, child, logs / f"{notebook.stem}.log")
                    progress.finished(notebook)
            progress.tick()
    except KeyboardInterrupt:
        names = ", ".join(str(n) for n in running) or "the book"
        _stop(running)
        raise BookError(f"{names}: interrupted; its kernel and servers were stopped") from None
    except BaseException:
        _stop(running)
        raise
    finally:
        shutil.rmtree(logs, ignore_errors=True)


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


def execute_all(names: list[str], parameters: dict, *, jobs: int = 1) -> list[Path]:
    """Execute the selected chapters into the ``_build/executed`` mirror, ``jobs`` at a time."""
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
    session = os.environ.setdefault(SESSION_ENV, f"book-{os.getpid()}")
    try:
        execute([(notebook, EXECUTED / notebook, accepted) for notebook, accepted in plans], jobs=jobs)
    finally:
        leaked = _wait_for_servers_to_exit(session)
        _wait_for_workdir_owners(session)
        sweep_orphan_workdirs()
    if leaked:
        raise BookError(f"server processes outlived the chapters that started them: {sorted(leaked)}")
    return selected


def _session_workdir_owners(session: str) -> list[int]:
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


def _wait_for_workdir_owners(session: str, timeout_s: float = 5.0) -> None:
    """Wait for this run's processes that own server directories (an interrupted chapter's kernel,
    which exits a moment after its servers) so that `sweep_orphan_workdirs` can remove them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _session_workdir_owners(session):
            return
        time.sleep(0.05)


def _wait_for_servers_to_exit(session: str, timeout_s: float = 5.0) -> set[int]:
    """Servers of this run's ``session`` that are still running after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (leaked := set(server_processes(session))) and time.monotonic() < deadline:
        time.sleep(0.1)
    return leaked


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


def build(source: Path, output: Path) -> Path:
    """Render ``source`` with Jupyter Book into ``output`` (strict: any warning fails the build)."""
    work = Path(tempfile.mkdtemp(prefix="cachebook-build-", dir=BUILD))
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source), "--path-output", str(work),
             "-W", "-n", "--keep-going", "--quiet"],
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
    """Re-execute chapters and replace the committed notebooks, each only if it ran to the end."""
    selected = select(names)
    for k, notebook in enumerate(selected, start=1):
        accepted = check_parameters(notebook, parameters)
        print(f"refresh {k} of {len(selected)}: {notebook}", flush=True)
        with tempfile.TemporaryDirectory(prefix="cachebook-refresh-") as tmp:
            executed = Path(tmp) / notebook.name
            execute([(notebook, executed, accepted)])
            shutil.copy2(executed, ROOT / notebook)


def main(argv: list[str] | None = None) -> int:
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
    try:
        if args.command in ("all", "execute"):
            if args.jobs not in (1, 2):
                raise ParameterError(f"--jobs {args.jobs}: use 1, or 2 on this 2-core machine")
            execute_all(args.chapters, parameters, jobs=args.jobs)
        if args.command == "all" or (args.command == "build" and not args.committed):
            print(f"rendering {HTML.relative_to(ROOT)}", flush=True)
            build(stage(EXECUTED, EXECUTED), HTML)
        if args.command == "build" and args.committed:
            build(stage(ROOT, COMMITTED), BUILD / "committed-html")
        if args.command == "refresh":
            refresh(args.chapters, parameters)
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

