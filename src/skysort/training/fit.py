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

from skysort import io
from skysort.config import Data, Train
from skysort.losses import make_loss
from skysort.models import build_model
from skysort.training.callbacks import EpochTimer, LogEpochs


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
) -> keras.Model:
    """The model ``train`` describes, built and compiled in ``strategy``'s scope."""
    with strategy.scope():  # variables are created on every replica
        model = build_model(
            train, len(data.features), len(data.classes), data.image_size, feature_mean, feature_var
        )
        model.compile(
            optimizer=keras.optimizers.Adam(train.learning_rate),
            loss=make_loss(train, len(data.classes)),
            metrics=["accuracy"],
        )
    return model


def fit_model(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    out_model: Path,
    out_dvclive: Path,
    *,
    class_weight: dict[int, float] | None,
    train: Train,
) -> Fitted:
    """Fit, stop early on ``val_loss``, and save the best epoch's model to ``out_model``.

    Stops at the first NaN loss; fails if no epoch was ever checkpointed. Epoch metrics
    go to dvclive under ``out_dvclive`` (rebuilt) and to the log.
    """
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    timer = EpochTimer()
    with tempfile.TemporaryDirectory(prefix="skysort-train-") as tmp:
        best_path = Path(tmp) / "best.keras"
        shutil.rmtree(out_dvclive, ignore_errors=True)
        live = Live(str(out_dvclive), dvcyaml=False, save_dvc_exp=False, report=None)
        callbacks: list[keras.callbacks.Callback] = [
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=train.patience),
            keras.callbacks.ModelCheckpoint(
                str(best_path), monitor="val_loss", save_best_only=True
            ),
            timer,
            DVCLiveCallback(live=live),
            LogEpochs(train.epochs),
        ]
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
        with io.atomic_path(out_model, suffix=".keras") as tmp_model:
            shutil.copyfile(best_path, tmp_model)
    return Fitted(
        history=_floats(history.history),
        epoch_seconds=timer.seconds,
        parameters=int(model.count_params()),
    )


def _floats(history: dict[str, Any]) -> dict[str, list[float]]:
    return {k: [float(v) for v in vals] for k, vals in history.items()}
