"""Endpoints an experiment reads and writes: a server the book starts, or one the reader names.

Experiments that only read and write keys run against either. With no URL, the book starts its own
real server (`experiments.lab.servers`). With ``redis_url`` / ``memcached_servers`` (a papermill
parameter, or the ``CACHE_BOOK_REDIS_URL`` / ``CACHE_BOOK_MEMCACHED_SERVERS`` environment variables)
they run against the reader's cluster: every key is put under a per-run namespace, nothing is ever
flushed, and only the keys the run wrote are deleted at the end. Experiments that kill or reconfigure
nodes call `Target.require_owned` and refuse anything the book did not start.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import redis

from experiments.errors import EndpointError
from experiments.lab.servers import MemcachedServer, RedisServer

REDIS_URL_ENV = "CACHE_BOOK_REDIS_URL"
MEMCACHED_ENV = "CACHE_BOOK_MEMCACHED_SERVERS"
_RUN_COUNTER = itertools.count(1)


def _namespace() -> str:
    return f"cachebook:{os.getpid()}:{next(_RUN_COUNTER)}:"


def parse_redis_url(url: str) -> dict:
    """Split ``redis[s]://[[user]:password@]host:port[/db]`` into client options, or explain why not."""
    usage = "expected redis://[:password@]host:port[/db] (rediss:// for TLS, ?ssl_ca_certs=PATH for a private CA)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointError(f"redis_url={url!r} is not a valid URL: {usage}") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname or port is None:
        raise EndpointError(f"redis_url={url!r} is not a Redis URL: {usage}")
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit():
        raise EndpointError(f"redis_url={url!r} has database {db_text!r}; it must be a number: {usage}")
    query = parse_qs(parts.query)
    if set(query) - {"ssl_ca_certs"} or (query and parts.scheme != "rediss"):
        raise EndpointError(f"redis_url={url!r}: the only query parameter is ssl_ca_certs=PATH (a CA file for a "
                            f"rediss:// endpoint whose certificate the system does not trust): {usage}")
    tls = {"ssl_ca_certs": query["ssl_ca_certs"][0]} if query else {}
    return dict(host=parts.hostname, port=port, username=parts.username or None,
                password=parts.password or None, db=int(db_text), ssl=parts.scheme == "rediss", **tls)


def parse_memcached_servers(spec: str) -> list[tuple[str, int]]:
    """Split ``host:port[,host:port…]`` into addresses, or explain what is malformed."""
    servers = []
    for item in (s.strip() for s in spec.split(",")):
        match = re.fullmatch(r"([A-Za-z0-9.\-]+):(\d{1,5})", item)
        if not match or not 0 < int(match.group(2)) < 65536:
            raise EndpointError(
                f"memcached_servers={spec!r}: {item!r} is not host:port; expected e.g. '10.0.0.5:11211,10.0.0.6:11211'"
            )
        servers.append((match.group(1), int(match.group(2))))
    return servers


@dataclass
class Target:
    """Where an experiment's keys live, and whether the book owns (and may break) the servers."""

    kind: str
    address: str
    namespace: str
    server: object | None = None
    written: set[str] = field(default_factory=set, repr=False)

    @property
    def owned(self) -> bool:
        """Whether the book started the server (and so may kill or reconfigure it)."""
        return self.server is not None

    def key(self, name: str) -> str:
        """The namespaced form of a key of the key design (``product:B08X…`` → ``cachebook:…:product:B08X…``)."""
        self.written.add(name)
        return self.namespace + name

    def require_owned(self, experiment: str) -> None:
        """Refuse a destructive experiment on an endpoint the book did not start."""
        if not self.owned:
            raise EndpointError(
                f"{experiment} kills or reconfigures {self.kind} nodes, so it only runs on servers the book "
                f"starts itself; {self.address} was given as a parameter — leave it empty for this experiment"
            )


