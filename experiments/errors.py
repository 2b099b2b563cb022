"""One exception family for everything a reader can get wrong.

Each error carries a one-line message that says what is wrong and how to fix it. The notebook
helper (`experiments.lab.session`) and the command-line runner print only that line, never a traceback,
because the fix is in the message, not in the stack.
"""


class BookError(Exception):
    """Base class: a problem the reader can fix; its message is one line that says how."""


class MissingBinaryError(BookError):
    """A server program (redis-server, memcached, ...) is not installed."""


class PortInUseError(BookError):
    """A port the caller asked for is already taken."""


class ServerStartError(BookError):
    """A server process exited or never became ready; the message ends with its log tail."""


class EndpointError(BookError):
    """An external endpoint is malformed, unreachable or refused by a destructive experiment."""


class ParameterError(BookError):
    """A chapter or experiment parameter is out of range or unknown."""


class UncacheableError(BookError):
    """Something the key design forbids caching (a price) was about to be cached."""
