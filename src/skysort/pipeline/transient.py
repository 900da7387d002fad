"""Which failures are worth retrying: network trouble, not a bad parameter or a missing file.

The Prefect layer retries a stage only when :func:`is_transient` says so, so an
error that cannot succeed (a missing ``query.sql_file``, a bad parameter, a schema
error) fails at once with one traceback instead of being retried for minutes.
"""

from __future__ import annotations

import requests


class TransientError(Exception):
    """Marks an error that may go away by itself (a server down, overloaded or unreachable)."""


TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,  # builtin: refused, reset, aborted
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
)


def is_transient(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it was raised from, is one of :data:`TRANSIENT`."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, TRANSIENT):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
