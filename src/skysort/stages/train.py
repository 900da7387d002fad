"""Stage ``train``: fit the Keras model on the balanced train index, early-stopped on val.

Images are memory-mapped from the packed array and gathered batch by batch into a
``tf.data`` pipeline, so the dataset never has to fit in memory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from skysort.config import Data, Params, Train
from skysort.stage import Artifact, Markdown, Stage, fmt
from skysort.tfenv import quiet_tensorflow_info
from skysort.training.inputs import load_training_inputs, training_datasets
from skysort.training.report import training_report, write_report

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
    quiet_tensorflow_info()
    from skysort.distribute import chief_outputs, make_strategy
    from skysort.training.fit import compile_model, fit_model

    configure_tensorflow(train, seed)
    strategy = make_strategy(train.distribute)  # before any other TensorFlow op
    inputs = load_training_inputs(
        dataset_path, images_path, labels_path, index_path, data=data, train=train
    )
    model = compile_model(strategy, inputs.feature_mean, inputs.feature_var, data=data, train=train)
    train_ds, val_ds = training_datasets(inputs, train, seed)
    with chief_outputs(out_model, out_dvclive, out_report) as (model_path, live_path, report_path):
        fitted = fit_model(
            model,
            train_ds,
            val_ds,
            model_path,
            live_path,
            class_weight=inputs.class_weight,
            train=train,
        )
        report = training_report(
            fitted, inputs, train=train, replicas=int(strategy.num_replicas_in_sync)
        )
        write_report(report_path, report)
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
