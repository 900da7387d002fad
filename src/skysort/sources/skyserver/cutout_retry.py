"""The cutout fetcher's retry policy: what to retry, backoff, ``Retry-After`` and the throttle."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import math
import random
import threading
import time

from skysort.config import Cutouts

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
"""Longest backoff between two attempts of one object."""
SLOW_DOWN_STATUSES = frozenset({429, 503})
RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


class Stopped(Exception):
    """The run is being interrupted; the worker gives up without a result."""


class Throttle:
    """Shared by the workers: caps requests in flight and pauses everyone after a 429 / 503."""

    def __init__(self, limit: int, stop: threading.Event) -> None:
        self._cond = threading.Condition()
        self._max = limit
        self._limit = limit
        self._in_flight = 0
        self._not_before = 0.0
        self._streak = 0
        self._stop = stop

    @property
    def limit(self) -> int:
        return self._limit

    def acquire(self) -> None:
        with self._cond:
            while True:
                if self._stop.is_set():
                    raise Stopped
                pause = self._not_before - time.monotonic()
                if pause <= 0 and self._in_flight < self._limit:
                    self._in_flight += 1
                    return
                self._cond.wait(min(pause, 0.25) if pause > 0 else 0.25)

    def release(self, slow_down_s: float | None = None) -> None:
        with self._cond:
            self._in_flight -= 1
            if slow_down_s is not None:
                self._limit = max(1, self._limit // 2)
                self._streak = 0
                self._not_before = max(self._not_before, time.monotonic() + slow_down_s)
                log.info(
                    "server asked to slow down: pausing %.2f s, %d request(s) in flight at most",
                    slow_down_s,
                    self._limit,
                )
            else:
                self._streak += 1
                if self._limit < self._max and self._streak >= 4 * self._limit:
                    self._limit += 1
                    self._streak = 0
            self._cond.notify_all()


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def backoff(base_s: float, attempt: int) -> float:
    """Exponential backoff from ``base_s`` with jitter (×1–1.5), so workers do not retry in step.

    Never below ``base_s`` (``cutouts.backoff_s``, the floor) nor above :data:`MAX_BACKOFF_S`.
    """
    return min(MAX_BACKOFF_S, base_s * 2 ** (attempt - 1) * random.uniform(1.0, 1.5))


def slow_down_s(retry_after: str | None, cutouts: Cutouts, attempt: int) -> float:
    """How long everyone pauses after a 429 / 503.

    The server's ``Retry-After`` capped at ``cutouts.max_retry_after_s``, but never
    shorter than the backoff itself: ``Retry-After: 0`` or a cap of 0 must not turn
    the backoff off.
    """
    own = backoff(cutouts.backoff_s, attempt)
    asked = retry_after_seconds(retry_after)
    if asked is None:
        return own
    return max(own, min(asked, cutouts.max_retry_after_s))
