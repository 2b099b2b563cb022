"""Real Redis, Sentinel and Memcached servers on loopback ports, owned by this Python process.

Every experiment in the book talks to real server processes (Debian's ``redis-server``,
``redis-sentinel`` and ``memcached``), never to a fake. This module starts them on ports the OS
hands out, bound to 127.0.0.1, with persistence off and a password on Redis, each in a temporary
directory of its own, and waits until they are *really* ready: a replica's link is up, the sentinels
know each other, the cluster reports ``cluster_state:ok``.

No server outlives its owner:

* ``with`` blocks and ``stop()`` terminate and reap the process (also after an exception or Ctrl-C);
* an ``atexit`` hook stops whatever is still registered when the interpreter exits normally;
* every server is started with ``PR_SET_PDEATHSIG = SIGKILL``, so the kernel kills it if the Python
  process dies without running any Python code (``kill -9``, a crashed Jupyter kernel).

Two traps of ``PR_SET_PDEATHSIG`` shape the code: the signal fires when the *thread* that forked the
child exits, so all servers are spawned by one long-lived daemon thread (``_SPAWNER``); and a
server that daemonizes itself escapes it, so every server runs in the foreground.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import redis

from experiments.errors import MissingBinaryError, PortInUseError, ServerStartError
from experiments.processes import running

LOOPBACK = "127.0.0.1"
DEFAULT_PASSWORD = "cache-book-local"
"""Password of every Redis and Sentinel the book starts (they only listen on 127.0.0.1)."""

APT_PACKAGE = {
    "redis-server": "redis-server",
    "redis-sentinel": "redis-sentinel",
    "redis-cli": "redis-tools",
    "redis-benchmark": "redis-tools",
    "memcached": "memcached",
    "memcaslap": "libmemcached-tools",
    "openssl": "openssl",
}

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------- process plumbing


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


TEMP_PREFIX = "cachebook-"


def make_workdir(name: str) -> Path:
    """A fresh temporary directory for one server, named after this process so orphans can be found."""
    sweep_orphan_workdirs()
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-{name}-"))


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


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """The pre-exec hook of every server: die with the parent, and never get the terminal's Ctrl-C."""

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
                        preexec_fn=_child_setup(os.getpid()),
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
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        self.proc = _SPAWNER.popen(self.argv, self.log_path, self.workdir)
        with _LIVE_LOCK:
            _LIVE.add(self)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
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
        return ServerStartError(f"{self.name} {what}; log: {log_tail(self.log_path)}")


def _wait_until(check: Callable[[], bool], proc: ServerProcess, timeout_s: float, what: str) -> None:
    """Poll ``check`` until it is true; fail early with the log tail if the process died."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not proc.alive():
            raise proc.failure(f"exited with code {proc.proc.returncode} before it was {what}")
        try:
            if check():
                return
        except (OSError, redis.RedisError):
            pass
        if time.monotonic() > deadline:
            raise proc.failure(f"was not {what} after {timeout_s:.0f} s")
        time.sleep(0.02)


class _Managed:
    """Context-manager protocol shared by every server kind: ``with X() as x`` == start/stop."""

    def start(self):
        """Start and wait until ready; on any failure (or Ctrl-C) stop what was started, then raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- single servers


