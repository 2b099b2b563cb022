"""experiments.lab.netlab: hosts in network namespaces that reach only each other, silent partitions, link
caps, and nothing left behind after an exit, an exception, Ctrl-C or SIGKILL."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from experiments.errors import MissingBinaryError, ParameterError
from experiments.lab import netlab
from experiments.lab.netlab import NetLab, guard_route_orphaned, guard_route_present, lab_namespaces, orphaned_namespaces
from experiments.paths import ROOT


def _listen(lab: NetLab, host: str, port: int, stop: threading.Event) -> threading.Event:
    """A TCP server in ``host`` that answers b"hi" until ``stop``; returns when it listens."""
    ready = threading.Event()

    def serve() -> None:
        with lab.inside(host), socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((lab.address[host], port))
            server.listen()
            server.settimeout(0.2)
            ready.set()
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.sendall(b"hi")

    threading.Thread(target=serve, daemon=True).start()
    assert ready.wait(5)
    return ready


def _ask(lab: NetLab, frm: str, to: str, port: int, timeout: float = 1.0) -> bytes:
    with lab.inside(frm), socket.create_connection((lab.address[to], port), timeout=timeout) as conn:
        return conn.recv(2)


def test_hosts_reach_each_other_and_nothing_else_reaches_them():
    stop = threading.Event()
    with NetLab(["a", "b"]) as lab:
        try:
            _listen(lab, "a", 7001, stop)
            assert _ask(lab, "b", "a", 7001) == b"hi"
            assert guard_route_present()
            with pytest.raises(OSError):  # the machine's own namespace: the subnet is blackholed
                socket.create_connection((lab.address["a"], 7001), timeout=1)
            with lab.inside("a"), pytest.raises(OSError):  # a host has no route off the lab
                socket.create_connection(("192.0.2.1", 80), timeout=1)
        finally:
            stop.set()
    assert not lab_namespaces(os.getpid()) and not guard_route_orphaned()  # another run's lab may be live


def test_a_partition_is_silent_and_heals():
    stop = threading.Event()
    with NetLab(["a", "b"]) as lab:
        try:
            _listen(lab, "a", 7002, stop)
            lab.partition("a", "b")
            started = time.monotonic()
            with pytest.raises(TimeoutError):  # no reset: the caller waits for its own timeout
                _ask(lab, "b", "a", 7002, timeout=0.5)
            assert time.monotonic() - started >= 0.45
            lab.heal()
            assert _ask(lab, "b", "a", 7002) == b"hi"
            lab.isolate("a")
            with pytest.raises(TimeoutError):
                _ask(lab, "b", "a", 7002, timeout=0.5)
            lab.heal()
            lab.limit("a", mbit=50)
            assert _ask(lab, "b", "a", 7002) == b"hi"
            out = subprocess.run(lab.argv("a", ["tc", "qdisc", "show", "dev", "eth0"]), capture_output=True, text=True)
            assert "tbf" in out.stdout and "50Mbit" in out.stdout
        finally:
            stop.set()


def test_a_one_way_partition_drops_only_one_direction():
    stop = threading.Event()
    with NetLab(["a", "b"]) as lab:
        try:
            _listen(lab, "a", 7003, stop)
            _listen(lab, "b", 7003, stop)
            lab.partition("b", "a", both_ways=False)  # b's packets to a are dropped; a's SYN to b arrives
            with pytest.raises(TimeoutError):
                _ask(lab, "b", "a", 7003, timeout=0.5)
            with pytest.raises(TimeoutError):  # ... but b's answer to a is dropped too: TCP needs both ways
                _ask(lab, "a", "b", 7003, timeout=0.5)
            rules = subprocess.run(lab.argv("a", ["nft", "list", "chain", "inet", "cachebook", "output"]),
                                   capture_output=True, text=True).stdout
            assert "drop" not in rules  # the rule sits on b's side only
        finally:
            stop.set()


def test_a_second_lab_with_the_same_hosts_is_refused_and_leaves_the_first_alone():
    with NetLab(["a"]) as lab:
        with pytest.raises(ParameterError, match="already runs a lab"):
            NetLab(["a"]).start()
        assert len(lab_namespaces(lab.owner)) == 2


def test_labs_with_different_tags_coexist_and_never_meet():
    with NetLab(["a", "b"], tag="one") as one, NetLab(["a", "b"], tag="two") as two:
        assert one.address == two.address and len(lab_namespaces(one.owner)) == 6
        one.isolate("b")  # the same addresses, another set of namespaces: the second lab is untouched
        with two.inside("a"), socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((two.address["b"], 9)) == errno.ECONNREFUSED  # b answers (nothing listens)
    assert not lab_namespaces(os.getpid())
    with pytest.raises(ParameterError, match="tag="):
        NetLab(["a"], tag="Bad-Tag")


def test_a_group_placed_in_a_lab_needs_a_host_for_every_member():
    from experiments.lab.topologies import RedisClusterSet, SentinelSet

    with NetLab(["primary"], tag="place") as lab:
        with pytest.raises(ParameterError, match="no lab host for replica0, sentinel0"):
            SentinelSet(sentinels=1, quorum=1, lab=lab, hosts={"primary": "primary"})
        with pytest.raises(ParameterError, match="not in the lab"):
            RedisClusterSet(replicas_per_primary=0, lab=lab, hosts={f"node{i}": "elsewhere" for i in range(3)})
    with pytest.raises(ParameterError, match="without a network lab"):
        SentinelSet(hosts={"primary": "primary"})


def test_an_exception_inside_the_lab_removes_it():
    with pytest.raises(RuntimeError):
        with NetLab(["a"]) as lab:
            assert len(lab_namespaces(lab.owner)) == 2
            raise RuntimeError("boom")
    assert not lab_namespaces(os.getpid())


OWNER = textwrap.dedent("""
    import json, signal, sys, time
    from experiments.lab.netlab import NetLab
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with NetLab(["a", "b"]) as lab:
        print(json.dumps(lab.owner), flush=True)
        time.sleep(60)
""")


def _owner() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    owner = json.loads(proc.stdout.readline())
    assert len(lab_namespaces(owner)) == 3
    return proc, owner


def test_ctrl_c_removes_the_lab():
    proc, owner = _owner()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert not lab_namespaces(owner)


def test_after_a_sigkill_the_next_lab_sweeps_the_orphan():
    proc, owner = _owner()
    proc.kill()
    proc.wait()
    assert lab_namespaces(owner)  # a SIGKILLed owner cannot clean up ...
    with NetLab(["c"]):
        assert not lab_namespaces(owner)  # ... the next lab's start sweeps it
    assert not orphaned_namespaces() and not guard_route_orphaned()


def test_bad_hosts_are_one_line_errors():
    with pytest.raises(ParameterError, match="distinct names"):
        NetLab(["a", "a"])
    with pytest.raises(ParameterError, match="distinct names"):
        NetLab(["Primary"])
    with pytest.raises(ParameterError, match="not in the lab"):
        NetLab(["a"]).ns("b")


def test_a_missing_capability_is_one_line_naming_the_package(monkeypatch):
    monkeypatch.setattr(netlab.shutil, "which", lambda binary: None if binary == "nft" else "/usr/sbin/" + binary)
    with pytest.raises(MissingBinaryError, match="apt-get install -y nftables"):
        NetLab(["a"]).start()
    monkeypatch.setattr(netlab.os, "geteuid", lambda: 1000)
    with pytest.raises(MissingBinaryError, match="needs root"):
        NetLab(["a"]).start()
    assert not lab_namespaces(os.getpid())
