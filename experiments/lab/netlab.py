"""A network lab of the book's own: hosts that are Linux network namespaces, joined by veth pairs to one
bridge, with addresses that exist only inside them — and the faults a real network has.

* **Hosts** — ``NetLab(["primary", "replica", "client"])`` makes a namespace per host and one for the
  switch (a bridge); each host gets ``eth0`` with an address in `SUBNET` and no other route, so a host
  reaches only the lab's hosts. The machine's own namespace would send the subnet to its default route —
  off the machine —, so while a lab exists the subnet is blackholed there (`guard_route_present`).
* **Faults** — `partition` drops packets between two hosts with nftables, in both directions or one (silent:
  no reset, the sender waits for its timeout), `isolate` sets a host's switch port down (silent too), `heal`
  undoes both; `lose` drops a random share of the packets between two hosts in the switch's bridge (nftables
  ``numgen random``: a lossy wire, whose lost packets TCP must detect and retransmit); `limit` caps a host's
  link with a token bucket (``tbf``).
  The lab cannot delay packets: ``netem`` does not exist on this kind of machine, so delay enters the book
  through a model with published figures, never through sleeps.
* **Processes and sockets** — `argv` prefixes a command with ``ip netns exec`` (servers run in their host:
  `exec` keeps the process, so PR_SET_PDEATHSIG still ties it to its owner); `inside` moves the calling
  *thread* into a host's namespace (network namespaces are per thread), so a client made in the block
  connects from that host.
* **Several labs at once** — labs of one process with different ``tag`` s (``cb<pid>-<tag>-<host>``) coexist:
  experiments that mostly wait (a failover's detection) run side by side. Their addresses overlap, but each
  lab is its own set of namespaces, so they never meet.
* **Cleanup** — every name carries the owner's PID (``cb<pid>-<host>``): `close` deletes the namespaces (and
  with them every link and rule), on exit, on an exception, on Ctrl-C and on SIGTERM (the first lab a main
  thread starts installs a handler that closes every open lab, then dies of the signal as before); after a
  SIGKILL, the book runner and the next lab's start sweep the namespaces of owners that no longer run
  (`sweep_orphans`).

Root, ``ip`` (iproute2), ``nft`` (nftables) and ``tc`` are needed; without one, `NetLab` says which in one
line, with the command that installs it (``scripts/setup.sh`` installs both packages).
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

from experiments.errors import MissingBinaryError, ParameterError
from experiments.lab.processes import running
from experiments.lab.spawner import LOOPBACK

SUBNET = ipaddress.ip_network("10.213.47.0/24")
"""The lab's addresses: a private /24 that exists only inside the lab's namespaces."""

PREFIX = "cb"
NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")
_GUARD = threading.Lock()
"""Held while a lab is made or deleted: the guard route goes with the last lab, never under one being made."""


def _run(*argv: str) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {' '.join(out.stderr.split())[-300:]}")
    return out.stdout


def require_capabilities() -> None:
    """One line naming what is missing — root, iproute2, nftables or tc — and how to get it."""
    if os.geteuid() != 0:
        raise MissingBinaryError("the network lab needs root (network namespaces): run the book as root")
    for binary, package in (("ip", "iproute2"), ("tc", "iproute2"), ("nft", "nftables")):
        if shutil.which(binary) is None:
            raise MissingBinaryError(f"the network lab needs `{binary}`: sudo apt-get install -y {package} "
                                     f"(or run scripts/setup.sh)")


def lab_namespaces(owner: int | None = None) -> list[str]:
    """The lab namespaces that exist (of one owner if given)."""
    names = [p.name for p in NETNS_DIR.glob(f"{PREFIX}*-*")] if NETNS_DIR.exists() else []
    return sorted(n for n in names if owner is None or n.startswith(f"{PREFIX}{owner}-"))


def orphaned_namespaces() -> list[str]:
    """The lab namespaces whose owner no longer runs: what a finished run left behind (a live run's lab, such as
    another test session's or a book build's, is not)."""
    return [name for name in lab_namespaces()
            if not ((owner := name[len(PREFIX):].split("-", 1)[0]).isdigit() and running(int(owner)))]


def guard_route_orphaned() -> bool:
    """The guard route left with no lab namespace to guard."""
    return not lab_namespaces() and guard_route_present()


def sweep_orphans() -> list[str]:
    """Delete the namespaces of owners that no longer run (a SIGKILLed run cannot clean up), and the guard
    route when no lab is left; returns the namespaces swept."""
    swept = orphaned_namespaces()
    for name in swept:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)
    _drop_guard_if_unused()
    return swept


_OPEN: set["NetLab"] = set()
"""The labs of this process that are started and not yet closed (the SIGTERM handler closes them)."""


def _close_on_sigterm(signum, _frame) -> None:
    """SIGTERM: delete every open lab's namespaces, then die of the signal as the default action would."""
    for lab in list(_OPEN):
        lab.close()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_sigterm_handler() -> None:
    """Close the labs on SIGTERM — only from the main thread, and only where nobody else handles it."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _close_on_sigterm)


def guard_route_present() -> bool:
    """Whether the machine's own namespace blackholes the lab's subnet (while a lab exists)."""
    return f"blackhole {SUBNET}" in subprocess.run(["ip", "route", "show", "type", "blackhole"], capture_output=True,
                                                     text=True, timeout=30).stdout


def _drop_guard_if_unused() -> None:
    with _GUARD:
        if not lab_namespaces() and guard_route_present():
            subprocess.run(["ip", "route", "del", "blackhole", str(SUBNET)], capture_output=True, timeout=30)


class NetLab:
    """Hosts on one bridge, each in a network namespace of its own, with faults to inject."""

    def __init__(self, hosts: list[str], *, tag: str = "") -> None:
        if tag and not _NAME.match(tag):
            raise ParameterError(f"tag={tag!r}: give 1–10 lowercase letters and digits (or none)")
        if not hosts or len(set(hosts)) != len(hosts) or not all(_NAME.match(h) for h in hosts):
            raise ParameterError(f"hosts={hosts!r}: give distinct names of 1–10 lowercase letters and digits")
        if len(hosts) > 200:
            raise ParameterError(f"{len(hosts)} hosts: the lab's /24 holds at most 200")
        self.hosts = list(hosts)
        self.owner = os.getpid()
        self.tag = f"{tag}-" if tag else ""
        self.address = {h: str(SUBNET.network_address + 10 + i) for i, h in enumerate(hosts)}
        self._started = False

    def ns(self, host: str) -> str:
        """The namespace of ``host`` (``switch`` is the bridge's)."""
        if host != "switch" and host not in self.hosts:
            raise ParameterError(f"host {host!r} is not in the lab: {', '.join(self.hosts)}")
        return f"{PREFIX}{self.owner}-{self.tag}{host}"

    def _port(self, host: str) -> str:
        return f"p{self.hosts.index(host)}"

    def start(self) -> "NetLab":
        """Create the lab: blackhole its subnet in the machine's namespace, then the switch's bridge and,
        per host, a namespace with ``eth0`` on the bridge and an nftables chain for faults. Orphaned labs are
        swept first; on any failure, what was made is removed."""
        require_capabilities()
        sweep_orphans()
        taken = [n for n in [self.ns("switch"), *(self.ns(h) for h in self.hosts)] if (NETNS_DIR / n).exists()]
        if taken:
            raise ParameterError(f"namespace {taken[0]} exists: this process already runs a lab with that host; "
                                 f"close it first or name the hosts differently")
        self._started = True
        _OPEN.add(self)
        _install_sigterm_handler()
        try:
            # the machine's own namespace must never send to the lab's addresses: its default route leads off
            # the machine, so the subnet is blackholed there while a lab exists
            switch = self.ns("switch")
            with _GUARD:
                _run("ip", "route", "replace", "blackhole", str(SUBNET))
                _run("ip", "netns", "add", switch)
            _run("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
            _run("ip", "-n", switch, "link", "set", "br0", "up")
            _run("ip", "netns", "exec", switch, "nft", "add", "table", "bridge", "cachebook")
            _run("ip", "netns", "exec", switch, "nft", "add", "chain", "bridge", "cachebook", "forward",
                 "{ type filter hook forward priority 0 ; policy accept ; }")
            for host in self.hosts:
                ns, port = self.ns(host), self._port(host)
                _run("ip", "netns", "add", ns)
                _run("ip", "-n", ns, "link", "set", "lo", "up")
                _run("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", switch)
                _run("ip", "-n", switch, "link", "set", port, "master", "br0", "up")
                _run("ip", "-n", ns, "addr", "add", f"{self.address[host]}/{SUBNET.prefixlen}", "dev", "eth0")
                _run("ip", "-n", ns, "link", "set", "eth0", "up")
                _run("ip", "netns", "exec", ns, "nft", "add", "table", "inet", "cachebook")
                _run("ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "cachebook", "output",
                     "{ type filter hook output priority 0 ; policy accept ; }")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Delete every namespace of the lab: its links, addresses, rules and queues go with them."""
        if not self._started:
            return
        for name in [self.ns("switch"), *(self.ns(h) for h in self.hosts)]:
            if (NETNS_DIR / name).exists():
                try:
                    subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)
                except subprocess.TimeoutExpired:  # pragma: no cover - swept at the next start
                    pass
        _drop_guard_if_unused()
        self._started = False
        _OPEN.discard(self)

    def __enter__(self) -> "NetLab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def argv(self, host: str, command: list[str]) -> list[str]:
        """``command`` run in ``host``'s namespace (``ip netns exec`` execs it: same process, same PID)."""
        return ["ip", "netns", "exec", self.ns(host), *command]

    @contextmanager
    def inside(self, host: str):
        """Run the block's socket calls from ``host``: the calling thread enters its network namespace, and
        returns to the one it came from when the block ends."""
        with open("/proc/thread-self/ns/net") as back, open(NETNS_DIR / self.ns(host)) as target:
            if _LIBC.setns(target.fileno(), _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.ns(host)} failed")
            try:
                yield self.address[host]
            finally:
                if _LIBC.setns(back.fileno(), _CLONE_NEWNET) != 0:  # pragma: no cover - would leave the thread inside
                    raise OSError(ctypes.get_errno(), "setns back to the original namespace failed")

    def partition(self, a: str, b: str, *, both_ways: bool = True) -> None:
        """Drop every packet from ``a`` to ``b`` (and back, if ``both_ways``): silent, no reset is sent."""
        pairs = [(a, b), (b, a)] if both_ways else [(a, b)]
        for src, dst in pairs:
            _run("ip", "netns", "exec", self.ns(src), "nft", "add", "rule", "inet", "cachebook", "output",
                 "ip", "daddr", self.address[dst], "drop")

    def lose(self, a: str, b: str, *, percent: float) -> None:
        """Drop a random ``percent`` of the packets between ``a`` and ``b``, each way, on the wire: in the switch's
        bridge (nftables ``numgen random``, in steps of 0.01 %), so the sender's TCP sees a loss it must detect —
        by duplicate acknowledgements or a timer —, not a local send error. `heal` undoes it."""
        if not 0 < percent < 100:
            raise ParameterError(f"percent={percent} must be above 0 and below 100")
        for src, dst in ((a, b), (b, a)):
            _run("ip", "netns", "exec", self.ns("switch"), "nft", "add", "rule", "bridge", "cachebook", "forward",
                 "ether", "type", "ip", "ip", "saddr", self.address[src], "ip", "daddr", self.address[dst],
                 "numgen", "random", "mod", "10000", "<", str(round(percent * 100)), "drop")

    def isolate(self, host: str) -> None:
        """Set ``host``'s switch port down: it reaches no one and no one reaches it, silently."""
        _run("ip", "-n", self.ns("switch"), "link", "set", self._port(host), "down")

    def heal(self) -> None:
        """Undo every partition and isolation."""
        _run("ip", "netns", "exec", self.ns("switch"), "nft", "flush", "chain", "bridge", "cachebook", "forward")
        for host in self.hosts:
            _run("ip", "netns", "exec", self.ns(host), "nft", "flush", "chain", "inet", "cachebook", "output")
            _run("ip", "-n", self.ns("switch"), "link", "set", self._port(host), "up")

    def limit(self, host: str, *, mbit: float, burst_kb: int = 256) -> None:
        """Cap ``host``'s link at ``mbit`` Mbit/s both ways with a token bucket (``tc … tbf``)."""
        if not mbit > 0:
            raise ParameterError(f"mbit={mbit} must be positive")
        for ns, dev in ((self.ns(host), "eth0"), (self.ns("switch"), self._port(host))):
            _run("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", f"{mbit}mbit",
                 "burst", f"{burst_kb}kb", "latency", "100ms")

    def place(self, host: str, server_class, **kwargs):
        """A server of ``server_class`` (`experiments.lab.servers`) that runs in ``host``: it binds the host's
        address instead of loopback, starts under ``ip netns exec`` and is probed for readiness from inside.
        Its clients must be made inside the host too (`inside`)."""
        lab, address = self, self.address[host]

        class Placed(server_class):
            def argv(self, port, workdir):
                return lab.argv(host, [address if arg == LOOPBACK else arg for arg in super().argv(port, workdir)])

            def _ready(self):
                with lab.inside(host):
                    return super()._ready()

        Placed.__name__ = f"{server_class.__name__}In{host.capitalize()}"
        server = Placed(**kwargs)
        server.host = address
        return server
