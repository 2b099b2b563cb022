"""Groups of real servers: a Sentinel-watched primary with replicas, and a Redis Cluster — on
either engine of `experiments.lab.servers.ENGINES`.

Ready means more than listening: a replica's link is up, the sentinels know each other and every
replica, the cluster reports ``cluster_state:ok``. Each group starts and stops its members together.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import redis

from experiments.errors import ServerStartError
from experiments.lab.servers import DEFAULT_PASSWORD, RedisServer, _Managed, _SingleServer, _wait_until, engine_named
from experiments.lab.spawner import LOOPBACK, free_port, require_binary


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
        engine: str = "redis",
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.engine = engine_named(engine)
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
        engine = self.engine.name
        self.primary = RedisServer(password=self.password, name=f"{engine}-primary", engine=engine).start()
        for i in range(self.n_replicas):
            replica = RedisServer(
                password=self.password,
                name=f"{engine}-replica{i}",
                engine=engine,
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
    """One ``redis-sentinel`` (or ``valkey-sentinel``) of a `SentinelSet`, with a config file of its
    own (sentinel rewrites it)."""

    ready_what = "answering PING"

    def __init__(self, owner: SentinelSet, name: str) -> None:
        super().__init__(port=None, name=name, startup_timeout_s=owner.startup_timeout_s)
        self.owner, self.binary = owner, owner.engine.sentinel

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
    """A Redis (or Valkey) Cluster of ``primaries`` primaries with ``replicas_per_primary`` replicas each.

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
        engine: str = "redis",
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.engine = engine_named(engine)
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
                name=f"{self.engine.name}-cluster{i}",
                engine=self.engine.name,
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
            [require_binary(self.engine.cli), "-a", self.password, "--no-auth-warning", "--cluster", "create",
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


class Together(_Managed):
    """Several groups started at once, each in a thread (Sentinels and clusters need seconds of gossip
    before they are ready, which overlap), and stopped together; if one fails, all are stopped."""

    def __init__(self, groups: list[_Managed]) -> None:
        self.groups = list(groups)
        self._starting: Future | None = None

    def _start(self) -> None:
        with ThreadPoolExecutor(len(self.groups)) as pool:
            futures = [pool.submit(g.start) for g in self.groups]
        for future in futures:
            future.result()

    def start_in_background(self) -> "Together":
        """Begin starting the groups and return at once, so that other work overlaps their gossip;
        `wait` blocks until they are ready (and raises what a start raised)."""
        self._starting = ThreadPoolExecutor(1, thread_name_prefix="together").submit(self.start)
        return self

    def wait(self) -> "Together":
        if self._starting is not None:
            self._starting.result()
        return self

    def stop(self) -> None:
        if self._starting is not None:  # a start still under way finishes (or fails) before the stop
            wait([self._starting])
        for group in self.groups:
            group.stop()
