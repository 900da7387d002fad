"""Progress of long batched work: a Prefect progress artifact and a terminal bar."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from tqdm import tqdm

from skysort.config import Params
from skysort.tasks.artifacts import task_key


def progress_key(stage: str, params: Params) -> str:
    """The key of stage ``stage``'s progress artifact (``multiclass-train-progress``)."""
    return task_key(params.task, f"{stage}-progress")


class StageProgress:
    """A ``progress(done, total, note)`` callback for the library, in the UI and on a terminal.

    Artifact updates are throttled (at most one per ``min_interval_s`` and per
    percent), since each one is an API call; the last one always goes through. A
    ``note`` (``epoch 3 of 20, val_loss 0.41``) becomes the artifact's description.
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

    def __call__(self, done: int, total: int, note: str | None = None) -> None:
        if self._bar is None:
            self._bar = tqdm(
                total=total,
                desc=self.description,
                disable=not sys.stderr.isatty(),
                leave=False,
            )
        self._bar.n = done
        if note:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.refresh()
        pct = 100.0 * done / max(total, 1)
        now = time.monotonic()
        final = done >= total
        if final or (pct - self._last_pct >= 1.0 and now - self._last_time >= self.min_interval_s):
            if self._artifact is not None:
                described = f"{self.description}: {note}" if note else None
                update_progress_artifact(self._artifact, pct, description=described)
            self._last_pct, self._last_time = pct, now

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
