"""experiments.lab.servers: real processes that are ready when returned and gone when their owner is."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import redis

from experiments.errors import MissingBinaryError, PortInUseError, ServerStartError
from experiments.lab.processes import SESSION_ENV, running, server_processes
from experiments.lab.servers import DEFAULT_PASSWORD, MemcachedServer, RedisServer
from experiments.lab.spawner import live_server_pids
from experiments.lab.topologies import RedisClusterSet, SentinelSet, Together


def gone_within(pids, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(running(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def test_redis_is_private_volatile_and_loopback(redis_server):
    client = redis_server.client(decode_responses=True)
    assert client.ping()
    assert client.config_get("save") == {"save": ""}
    assert client.config_get("appendonly") == {"appendonly": "no"}
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    anonymous = redis.Redis(port=redis_server.port, protocol=2)
    with pytest.raises(redis.AuthenticationError):
        anonymous.get("x")


def test_memcached_answers(memcached_server):
    client = memcached_server.client()
    client.set("k", b"v")
    assert client.get("k") == b"v"


def test_stop_reaps_the_process():
    server = RedisServer().start()
    pid = server.pid
    assert running(pid) and pid in live_server_pids()
    server.stop()
    assert not running(pid) and pid not in live_server_pids()


def test_exception_inside_with_stops_the_server():
    with pytest.raises(RuntimeError):
        with MemcachedServer() as server:
            pid = server.pid
            raise RuntimeError("boom")
    assert not running(pid)


@pytest.mark.parametrize("engine", ["redis", "valkey"])
def test_the_leak_check_sees_every_engines_servers_and_sentinels(engine):
    session = os.environ[SESSION_ENV]
    with SentinelSet(engine=engine) as group:
        pids = set(group.pids)
        assert pids <= set(server_processes(session))
    assert not pids & set(server_processes(session))


def test_sentinel_set_is_ready_when_returned():
    with SentinelSet() as group:
        primary = group.primary
        for sentinel in group.sentinels:
            with sentinel.client() as c:
                assert len(c.sentinel_sentinels("book")) == 2
                assert c.sentinel_master("book")["num-other-sentinels"] == 2
        assert group.sentinel_client().discover_master("book") == ("127.0.0.1", primary.port)
        with group.replicas[0].client(decode_responses=True) as c:
            assert c.info("replication")["master_link_status"] == "up"


def test_cluster_is_ready_when_returned():
    with RedisClusterSet() as cluster:
        client = cluster.client()
        for i in range(100):
            client.set(f"product:{i}", i)
        assert all(int(client.get(f"product:{i}")) == i for i in range(100))
        info = cluster.nodes[0].client(decode_responses=True).execute_command("CLUSTER", "INFO")
        assert "cluster_state:ok" in info and "cluster_known_nodes:6" in info


OWNER = textwrap.dedent("""
    import json, sys, time
    from experiments.lab.servers import MemcachedServer, RedisServer
    from experiments.lab.topologies import RedisClusterSet, SentinelSet
    servers = [RedisServer().start(), MemcachedServer().start()]
    if sys.argv[1] == "all":
        servers += [SentinelSet().start(), RedisClusterSet().start()]
    pids = []
    for s in servers:
        pids += getattr(s, "pids", None) or [s.pid]
    print(json.dumps(pids), flush=True)
    time.sleep(120)
""")


def start_owner(kind: str) -> tuple[subprocess.Popen, list[int]]:
    # SIGINT restored to its default: a job started in the background by a shell inherits it ignored
    owner = subprocess.Popen([sys.executable, "-c", OWNER, kind], stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    line = owner.stdout.readline()
    assert line, "the owner process died before reporting its servers"
    pids = json.loads(line)
    assert all(running(p) for p in pids)
    return owner, pids


def test_sigkill_of_the_owner_kills_every_server_within_2_s():
    owner, pids = start_owner("all")
    assert len(pids) == 2 + 5 + 6  # single redis + memcached, sentinel set, cluster
    owner.kill()
    owner.wait()
    assert gone_within(pids, 2.0), [p for p in pids if running(p)]


def test_sigint_of_the_owner_stops_its_servers():
    owner, pids = start_owner("single")
    try:
        owner.send_signal(signal.SIGINT)
        owner.wait(timeout=10)
        assert gone_within(pids, 2.0)
    finally:
        owner.kill()
        owner.wait()


def test_missing_binary_names_the_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingBinaryError) as excinfo:
        RedisServer().start()
    message = str(excinfo.value)
    assert "apt-get install -y redis-server" in message and "\n" not in message


def test_missing_memcached_names_the_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingBinaryError, match="apt-get install -y memcached"):
        MemcachedServer().start()


def test_port_already_taken_is_one_clear_line():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError) as excinfo:
            RedisServer(port=port).start()
    message = str(excinfo.value)
    assert f"port {port}" in message and "already in use" in message and "\n" not in message


@pytest.mark.parametrize("port", [0, -1, 70000])
def test_impossible_port_is_rejected(port):
    with pytest.raises(PortInUseError, match="not a TCP port"):
        RedisServer(port=port).start()


def test_a_server_that_cannot_start_reports_its_log():
    with pytest.raises(ServerStartError) as excinfo:
        RedisServer(extra_args=("--maxmemory-policy", "no-such-policy")).start()
    message = str(excinfo.value)
    assert "exited" in message and "maxmemory-policy" in message and "\n" not in message


@pytest.mark.parametrize("field", ["memory_mb", "threads", "max_item_kb"])
@pytest.mark.parametrize("value", [0, -4])
def test_memcached_rejects_non_positive_sizes(field, value):
    with pytest.raises(ServerStartError, match=f"{field}={value} must be a positive integer"):
        MemcachedServer(**{field: value})


def test_password_is_the_documented_one(redis_server):
    assert redis_server.password == DEFAULT_PASSWORD
    assert f":{DEFAULT_PASSWORD}@127.0.0.1:{redis_server.port}" in redis_server.url


def test_failed_starts_leave_no_directory(monkeypatch, tmp_path):
    """A start that fails (missing binary, bad config) removes the server's temporary directory."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with pytest.raises(ServerStartError):
        RedisServer(extra_args=("--maxmemory-policy", "no-such-policy")).start()
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingBinaryError):
        MemcachedServer().start()
    assert list(tmp_path.iterdir()) == []


def test_directories_of_killed_owners_are_swept(tmp_path, monkeypatch):
    """kill -9 leaves the owner's directories behind; the next server start removes them."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    owner, pids = start_owner("single")
    left = list(tmp_path.glob("cachebook-*"))
    assert len(left) == 2  # its redis and memcached
    owner.kill()
    owner.wait()
    assert gone_within(pids, 2.0)
    with RedisServer():
        assert not any(d.exists() for d in left)
    assert list(tmp_path.iterdir()) == []


def test_groups_started_in_the_background_are_ready_after_wait_and_gone_after_stop():
    group = Together([RedisServer(engine="valkey"), RedisServer(engine="redis")]).start_in_background()
    group.wait()
    pids = [s.pid for s in group.groups]
    assert all(s.client().ping() for s in group.groups)
    group.stop()
    assert gone_within(pids, 5)


def test_a_stop_during_a_background_start_leaves_nothing():
    before = set(live_server_pids())  # servers of other tests' fixtures may be running
    group = Together([SentinelSet(engine="valkey")]).start_in_background()
    group.stop()  # waits for the start under way, then stops every member
    assert not group.groups[0].pids or gone_within(group.groups[0].pids, 5)
    assert set(live_server_pids()) == before
