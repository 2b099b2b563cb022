"""Groups of real servers: a Sentinel-watched primary with replicas, and a Redis Cluster — on
either engine of `experiments.lab.servers.ENGINES`.

Ready means more than listening: a replica's link is up, the sentinels know each other and every
replica, the cluster reports ``cluster_state:ok``. Each group starts and stops its members together.

A group runs on loopback, or — given a `experiments.lab.netlab.NetLab` and the host of each member — with
every member in a host of the network lab (`Placement`), so that a partition can cut one member off.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from pathlib import Path

import redis

from experiments.errors import ParameterError, ServerStartError
from experiments.lab.quiet import busy
from experiments.lab.servers import DEFAULT_PASSWORD, RedisServer, _Managed, _SingleServer, _wait_until, engine_named
from experiments.lab.spawner import free_port, require_binary


def _info_field(client: redis.Redis, section: str, name: str) -> str | None:
    value = client.info(section).get(name)
    return None if value is None else str(value)


class Placement:
    """Where a group's members run: on loopback (no lab), or each in its host of a `NetLab`
    (``hosts`` maps a member's name — ``primary``, ``replica0``, ``sentinel0``, ``node0`` … — to a host)."""

    def __init__(self, lab=None, hosts: dict[str, str] | None = None) -> None:
        self.lab, self.hosts = lab, dict(hosts or {})
        if lab is None and self.hosts:
            raise ParameterError("hosts were given without a network lab: pass lab=NetLab(...) too")

    def require(self, members: list[str]) -> None:
        """One line naming a member without a host of the lab."""
        if self.lab is None:
            return
        missing = [m for m in members if m not in self.hosts]
        if missing:
            raise ParameterError(f"no lab host for {', '.join(missing)}: give hosts={{member: host}} for every member")
        for member in members:
            self.lab.ns(self.hosts[member])  # a host that is not in the lab is one line too

    def server(self, member: str, server_class, **kwargs):
        """A server of ``server_class`` for ``member``: on loopback, or placed in its host."""
        if self.lab is None:
            return server_class(**kwargs)
        return self.lab.place(self.hosts[member], server_class, **kwargs)

    def at(self, member: str):
        """The block's sockets open from ``member``'s host (nothing to do on loopback)."""
        return nullcontext() if self.lab is None else self.lab.inside(self.hosts[member])

    def argv(self, member: str, command: list[str]) -> list[str]:
        """``command`` run in ``member``'s host."""
        return command if self.lab is None else self.lab.argv(self.hosts[member], command)


class SentinelSet(_Managed):
    """A Redis primary, ``replicas`` replicas and ``sentinels`` sentinels watching them.

    Ready means: every replica reports ``master_link_status:up``, every sentinel knows every other
    sentinel and every replica. Sentinels need a few seconds to find each other through the
    primary's hello channel; killing the primary before that would fail over nothing.
    ``server_args`` go to the primary and every replica (e.g. ``min-replicas-to-write``); ``lab`` and
    ``hosts`` place the members in a network lab (`Placement`).
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
        server_args: tuple[str, ...] = (),
        lab=None,
        hosts: dict[str, str] | None = None,
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
        self.server_args = tuple(server_args)
        self.placement = Placement(lab, hosts)
        self.placement.require(["primary", *(f"replica{i}" for i in range(replicas)),
                                *(f"sentinel{i}" for i in range(sentinels))])
        self.primary: RedisServer | None = None
        self.replicas: list[RedisServer] = []
        self.sentinels: list[_SentinelProcess] = []

    @property
    def servers(self) -> list[RedisServer]:
        """The data nodes started so far: the primary, then the replicas."""
        return [s for s in [self.primary, *self.replicas] if s is not None]

    @property
    def pids(self) -> list[int]:
        """Process ids of every data node and sentinel started so far."""
        return [p for p in [*(s.pid for s in self.servers), *(s.pid for s in self.sentinels)] if p]

    def _start(self) -> None:
        engine, place = self.engine.name, self.placement
        self.primary = place.server("primary", RedisServer, password=self.password, name=f"{engine}-primary",
                                    engine=engine, extra_args=self.server_args).start()
        for i in range(self.n_replicas):
            replica = place.server(f"replica{i}", RedisServer, password=self.password, name=f"{engine}-replica{i}",
                                   engine=engine, extra_args=(*self.server_args, "--replicaof", self.primary.host,
                                                              str(self.primary.port)))
            self.replicas.append(replica.start())
        for i, replica in enumerate(self.replicas):
            with place.at(f"replica{i}"), replica.client() as c:
                _wait_until(
                    lambda: _info_field(c, "replication", "master_link_status") == "up",
                    replica.process, self.startup_timeout_s, "linked to its primary",
                )
        for i in range(self.n_sentinels):
            self.sentinels.append(place.server(f"sentinel{i}", _SentinelProcess, owner=self, name=f"sentinel{i}"))
            self.sentinels[-1].start()
        for i, sentinel in enumerate(self.sentinels):
            with place.at(f"sentinel{i}"), sentinel.client() as c:
                _wait_until(
                    lambda: len(c.sentinel_sentinels(self.master_name)) == self.n_sentinels - 1
                    and len(c.sentinel_slaves(self.master_name)) == self.n_replicas,
                    sentinel.process, self.startup_timeout_s, "aware of every other sentinel and replica",
                )

    def sentinel_client(self):
        """A redis-py `Sentinel` that knows every sentinel of the set."""
        from redis.sentinel import Sentinel

        return Sentinel(
            [(s.host, s.port) for s in self.sentinels],
            sentinel_kwargs={"password": self.password, "socket_timeout": 0.5},
            password=self.password,
            socket_timeout=0.5,
            protocol=2,
        )

    def stop(self) -> None:
        """Stop the sentinels first, so that they fail nothing over, then the replicas and the primary."""
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
        return redis.Redis(host=self.host, port=self.port, password=self.owner.password,
                           protocol=2, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)

    def _ready(self) -> bool:
        with self.client() as c:
            return bool(c.ping())

    def argv(self, port: int, workdir: Path) -> list[str]:
        o = self.owner
        conf = workdir / "sentinel.conf"
        conf.write_text("\n".join([
            f"port {port}",
            f"bind {self.host}",
            "daemonize no",
            'logfile ""',
            f"dir {workdir}",
            f"requirepass {o.password}",
            f"sentinel sentinel-pass {o.password}",
            f"sentinel monitor {o.master_name} {o.primary.host} {o.primary.port} {o.quorum}",
            f"sentinel auth-pass {o.master_name} {o.password}",
            f"sentinel down-after-milliseconds {o.master_name} {o.down_after_ms}",
            f"sentinel failover-timeout {o.master_name} {o.failover_timeout_ms}",
            "",
        ]))
        return [require_binary(self.binary), str(conf)]


class RedisClusterSet(_Managed):
    """A Redis (or Valkey) Cluster of ``primaries`` primaries with ``replicas_per_primary`` replicas each.

    Ready means ``cluster_state:ok`` on every node and ``master_link_status:up`` on every replica
    (a primary killed before its replica has synced leaves the cluster failed for good). ``lab`` and
    ``hosts`` (``node0`` …) place the nodes in a network lab (`Placement`).
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
        lab=None,
        hosts: dict[str, str] | None = None,
    ) -> None:
        self.engine = engine_named(engine)
        if primaries < 3:
            raise ServerStartError(f"primaries={primaries}: Redis Cluster needs at least 3 primaries")
        if replicas_per_primary < 0:
            raise ServerStartError(f"replicas_per_primary={replicas_per_primary} must be ≥ 0")
        self.n_primaries, self.n_replicas = primaries, replicas_per_primary
        self.node_timeout_ms, self.password = node_timeout_ms, password
        self.startup_timeout_s = startup_timeout_s
        self.placement = Placement(lab, hosts)
        self.placement.require([f"node{i}" for i in range(primaries * (1 + replicas_per_primary))])
        self.nodes: list[RedisServer] = []

    @property
    def pids(self) -> list[int]:
        """Process ids of the nodes started so far."""
        return [n.pid for n in self.nodes if n.pid]

    def _start(self) -> None:
        total = self.n_primaries * (1 + self.n_replicas)
        place = self.placement
        for i in range(total):
            node = place.server(
                f"node{i}", RedisServer,
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
            place.argv("node0", [require_binary(self.engine.cli), "-a", self.password, "--no-auth-warning", "--cluster",
                                 "create", *(f"{n.host}:{n.port}" for n in self.nodes),
                                 "--cluster-replicas", str(self.n_replicas), "--cluster-yes"]),
            capture_output=True, text=True, timeout=self.startup_timeout_s,
        )
        if create.returncode != 0:
            tail = " | ".join((create.stdout + create.stderr).strip().splitlines()[-3:])
            raise ServerStartError(f"redis-cli --cluster create failed: {tail}")
        for i, node in enumerate(self.nodes):
            with place.at(f"node{i}"), node.client(decode_responses=True) as c:
                _wait_until(lambda: "cluster_state:ok" in c.execute_command("CLUSTER", "INFO"),
                            node.process, self.startup_timeout_s, "reporting cluster_state:ok")
                if _info_field(c, "replication", "role") == "slave":
                    _wait_until(lambda: _info_field(c, "replication", "master_link_status") == "up",
                                node.process, self.startup_timeout_s, "linked to its primary")
        for i, node in enumerate(self.nodes):  # every node must list every replica, or clients cannot read from them
            with place.at(f"node{i}"), node.client(decode_responses=True) as c:
                _wait_until(lambda: all(len(r) == 3 + self.n_replicas for r in c.execute_command("CLUSTER", "SLOTS")),
                            node.process, self.startup_timeout_s, "listing every replica in CLUSTER SLOTS")

    def client(self, **kwargs):
        """A redis-py `RedisCluster` client seeded with every node."""
        from redis.cluster import ClusterNode, RedisCluster

        options = dict(protocol=2, socket_timeout=2, socket_connect_timeout=1)
        options.update(kwargs)
        return RedisCluster(startup_nodes=[ClusterNode(n.host, n.port) for n in self.nodes],
                            password=self.password, **options)

    def stop(self) -> None:
        """Stop every node, the last started first."""
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
        `wait` blocks until they are ready (and raises what a start raised). The start is load that outlives
        the cell that began it: it holds a busy section (`experiments.lab.quiet`) until it is done."""
        def start() -> None:
            with busy():
                self.start()

        self._starting = ThreadPoolExecutor(1, thread_name_prefix="together").submit(start)
        return self

    def wait(self) -> "Together":
        """Wait until a `start_in_background` is done and raise what it raised; at once if none began."""
        if self._starting is not None:
            self._starting.result()
        return self

    def stop(self) -> None:
        """Stop every group, once a start still under way has finished (or failed)."""
        if self._starting is not None:  # a start still under way finishes (or fails) before the stop
            wait([self._starting])
        for group in self.groups:
            group.stop()
