"""Compile and fit the model: early-stopped on val loss, the best epoch saved atomically."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from skysort import targets
from skysort.config import Data, Train
from skysort.data import atomic
from skysort.model.build import build_model
from skysort.model.callbacks import EpochTimer, LogEpochs, ReportProgress
from skysort.pipeline.progress import Progress


@dataclass(frozen=True)
class Fitted:
    """What a fit leaves besides the saved model."""

    history: dict[str, list[float]]  # Keras metric name -> one value per epoch run
    epoch_seconds: list[float]
    parameters: int


def compile_model(
    strategy: tf.distribute.Strategy,
    feature_mean: np.ndarray,
    feature_var: np.ndarray,
    *,
    data: Data,
    train: Train,
    task: str = "multiclass",
    steps_per_epoch: int = 1,
) -> keras.Model:
    """The model ``train`` describes, built and compiled in ``strategy``'s scope.

    The task's target gives the outputs, the loss and the metrics.
    """
    target = targets.get(task)
    with strategy.scope():  # variables are created on every replica
        loss, metrics = target.loss_and_metrics(data, train)
        n_out = len(target.outputs(data))
        model = build_model(
            train, len(feature_mean), n_out, data.image_size, feature_mean, feature_var, task
        )
        model.compile(optimizer=make_optimizer(train, steps_per_epoch), loss=loss, metrics=metrics)
    return model


def make_optimizer(train: Train, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """``train.optimizer`` at ``train.learning_rate``; ``cosine`` decays it over all epochs.

    (``plateau`` is a callback: see :func:`fit_model`.)
    """
    rate: Any = train.learning_rate
    if train.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            train.learning_rate, decay_steps=max(1, train.epochs * steps_per_epoch)
        )
    optimizers = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
        "adadelta": keras.optimizers.Adadelta,
    }
    return optimizers[train.optimizer](rate)


def fit_model(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    out_model: Path,
    out_dvclive: Path,
    *,
    class_weight: dict[int, float] | None,
    train: Train,
    monitor: str = "val_loss",
    progress: Progress | None = None,
) -> Fitted:
    """Fit, stop early on ``monitor``, and save the best epoch's model to ``out_model``.

    Stops at the first NaN loss; fails if no epoch was ever checkpointed. Epoch metrics
    go to dvclive under ``out_dvclive`` (rebuilt), to the log and, per epoch, to
    ``progress``.
    """
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    timer = EpochTimer()
    with tempfile.TemporaryDirectory(prefix="skysort-train-") as tmp:
        best_path = Path(tmp) / "best.keras"
        shutil.rmtree(out_dvclive, ignore_errors=True)
        live = Live(str(out_dvclive), dvcyaml=False, save_dvc_exp=False, report=None)
        mode = "min" if monitor == "val_loss" else "max"
        callbacks: list[keras.callbacks.Callback] = [
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=train.patience),
            keras.callbacks.ModelCheckpoint(
                str(best_path), monitor=monitor, mode=mode, save_best_only=True
            ),
            timer,
            DVCLiveCallback(live=live),
            LogEpochs(train.epochs),
        ]
        if train.lr_schedule == "plateau":
            callbacks.insert(
                1,
                keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor, mode=mode, factor=0.5, patience=max(1, train.patience // 3)
                ),
            )
        if progress is not None:  # last: it reads the logs, changes nothing
            callbacks.append(ReportProgress(progress, train.epochs, monitor, mode))
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=train.epochs,
            class_weight=class_weight,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,  # make_dataset shuffles, seeded per epoch
        )
        live.end()
        if not best_path.exists():
            raise RuntimeError(
                "training produced no checkpoint (loss was NaN from the first epoch?)"
            )
        with atomic.atomic_path(out_model, suffix=".keras") as tmp_model:
            shutil.copyfile(best_path, tmp_model)
    return Fitted(
        history=_floats(history.history),
        epoch_seconds=timer.seconds,
        parameters=int(model.count_params()),
    )


def _floats(history: dict[str, Any]) -> dict[str, list[float]]:
    return {k: [float(v) for v in vals] for k, vals in history.items()}
