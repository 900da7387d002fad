"""Stage ``train``: fit the Keras model on the balanced train index, early-stopped on val.

Images are memory-mapped from the packed array and gathered batch by batch into a
``tf.data`` pipeline, so the dataset never has to fit in memory.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort import io
from skysort.config import Data, Params, Train
from skysort.labels import encode, feature_matrix, observed
from skysort.stage import Artifact, Markdown, Stage, fmt

log = logging.getLogger(__name__)


def train(
    dataset_path: Path,
    images_path: Path,
    labels_path: Path,
    index_path: Path,
    out_model: Path,
    out_dvclive: Path,
    out_report: Path,
    *,
    data: Data,
    train: Train,
    seed: int,
) -> dict[str, Any]:
    """Train, keep the best epoch by validation loss, save the model atomically."""
    # TensorFlow is imported here, not at module level, so the other stages start fast.
    import keras
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    from skysort.callbacks import EpochTimer, LogEpochs
    from skysort.distribute import is_chief, make_strategy
    from skysort.losses import make_loss
    from skysort.models import build_model
    from skysort.tfdata import INPUTS_BY_MODEL, make_dataset

    configure_tensorflow(train, seed)
    strategy = make_strategy(train.distribute)
    dataset = pd.read_parquet(dataset_path)
    labels = pd.read_parquet(labels_path)
    images = np.load(images_path, mmap_mode="r")
    if len(images) != len(dataset):
        raise ValueError(
            f"{images_path} has {len(images)} images but {dataset_path} has "
            f"{len(dataset)} rows: rerun the clean stage"
        )
    features = feature_matrix(dataset, data.features)
    y = encode(labels["label"], data.classes)
    train_rows = np.load(index_path)
    val_rows = np.flatnonzero(observed(labels, "val"))
    if len(train_rows) == 0 or len(val_rows) == 0:
        raise ValueError(f"need train and val rows, got {len(train_rows)} and {len(val_rows)}")

    unique_train = np.unique(train_rows)
    mean = features[unique_train].mean(axis=0)
    var = features[unique_train].var(axis=0)
    with strategy.scope():  # variables are created on every replica
        model = build_model(
            train, len(data.features), len(data.classes), data.image_size, mean, var
        )
        model.compile(
            optimizer=keras.optimizers.Adam(train.learning_rate),
            loss=make_loss(train, len(data.classes)),
            metrics=["accuracy"],
        )
    inputs = INPUTS_BY_MODEL[train.model]
    train_ds = make_dataset(
        images,
        features,
        train_rows,
        inputs,
        train.batch_size,
        y=y,
        shuffle=True,
        augment=train.augment,
        seed=seed,
    )
    val_ds = make_dataset(images, features, val_rows, inputs, train.batch_size, y=y)

    class_weight = None
    if train.class_weight == "balanced":
        counts = np.bincount(y[train_rows], minlength=len(data.classes)).astype(float)
        class_weight = {
            i: float(len(train_rows) / (len(counts) * c)) for i, c in enumerate(counts) if c
        }

    timer = EpochTimer()
    # A multi-worker run's other workers train alongside the chief, writing nothing.
    scratch = None if is_chief() else tempfile.TemporaryDirectory(prefix="skysort-worker-")
    if scratch is not None:
        log.info("not the chief worker (TF_CONFIG): outputs go to %s, then away", scratch.name)
        out_model, out_dvclive, out_report = (
            Path(scratch.name) / Path(p).name for p in (out_model, out_dvclive, out_report)
        )
    with tempfile.TemporaryDirectory(prefix="skysort-train-") as tmp:
        best_path = Path(tmp) / "best.keras"
        shutil.rmtree(out_dvclive, ignore_errors=True)
        live = Live(str(out_dvclive), dvcyaml=False, save_dvc_exp=False, report=None)
        callbacks = [
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

    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    best_epoch = int(np.argmin(hist["val_loss"]))
    report = {
        "model": train.model,
        "image_encoder": train.image_encoder if train.model != "tabular" else None,
        "parameters": int(model.count_params()),
        "train_rows": int(len(train_rows)),
        "val_rows": int(len(val_rows)),
        "epochs_run": len(hist["loss"]),
        "best_epoch": best_epoch + 1,
        "best_val_loss": hist["val_loss"][best_epoch],
        "best_val_accuracy": hist["val_accuracy"][best_epoch],
        "train_val_accuracy_gap": hist["accuracy"][best_epoch] - hist["val_accuracy"][best_epoch],
        "seconds_per_epoch": float(np.mean(timer.seconds[1:] or timer.seconds)),
        "first_epoch_seconds": timer.seconds[0],
        "history": hist,
        "loss": train.loss,
        "class_weight": train.class_weight,
        "distribute": train.distribute,
        "replicas": int(strategy.num_replicas_in_sync),
    }
    io.write_json(out_report, report)
    if scratch is not None:
        scratch.cleanup()
    log.info(
        "train: best epoch %d/%d val accuracy %.3f (%.1f s/epoch)",
        report["best_epoch"],
        report["epochs_run"],
        report["best_val_accuracy"],
        report["seconds_per_epoch"],
    )
    return report


def configure_tensorflow(train: Train, seed: int) -> None:
    """Seed everything and make ops deterministic, so a rerun gives the same metrics."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    if train.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(train.threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, train.threads // 2))
        except RuntimeError:  # already initialised in this process
            log.debug("TensorFlow threads already configured")



_SUMMARY_KEYS = (
    "model",
    "image_encoder",
    "parameters",
    "train_rows",
    "val_rows",
    "epochs_run",
    "best_epoch",
    "best_val_accuracy",
    "best_val_loss",
    "seconds_per_epoch",
)


def _summarize(report: dict[str, Any], params: Params) -> list[Artifact]:
    md = ["# Training", "", "| | |", "| --- | --- |"]
    md += [f"| {k} | {fmt(report[k])} |" for k in _SUMMARY_KEYS]
    return [Markdown("train-summary", "\n".join(md), "Training run")]


STAGE = Stage(
    name="train",
    reads=("dataset", "images", "labels", "train_index"),
    writes=("model", "dvclive", "train_report"),
    params=("seed", "data.features", "data.classes", "data.image_size", "train"),
    function=train,
    describe=lambda p: f"train: {p.train.describe()}, {p.train.epochs} epochs",
    summarize=_summarize,
)