class _SingleServer(_Managed):
    """One server process on a loopback port, in its own directory: start, ready-check, kill, stop.

    Subclasses give the command line (`argv`), the readiness probe (`_ready`, described by
    ``ready_what``) and a client.
    """

    binary = ""
    ready_what = ""
    host = LOOPBACK

    def __init__(self, *, port: int | None, name: str, startup_timeout_s: float) -> None:
        self.requested_port = port
        self.name = name
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self.process: ServerProcess | None = None
        self.workdir: Path | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def argv(self, port: int, workdir: Path) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _ready(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def _start(self) -> None:
        if self.requested_port is not None:
            check_port_free(self.requested_port)
        self.workdir = workdir = make_workdir(self.name)
        for attempt in range(3):  # an OS-chosen port can be grabbed between choosing and binding
            self.port = self.requested_port or free_port()
            self.process = ServerProcess(self.name, self.argv(self.port, workdir), workdir, workdir / "server.log")
            self.process.start()
            try:
                _wait_until(self._ready, self.process, self.startup_timeout_s, self.ready_what)
                return
            except ServerStartError:
                self.process.stop()
                in_use = "Address already in use" in log_tail(self.process.log_path, 20)
                if not in_use or self.requested_port is not None or attempt == 2:
                    raise

    def kill(self) -> None:
        """SIGKILL the server, as a crash or a failed host would (for failure experiments)."""
        if self.process is not None:
            self.process.signal(signal.SIGKILL)
            self.process.proc.wait()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


class RedisServer(_SingleServer):
    """A real ``redis-server``: loopback only, password on, no RDB/AOF, foreground, owned by us.

    ``extra_args`` are passed as ``--name value`` pairs, e.g. ``("--maxmemory", "2mb")``.
    ``port=None`` lets the OS choose; a given port that is taken raises `PortInUseError`.
    """

    binary = "redis-server"
    ready_what = "answering PING"

    def __init__(
        self,
        *,
        port: int | None = None,
        password: str = DEFAULT_PASSWORD,
        extra_args: tuple[str, ...] = (),
        name: str = "redis",
        startup_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(port=port, name=name, startup_timeout_s=startup_timeout_s)
        self.password = password
        self.extra_args = tuple(extra_args)

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def argv(self, port: int, workdir: Path) -> list[str]:
        return [
            require_binary(self.binary),
            "--port", str(port),
            "--bind", LOOPBACK,
            "--requirepass", self.password,
            "--masterauth", self.password,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--enable-debug-command", "local",
            "--dir", str(workdir),
            "--logfile", "",
            *self.extra_args,
        ]

    def client(self, **kwargs) -> redis.Redis:
        """A redis-py client; RESP2 and short timeouts unless overridden."""
        options = dict(protocol=2, socket_timeout=5, socket_connect_timeout=2, decode_responses=False)
        options.update(kwargs)
        return redis.Redis(host=self.host, port=self.port, password=self.password, **options)

    def _ready(self) -> bool:
        with self.client(socket_timeout=0.5, socket_connect_timeout=0.5) as c:
            return bool(c.ping())


class TlsRedisServer(RedisServer):
    """A `RedisServer` that accepts only TLS, with a self-signed certificate made for 127.0.0.1.

    The certificate (an EC P-256 key, valid one day, ``subjectAltName=IP:127.0.0.1``) is made with
    ``openssl`` in the server's own directory; clients verify it against that file.
    """

    ready_what = "answering PING over TLS"

    def __init__(self, *, name: str = "redis-tls", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    @property
    def url(self) -> str:
        return f"rediss://:{self.password}@{self.host}:{self.port}/0"

    @property
    def certificate(self) -> Path:
        return self.workdir / "cert.pem"

    def argv(self, port: int, workdir: Path) -> list[str]:
        if not (workdir / "cert.pem").exists():
            made = subprocess.run(
                [require_binary("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", f"/CN={LOOPBACK}",
                 "-addext", f"subjectAltName=IP:{LOOPBACK}", "-keyout", str(workdir / "key.pem"),
                 "-out", str(workdir / "cert.pem")], capture_output=True, text=True)
            if made.returncode != 0:
                raise ServerStartError(f"openssl could not make a certificate: {made.stderr.strip()[-300:]}")
        plain = super().argv(port, workdir)
        plain[plain.index("--port") + 1] = "0"
        return [*plain, "--tls-port", str(port), "--tls-cert-file", str(workdir / "cert.pem"),
                "--tls-key-file", str(workdir / "key.pem"), "--tls-ca-cert-file", str(workdir / "cert.pem"),
                "--tls-auth-clients", "no"]

    def client(self, **kwargs) -> redis.Redis:
        return super().client(ssl=True, ssl_ca_certs=str(self.certificate), **kwargs)


class MemcachedServer(_SingleServer):
    """A real ``memcached``: loopback TCP only, no UDP, foreground, owned by us.

    memcached has no password a standard client speaks (its ASCII auth is experimental and neither
    pymemcache nor memcaslap supports it), so it is protected by listening on 127.0.0.1 only.
    ``memory_mb`` must be at least twice ``max_item_kb`` / 1024 (memcached refuses smaller).
    """

    binary = "memcached"
    ready_what = "answering `version`"

    def __init__(
        self,
        *,
        port: int | None = None,
        memory_mb: int = 64,
        threads: int = 4,
        max_item_kb: int = 1024,
        name: str = "memcached",
        startup_timeout_s: float = 10.0,
    ) -> None:
        for label, value in (("memory_mb", memory_mb), ("threads", threads), ("max_item_kb", max_item_kb)):
            if value <= 0:
                raise ServerStartError(f"{label}={value} must be a positive integer")
        super().__init__(port=port, name=name, startup_timeout_s=startup_timeout_s)
        self.memory_mb, self.threads, self.max_item_kb = memory_mb, threads, max_item_kb

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def argv(self, port: int, workdir: Path) -> list[str]:
        return [
            require_binary(self.binary),
            "-l", LOOPBACK,
            "-p", str(port),
            "-U", "0",
            "-m", str(self.memory_mb),
            "-t", str(self.threads),
            "-I", f"{self.max_item_kb}k",
            "-c", "1024",
            "-u", pwd.getpwuid(os.geteuid()).pw_name,
        ]

    def client(self, **kwargs):
        """A pymemcache client that waits for replies (``default_noreply=False``)."""
        from pymemcache.client.base import Client

        options = dict(connect_timeout=2, timeout=5, default_noreply=False)
        options.update(kwargs)
        return Client((self.host, self.port), **options)

    def _ready(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(64).startswith(b"VERSION")


# --------------------------------------------------------------------------- groups of servers


def _info_field(client: redis.Redis, section: str, name: str) -> str | None:
    value = client.info(section).get(name)
    return None if value is None else str(value)


class SentinelSet(_Managed):
    """A Redis primary, ``replicas`` replicas and ``sentinels`` sentinels watching them.

    Ready means: every replica reports ``master_link_status:up``, every sentinel knows every other
    sentinel and every replica. Sentinels need a few seconds to find each other through the
    primary's hello channel; killing the primary before that would fail over nothing.
    """

    def __init__(
        self,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        master_name: str = "book",
        password: str = DEFAULT_PASSWORD,
        startup_timeout_s: float = 30.0,
    ) -> None:
        if replicas < 1 or sentinels < 1 or not 1 <= quorum <= sentinels:
            raise ServerStartError(
                f"replicas={replicas}, sentinels={sentinels}, quorum={quorum}: need ≥1 replica, "
                f"≥1 sentinel and 1 ≤ quorum ≤ sentinels"
            )
        self.n_replicas, self.n_sentinels, self.quorum = replicas, sentinels, quorum
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.master_name, self.password = master_name, password
        self.startup_timeout_s = startup_timeout_s
        self.primary: RedisServer | None = None
        self.replicas: list[RedisServer] = []
        self.sentinels: list[_SentinelProcess] = []

    @property
    def servers(self) -> list[RedisServer]:
        return [s for s in [self.primary, *self.replicas] if s is not None]

    @property
    def pids(self) -> list[int]:
        return [p for p in [*(s.pid for s in self.servers), *(s.pid for s in self.sentinels)] if p]

    def _start(self) -> None:
        self.primary = RedisServer(password=self.password, name="redis-primary").start()
        for i in range(self.n_replicas):
            replica = RedisServer(
                password=self.password,
                name=f"redis-replica{i}",
                extra_args=("--replicaof", LOOPBACK, str(self.primary.port)),
            )
            self.replicas.append(replica.start())
        for replica in self.replicas:
            with replica.client() as c:
                _wait_until(
                    lambda: _info_field(c, "replication", "master_link_status") == "up",
                    replica.process, self.startup_timeout_s, "linked to its primary",
                )
        for i in range(self.n_sentinels):
            self.sentinels.append(_SentinelProcess(self, f"sentinel{i}"))
            self.sentinels[-1].start()
        for sentinel in self.sentinels:
            with sentinel.client() as c:
                _wait_until(
                    lambda: len(c.sentinel_sentinels(self.master_name)) == self.n_sentinels - 1
                    and len(c.sentinel_slaves(self.master_name)) == self.n_replicas,
                    sentinel.process, self.startup_timeout_s, "aware of every other sentinel and replica",
                )

    def sentinel_client(self):
        """A redis-py `Sentinel` that knows every sentinel of the set."""
        from redis.sentinel import Sentinel

        return Sentinel(
            [(LOOPBACK, s.port) for s in self.sentinels],
            sentinel_kwargs={"password": self.password, "socket_timeout": 0.5},
            password=self.password,
            socket_timeout=0.5,
            protocol=2,
        )

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in reversed(self.servers):
            server.stop()


class _SentinelProcess(_SingleServer):
    """One ``redis-sentinel`` of a `SentinelSet`, with a config file of its own (sentinel rewrites it)."""

    binary = "redis-sentinel"
    ready_what = "answering PING"

    def __init__(self, owner: SentinelSet, name: str) -> None:
        super().__init__(port=None, name=name, startup_timeout_s=owner.startup_timeout_s)
        self.owner = owner

    def client(self) -> redis.Redis:
        return redis.Redis(host=LOOPBACK, port=self.port, password=self.owner.password,
                           protocol=2, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)

    def _ready(self) -> bool:
        with self.client() as c:
            return bool(c.ping())

    def argv(self, port: int, workdir: Path) -> list[str]:
        o = self.owner
        conf = workdir / "sentinel.conf"
        conf.write_text("\n".join([
            f"port {port}",
            f"bind {LOOPBACK}",
            "daemonize no",
            'logfile ""',
            f"dir {workdir}",
            f"requirepass {o.password}",
            f"sentinel sentinel-pass {o.password}",
            f"sentinel monitor {o.master_name} {LOOPBACK} {o.primary.port} {o.quorum}",
            f"sentinel auth-pass {o.master_name} {o.password}",
            f"sentinel down-after-milliseconds {o.master_name} {o.down_after_ms}",
            f"sentinel failover-timeout {o.master_name} {o.failover_timeout_ms}",
            "",
        ]))
        return [require_binary(self.binary), str(conf)]


class RedisClusterSet(_Managed):
    """A Redis Cluster of ``primaries`` primaries with ``replicas_per_primary`` replicas each.

    Ready means ``cluster_state:ok`` on every node and ``master_link_status:up`` on every replica
    (a primary killed before its replica has synced leaves the cluster failed for good).
    """

    def __init__(
        self,
        *,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        node_timeout_ms: int = 1000,
        password: str = DEFAULT_PASSWORD,
        startup_timeout_s: float = 30.0,
    ) -> None:
        if primaries < 3:
            raise ServerStartError(f"primaries={primaries}: Redis Cluster needs at least 3 primaries")
        if replicas_per_primary < 0:
            raise ServerStartError(f"replicas_per_primary={replicas_per_primary} must be ≥ 0")
        self.n_primaries, self.n_replicas = primaries, replicas_per_primary
        self.node_timeout_ms, self.password = node_timeout_ms, password
        self.startup_timeout_s = startup_timeout_s
        self.nodes: list[RedisServer] = []

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes if n.pid]

    def _start(self) -> None:
        total = self.n_primaries * (1 + self.n_replicas)
        for i in range(total):
            node = RedisServer(
                password=self.password,
                name=f"redis-cluster{i}",
                extra_args=(
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(self.node_timeout_ms),
                    "--cluster-port", str(free_port()),
                    "--repl-diskless-sync-delay", "0",
                ),
            )
            self.nodes.append(node.start())
        create = subprocess.run(
            [require_binary("redis-cli"), "-a", self.password, "--no-auth-warning", "--cluster", "create",
             *(f"{LOOPBACK}:{n.port}" for n in self.nodes),
             "--cluster-replicas", str(self.n_replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=self.startup_timeout_s,
        )
        if create.returncode != 0:
            tail = " | ".join((create.stdout + create.stderr).strip().splitlines()[-3:])
            raise ServerStartError(f"redis-cli --cluster create failed: {tail}")
        for node in self.nodes:
            with node.client(decode_responses=True) as c:
                _wait_until(lambda: "cluster_state:ok" in c.execute_command("CLUSTER", "INFO"),
                            node.process, self.startup_timeout_s, "reporting cluster_state:ok")
                if _info_field(c, "replication", "role") == "slave":
                    _wait_until(lambda: _info_field(c, "replication", "master_link_status") == "up",
                                node.process, self.startup_timeout_s, "linked to its primary")
        for node in self.nodes:  # every node must list every replica, or clients cannot read from them
            with node.client(decode_responses=True) as c:
                _wait_until(lambda: all(len(r) == 3 + self.n_replicas for r in c.execute_command("CLUSTER", "SLOTS")),
                            node.process, self.startup_timeout_s, "listing every replica in CLUSTER SLOTS")

    def client(self, **kwargs):
        """A redis-py `RedisCluster` client seeded with every node."""
        from redis.cluster import ClusterNode, RedisCluster

        options = dict(protocol=2, socket_timeout=2, socket_connect_timeout=1)
        options.update(kwargs)
        return RedisCluster(startup_nodes=[ClusterNode(LOOPBACK, n.port) for n in self.nodes],
                            password=self.password, **options)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
