"""The train stage's report: the fit's history and the figures a person reads first."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skysort.config import Train
from skysort.data import atomic
from skysort.model.inputs import TrainingInputs

if TYPE_CHECKING:
    from skysort.model.fit import Fitted

log = logging.getLogger(__name__)


def training_report(
    fitted: Fitted,
    inputs: TrainingInputs,
    *,
    train: Train,
    replicas: int,
    monitor: str = "val_loss",
) -> dict[str, Any]:
    """The report dict: best epoch by ``monitor``, its scores, timing, and the full history."""
    history, epoch_seconds = fitted.history, fitted.epoch_seconds
    watched = np.asarray(history[monitor])
    best = int(np.argmin(watched) if monitor == "val_loss" else np.argmax(watched))
    extra: dict[str, Any] = {}
    if monitor != "val_loss":
        extra["monitor"] = monitor
    if "val_auc" in history:
        extra["best_val_auc"] = history["val_auc"][best]
    return {
        "model": train.model,
        "image_encoder": train.image_encoder if train.model != "tabular" else None,
        "parameters": fitted.parameters,
        "train_rows": int(len(inputs.train_rows)),
        "val_rows": int(len(inputs.val_rows)),
        "epochs_run": len(history["loss"]),
        "best_epoch": best + 1,
        "best_val_loss": history["val_loss"][best],
        "best_val_accuracy": history["val_accuracy"][best],
        "train_val_accuracy_gap": history["accuracy"][best] - history["val_accuracy"][best],
        # The first epoch includes graph tracing, so it is left out of the mean when it can be.
        "seconds_per_epoch": float(np.mean(epoch_seconds[1:] or epoch_seconds)),
        "first_epoch_seconds": epoch_seconds[0],
        "history": history,
        "loss": train.loss,
        "class_weight": train.class_weight,
        "distribute": train.distribute,
        "replicas": replicas,
        **extra,
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` as JSON (atomically) and log its one-line summary."""
    atomic.write_json(path, report)
    if report.get("best_epoch") is None:  # a tree model: no epochs
        log.info("train: %s fitted in %.2f s, val log loss %.4f", report["model"],
                 report["fit_seconds"], report["best_val_loss"])  # fmt: skip
        return
    log.info(
        "train: best epoch %d/%d val accuracy %.3f (%.1f s/epoch)",
        report["best_epoch"],
        report["epochs_run"],
        report["best_val_accuracy"],
        report["seconds_per_epoch"],
    )
