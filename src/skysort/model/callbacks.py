"""Keras callbacks the train stage adds: epoch timing and one log line per epoch."""

from __future__ import annotations

import logging
import time
from typing import Any

import keras

log = logging.getLogger("skysort.stages.train")


class EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch (the first epoch includes graph tracing)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(round(time.perf_counter() - self._start, 3))


class LogEpochs(keras.callbacks.Callback):
    """Log each epoch's metrics through ``logging``, so Prefect shows them in the run's logs."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        shown = " ".join(
            f"{k}={float(v):.4f}" for k, v in sorted((logs or {}).items()) if _is_number(v)
        )
        log.info("epoch %d/%d %s", epoch + 1, self.epochs, shown)


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True
