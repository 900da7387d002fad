"""Polling with a deadline, for what another process sends to the Prefect server.

Logs arrive in batches, task runs are recorded from events, a worker's run finishes when
it finishes: read once, any of them may not be there yet. Poll until the condition
holds, and on timeout say what was last seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    timeout: float = 30.0,
    interval: float = 0.5,
    what: str = "",
    context: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until ``until(value)`` holds and return that value.

    On timeout raise AssertionError naming ``what``, the last value seen and ``context()``
    (say, a subprocess's log tail).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    extra = f"\n{context()}" if context is not None else ""
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what or probe!r}; last saw:\n"
        f"{value!r}{extra}"
    )


def holds_throughout(
    probe: Callable[[], T], until: Callable[[T], object], seconds: float, interval: float = 0.5
) -> T:
    """Check that ``until(probe())`` stays true for ``seconds``: the dual of ``wait_for``.

    For an absence ("no task run started"), which one read cannot show either: something
    sent just before may still be on its way.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        assert until(value), f"no longer holds: {value!r}"
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)
