"""Real Redis, Valkey and Memcached servers on loopback ports, started through `experiments.lab.spawner`.

Every experiment in the book talks to real server processes (Debian's ``redis-server``,
``valkey-server`` from bookworm-backports and ``memcached``), never to a fake. Redis and Valkey
speak one protocol and take one configuration, so one class runs either: its ``engine``. A server
here listens on a port the OS hands out, bound to 127.0.0.1, with persistence off and a password on
Redis, and is *ready* only when it answers (``PING``, ``version``). Groups of servers (Sentinel,
Cluster) are in `experiments.lab.topologies`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from experiments.errors import ParameterError, ServerStartError
from experiments.lab.spawner import LOOPBACK, ServerProcess, check_port_free, free_port, log_tail, make_workdir, require_binary

DEFAULT_PASSWORD = "cache-book-local"
"""Password of every Redis and Sentinel the book starts (they only listen on 127.0.0.1)."""


@dataclass(frozen=True)
class Engine:
    """The programs of one Redis-protocol engine: server, sentinel, command line and benchmark."""

    name: str
    server: str
    sentinel: str
    cli: str
    benchmark: str


ENGINES = {name: Engine(name, f"{name}-server", f"{name}-sentinel", f"{name}-cli", f"{name}-benchmark")
           for name in ("redis", "valkey")}
"""Redis OSS (Debian's 7.0) and Valkey (bookworm-backports' 8.0), the engines ElastiCache sells."""


def engine_named(name: str) -> Engine:
    """The `Engine` called ``name``, or a one-line error listing the ones there are."""
    if name not in ENGINES:
        raise ParameterError(f"engine={name!r} is not known: use one of {', '.join(ENGINES)}")
    return ENGINES[name]


def server_identity(client: redis.Redis) -> dict[str, str]:
    """What a Redis-protocol server says it is: its name and version, and Valkey's own version when it
    is Valkey (Valkey 8 reports ``redis_version:7.2.4`` for clients that check it)."""
    info = client.info("server")
    name = str(info.get("server_name", "redis"))
    return {"server_name": name, "redis_version": str(info["redis_version"]),
            "version": str(info.get("valkey_version", info["redis_version"]))}


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
    """A real ``redis-server`` or ``valkey-server``: loopback only, password on, no RDB/AOF,
    foreground, owned by us.

    ``engine`` is ``"redis"`` or ``"valkey"`` (`ENGINES`). ``extra_args`` are passed as
    ``--name value`` pairs, e.g. ``("--maxmemory", "2mb")``. ``port=None`` lets the OS choose; a
    given port that is taken raises `PortInUseError`.
    """

    ready_what = "answering PING"

    def __init__(
        self,
        *,
        port: int | None = None,
        password: str = DEFAULT_PASSWORD,
        extra_args: tuple[str, ...] = (),
        name: str | None = None,
        engine: str = "redis",
        startup_timeout_s: float = 10.0,
    ) -> None:
        self.engine = engine_named(engine)
        self.binary = self.engine.server
        super().__init__(port=port, name=name or engine, startup_timeout_s=startup_timeout_s)
        self.password = password
        self.extra_args = tuple(extra_args)

    @property
    def url(self) -> str:
        """``redis://:password@host:port/0`` of this server (meaningful once started)."""
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def argv(self, port: int, workdir: Path) -> list[str]:
        """The server's command line: loopback only, password (also for replication), no RDB/AOF, foreground,
        log to stdout, ``DEBUG`` allowed from loopback; then ``extra_args``."""
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
        """``rediss://:password@host:port/0`` of this server (meaningful once started)."""
        return f"rediss://:{self.password}@{self.host}:{self.port}/0"

    @property
    def certificate(self) -> Path:
        """The self-signed certificate (PEM) in the server's directory, against which clients verify it."""
        return self.workdir / "cert.pem"

    def argv(self, port: int, workdir: Path) -> list[str]:
        """The plain command line with its TCP port closed and TLS on ``port`` (clients need no certificate
        of their own); the certificate is made first if the directory has none."""
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
        """A redis-py client over TLS that verifies the server against `certificate`."""
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
        """``host:port`` of this server (meaningful once started)."""
        return f"{self.host}:{self.port}"

    def argv(self, port: int, workdir: Path) -> list[str]:
        """The ``memcached`` command line: loopback TCP only, UDP off, the given memory, threads and item
        size limit, 1,024 connections, and ``-u`` the current user (memcached refuses to run as root without one)."""
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