class RedisTarget(Target):
    """A Redis endpoint plus a redis-py client (RESP2, explicit timeouts; a `redis.RedisCluster` for an
    endpoint in cluster mode, TLS for ``rediss://``)."""

    def __init__(self, client: redis.Redis, address: str, server: RedisServer | None) -> None:
        super().__init__("Redis", address, _namespace(), server)
        self.client = client

    def close(self) -> None:
        """Delete this run's keys (never anything else), close the client, stop an owned server."""
        try:
            if not self.owned:
                for batch in _batched(self.client.scan_iter(match=self.namespace + "*", count=500), 500):
                    if isinstance(self.client, redis.RedisCluster):  # keys of several slots: one DEL each
                        for key in batch:
                            self.client.delete(key)
                    else:
                        self.client.delete(*batch)
            self.client.close()
        finally:
            if self.server is not None:
                self.server.stop()


class MemcachedTarget(Target):
    """A memcached endpoint (one node, or several behind pymemcache's `HashClient`)."""

    def __init__(self, connect, address: str, server: MemcachedServer | None) -> None:
        super().__init__("memcached", address, _namespace(), server)
        self.connect = connect
        self.client = connect()

    def new_client(self):
        """Another client to the same endpoint (pymemcache clients are not thread-safe)."""
        return self.connect()

    def close(self) -> None:
        """Delete the keys this run wrote (memcached cannot list keys), close, stop an owned server."""
        try:
            if not self.owned:
                for name in self.written:
                    self.client.delete(self.namespace + name, noreply=False)
            self.client.close()
        finally:
            if self.server is not None:
                self.server.stop()


def _batched(items, size):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def open_redis(redis_url: str | None = None, *, engine: str = "redis") -> RedisTarget:
    """Connect to ``redis_url`` (or ``$CACHE_BOOK_REDIS_URL``), or start a private server of ``engine``
    (``redis-server`` or ``valkey-server``)."""
    url = redis_url if redis_url else os.environ.get(REDIS_URL_ENV, "")
    if not url:
        server = RedisServer(engine=engine).start()
        return RedisTarget(server.client(), f"127.0.0.1:{server.port}", server)
    options = parse_redis_url(url)
    address = f"{options['host']}:{options['port']}"
    client = redis.Redis(**options, protocol=2, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.ping()
        if int(client.info("cluster").get("cluster_enabled", 0)):  # cluster mode (ElastiCache Serverless is)
            client.close()
            cluster = {k: v for k, v in options.items() if k != "db"}
            client = redis.RedisCluster(**cluster, protocol=2, socket_timeout=5, socket_connect_timeout=2)
            client.ping()
    except redis.AuthenticationError as exc:
        raise EndpointError(f"Redis at {address} refused the credentials in redis_url ({exc})") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EndpointError(
            f"cannot reach Redis at {address} ({reason}): check redis_url, or leave it empty so the book "
            f"starts its own server"
        ) from None
    return RedisTarget(client, address, None)


def open_memcached(memcached_servers: str | None = None) -> MemcachedTarget:
    """Connect to ``memcached_servers`` (or ``$CACHE_BOOK_MEMCACHED_SERVERS``), or start a private node."""
    from pymemcache.client.base import Client
    from pymemcache.client.hash import HashClient

    spec = memcached_servers if memcached_servers else os.environ.get(MEMCACHED_ENV, "")
    if not spec:
        server = MemcachedServer().start()
        return MemcachedTarget(server.client, server.address, server)
    servers = parse_memcached_servers(spec)
    for host, port in servers:
        try:
            with socket.create_connection((host, port), timeout=2) as sock:
                sock.sendall(b"version\r\n")
                if not sock.recv(64).startswith(b"VERSION"):
                    raise OSError("it does not answer the memcached `version` command")
        except OSError as exc:
            raise EndpointError(
                f"cannot reach memcached at {host}:{port} ({exc}): check memcached_servers, or leave it "
                f"empty so the book starts its own server"
            ) from None
    options = dict(connect_timeout=2, timeout=5, default_noreply=False)

    def connect():
        return Client(servers[0], **options) if len(servers) == 1 else HashClient(servers, **options)

    return MemcachedTarget(connect, spec, None)
