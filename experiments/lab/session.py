"""What a chapter holds from its first cell to its last: its servers, and one-line errors.

A ``with`` block cannot span notebook cells, so a chapter opens a `Lab` in an early cell and closes
it in the last. The servers it starts are tied to the kernel: `Lab.close` (last cell), the ``atexit``
hook of `experiments.lab.servers` (kernel shutdown) and ``PR_SET_PDEATHSIG`` (kernel killed) each stop
them. In IPython, a `BookError` is shown as its one-line message instead of a traceback; the
handler is installed when this module is imported, so it covers the parameter check that a chapter
runs right after its imports.
"""

from __future__ import annotations

from experiments.errors import BookError
from experiments.lab.endpoints import MemcachedTarget, RedisTarget, open_memcached, open_redis


def _show_one_line(shell, etype, value, tb, tb_offset=None) -> list[str]:
    """IPython custom-exception handler: the 'traceback' of a `BookError` is its one-line message.

    IPython discards the handler's return value for errors raised by cell code, so the handler
    publishes the error itself; the kernel then reports it with its name and message (papermill
    and nbval read those) and the notebook shows one line.
    """
    stb = [f"{etype.__name__}: {value}"]
    shell._showtraceback(etype, value, stb)
    return stb


def install_error_handler() -> None:
    """Make `BookError` print as one line in IPython/Jupyter (the cell still fails)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - plain Python
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((BookError,), _show_one_line)


install_error_handler()


class Lab:
    """The endpoints of one chapter run: started lazily, stopped by `close` (or by the kernel's end)."""

    def __init__(self, *, redis_url: str = "", memcached_servers: str = "") -> None:
        self._redis_url, self._memcached_servers = redis_url, memcached_servers
        self._redis: RedisTarget | None = None
        self._memcached: MemcachedTarget | None = None
        self._owned: list = []

    @property
    def redis(self) -> RedisTarget:
        """The chapter's Redis endpoint: ``redis_url``'s, or a server the book starts on first use."""
        if self._redis is None:
            self._redis = open_redis(self._redis_url)
        return self._redis

    @property
    def memcached(self) -> MemcachedTarget:
        """The chapter's memcached endpoint: ``memcached_servers``, or a node the book starts on first use."""
        if self._memcached is None:
            self._memcached = open_memcached(self._memcached_servers)
        return self._memcached

    def describe(self) -> str:
        """Which endpoints this run uses, and whether the book started them."""
        parts = []
        for target in (self._redis, self._memcached):
            if target is not None:
                origin = "started by the book" if target.owned else "given as a parameter"
                parts.append(f"{target.kind} at {target.address} ({origin})")
        return "; ".join(parts) or "no servers opened yet"

    def own(self, servers, *, background: bool = False):
        """Start ``servers`` (a server or group of `experiments.lab.servers`) and stop it in `close`;
        ``background``: a `Together` group starts while the chapter goes on (its ``wait`` joins it)."""
        self._owned.append(servers)
        return servers.start_in_background() if background else servers.start()

    def close(self) -> None:
        """Delete this run's keys on external endpoints and stop the servers the book started."""
        for target in (self._redis, self._memcached):
            if target is not None:
                target.close()
        for servers in reversed(self._owned):
            servers.stop()
        self._redis = self._memcached = None
        self._owned = []

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
