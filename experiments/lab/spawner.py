"""Child processes owned by this Python process: spawned so that none outlives it.

Every server and helper process of the book (``redis-server``, ``memcached``, a near-cache task, the
origin) is started here, in a temporary directory of its own, and tied to its owner:

* `ServerProcess.stop` terminates and reaps the process (also after an exception or Ctrl-C);
* an ``atexit`` hook stops whatever is still registered when the interpreter exits normally;
* every child is started with ``PR_SET_PDEATHSIG = SIGKILL``, so the kernel kills it if the Python
  process dies without running any Python code (``kill -9``, a crashed Jupyter kernel);
* a work directory is named after its owner's PID, and directories whose owner has died are swept
  at the next start (`sweep_orphan_workdirs`).

Two traps of ``PR_SET_PDEATHSIG`` shape the code: the signal fires when the *thread* that forked the
child exits, so all children are spawned by one long-lived daemon thread (``_SPAWNER``); and a
server that daemonizes itself escapes it, so every server runs in the foreground.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from experiments.errors import MissingBinaryError, PortInUseError, ServerStartError
from experiments.lab.processes import SESSION_ENV, TEMP_PREFIX, running, session_mark

LOOPBACK = "127.0.0.1"

APT_PACKAGE = {
    "redis-server": "redis-server",
    "redis-sentinel": "redis-sentinel",
    "redis-cli": "redis-tools",
    "redis-benchmark": "redis-tools",
    "memcached": "memcached",
    "memcaslap": "libmemcached-tools",
    "openssl": "openssl",
    "valkey-server": "-t bookworm-backports valkey-server",
    "valkey-sentinel": "-t bookworm-backports valkey-sentinel",
    "valkey-cli": "-t bookworm-backports valkey-tools",
    "valkey-benchmark": "-t bookworm-backports valkey-tools",
}

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)



def require_binary(name: str) -> str:
    """Return the absolute path of a server program, or explain in one line how to install it."""
    path = shutil.which(name)
    if path is None:
        package = APT_PACKAGE.get(name, name)
        raise MissingBinaryError(
            f"{name} is not installed: run `sudo apt-get install -y {package}` "
            f"(or `make setup`, which installs every server the book needs)"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS just reported free (it may be taken again later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def check_port_free(port: int) -> None:
    """Raise `PortInUseError` if ``port`` on 127.0.0.1 cannot be bound."""
    if not 0 < port < 65536:
        raise PortInUseError(f"port {port} is not a TCP port (1-65535); omit port= to let the OS pick one")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise PortInUseError(
                f"port {port} on {LOOPBACK} is already in use: stop what holds it "
                f"(`ss -ltnp 'sport = :{port}'`) or omit port= to let the OS pick a free one"
            ) from None


def make_workdir(name: str) -> Path:
    """A fresh temporary directory for one server — its working directory —, named after this process so
    orphans can be found, and after the run's session (`processes.in_session` reads it back)."""
    sweep_orphan_workdirs()
    session = os.environ.get(SESSION_ENV, "")
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-{session_mark(session)}{name}-"))


def workdir_owners() -> set[int]:
    """PIDs named by the server directories in the temporary folder (their owners, running or not)."""
    names = (path.name[len(TEMP_PREFIX):].split("-", 1)[0] for path in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"))
    return {int(name) for name in names if name.isdigit()}


def sweep_orphan_workdirs() -> None:
    """Remove server directories left by processes that died without cleaning up (``kill -9``)."""
    for path in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        owner = path.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not running(int(owner)):
            shutil.rmtree(path, ignore_errors=True)


def die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A pre-exec hook: the child is SIGKILLed when the thread that forks it exits (servers, helper workers,
    the book runner's chapter processes)."""

    def setup() -> None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


class _Spawner:
    """One daemon thread that forks every server, so PR_SET_PDEATHSIG lasts as long as the process."""

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, argv: list[str], log_path: Path, cwd: Path, *, pipes: bool = False) -> subprocess.Popen:
        """Start ``argv`` from the spawner thread; ``pipes`` gives it a text stdin/stdout (workers)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="server-spawner", daemon=True)
                self._thread.start()
        reply: queue.Queue = queue.Queue()
        self._jobs.put((argv, log_path, cwd, pipes, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value

    def _run(self) -> None:
        while True:
            argv, log_path, cwd, pipes, reply = self._jobs.get()
            try:
                with open(log_path, "ab") as log:
                    proc = subprocess.Popen(
                        argv,
                        cwd=cwd,
                        stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                        stdout=subprocess.PIPE if pipes else log,
                        stderr=log if pipes else subprocess.STDOUT,
                        text=pipes,
                        preexec_fn=die_with_parent(os.getpid()),
                        start_new_session=True,
                    )
                reply.put((True, proc))
            except OSError as exc:  # pragma: no cover - exec failures are reported to the caller
                reply.put((False, exc))


_SPAWNER = _Spawner()


def spawn_worker(argv: list[str], log_path: Path, cwd: Path) -> subprocess.Popen:
    """Start a helper process (e.g. a near-cache task) that dies with this one and talks over stdin/stdout."""
    return _SPAWNER.popen(argv, log_path, cwd, pipes=True)
_LIVE: set["ServerProcess"] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        proc.stop()


atexit.register(_stop_all_at_exit)


def live_server_pids() -> list[int]:
    """PIDs of the servers this process started and has not stopped yet."""
    with _LIVE_LOCK:
        return sorted(p.pid for p in _LIVE if p.pid is not None)


def log_tail(path: Path, lines: int = 5) -> str:
    """The last lines of a server log, joined with ' | ' so an error message stays on one line."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:]) or "(empty log)"


@dataclass(eq=False)
class ServerProcess:
    """One foreground server process with its own temporary directory and log."""

    name: str
    argv: list[str]
    workdir: Path
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        """The process id, or None before `start`."""
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        """Spawn the process from the spawner thread and register it, so the ``atexit`` hook stops it."""
        self.proc = _SPAWNER.popen(self.argv, self.log_path, self.workdir)
        with _LIVE_LOCK:
            _LIVE.add(self)

    def alive(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process if it is still running."""
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; always reaps the process (no zombie)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            else:
                self.proc.wait()
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def failure(self, what: str) -> ServerStartError:
        """A `ServerStartError` saying what went wrong with this server, with the tail of its log."""
        return ServerStartError(f"{self.name} {what}; log: {log_tail(self.log_path)}")
