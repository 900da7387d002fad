"""Keras callbacks the train stage adds: epoch timing, one log line and progress per epoch."""

from __future__ import annotations

import logging
import time
from typing import Any

import keras

from skysort.pipeline.progress import Progress

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


class ReportProgress(keras.callbacks.Callback):
    """Each epoch as ``progress(epoch, epochs, note)``, the note naming the monitored val metric.

    Only reads what Keras passes it: training runs exactly as without it. When early
    stopping ends the fit before ``epochs``, a last call says so and completes the bar.
    """

    def __init__(self, progress: Progress, epochs: int, monitor: str, mode: str = "min") -> None:
        super().__init__()
        self.progress = progress
        self.epochs = epochs
        self.monitor = monitor
        self.mode = mode  # "min" or "max": which way the monitored metric improves
        self._done = 0
        self._best: tuple[float, int] | None = None  # (value, epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._done = epoch + 1
        note = f"epoch {self._done} of {self.epochs}"
        value = (logs or {}).get(self.monitor)
        if _is_number(value):
            note += f", {self.monitor} {float(value):.4f}"
            if self._best is None or self._better(float(value), self._best[0]):
                self._best = (float(value), self._done)
        self.progress(self._done, self.epochs, note)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if 0 < self._done < self.epochs:
            note = f"stopped early after epoch {self._done} of {self.epochs}"
            if self._best is not None:
                note += f"; best {self.monitor} {self._best[0]:.4f} at epoch {self._best[1]}"
            self.progress(self.epochs, self.epochs, note)

    def _better(self, value: float, best: float) -> bool:
        return value < best if self.mode == "min" else value > best


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True
