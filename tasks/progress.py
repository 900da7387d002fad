"""Progress of long batched work: a Prefect progress artifact and a terminal bar."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from tqdm import tqdm


class StageProgress:
    """A ``progress(done, total)`` callback for the library, shown in the UI and on a terminal.

    Artifact updates are throttled (at most one per ``min_interval_s`` and per
    percent), since each one is an API call.
    """

    def __init__(self, key: str, description: str, min_interval_s: float = 1.0) -> None:
        self.key = key
        self.description = description
        self.min_interval_s = min_interval_s
        self._artifact: UUID | None = None
        self._bar: tqdm | None = None
        self._last_pct = -1.0
        self._last_time = 0.0

    def __enter__(self) -> StageProgress:
        self._artifact = create_progress_artifact(0.0, key=self.key, description=self.description)
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(
                total=total,
                desc=self.description,
                unit="obj",
                disable=not sys.stderr.isatty(),
                leave=False,
            )
        self._bar.n = done
        self._bar.refresh()
        pct = 100.0 * done / max(total, 1)
        now = time.monotonic()
        final = done >= total
        if final or (pct - self._last_pct >= 1.0 and now - self._last_time >= self.min_interval_s):
            if self._artifact is not None:
                update_progress_artifact(self._artifact, pct)
            self._last_pct, self._last_time = pct, now

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
