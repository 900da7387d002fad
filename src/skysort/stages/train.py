"""Stage ``train``: fit the Keras model on the balanced train index, early-stopped on val.

Images are memory-mapped from the packed array and gathered batch by batch into a
``tf.data`` pipeline, so the dataset never has to fit in memory. Multilabel: the
best epoch is judged by validation AUC (``train.monitor``), and each label's
decision threshold is tuned on the validation split's observed labels and saved
next to the model (``paths.thresholds``); evaluation and every later prediction
use those.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from skysort.config import Data, Params, Train
from skysort.data import atomic
from skysort.model.inputs import load_training_inputs, training_datasets
from skysort.model.report import training_report, write_report
from skysort.model.tfenv import quiet_tensorflow_info
from skysort.pipeline.stage import Artifact, Markdown, Stage, fmt

log = logging.getLogger(__name__)


def train(
    dataset_path: Path,
    images_path: Path,
    labels_path: Path,
    index_path: Path,
    out_model: Path,
    out_dvclive: Path,
    out_report: Path,
    out_thresholds: Path,
    *,
    data: Data,
    train: Train,
    seed: int,
    task: str = "multiclass",
) -> dict[str, Any]:
    """Train, keep the best epoch by the monitored val metric, save the model atomically.

    Writes the decision thresholds too: per label, tuned on val (multilabel), or the
    statement that the class with the highest probability wins (multiclass).
    """
    # TensorFlow is imported here, not at module level, so the other stages start fast.
    quiet_tensorflow_info()
    from skysort.model.distribute import chief_outputs, make_strategy
    from skysort.model.fit import compile_model, fit_model

    configure_tensorflow(train, seed)
    strategy = make_strategy(train.distribute)  # before any other TensorFlow op
    inputs = load_training_inputs(
        dataset_path, images_path, labels_path, index_path, data=data, train=train, task=task
    )
    steps = -(-len(inputs.train_rows) // train.batch_size)
    model = compile_model(
        strategy,
        inputs.feature_mean,
        inputs.feature_var,
        data=data,
        train=train,
        task=task,
        steps_per_epoch=steps,
    )
    train_ds, val_ds = training_datasets(inputs, train, seed)
    monitor = train.monitored(task)
    outputs = (out_model, out_dvclive, out_report, out_thresholds)
    with chief_outputs(*outputs) as (model_path, live_path, report_path, thresholds_path):
        fitted = fit_model(
            model,
            train_ds,
            val_ds,
            model_path,
            live_path,
            class_weight=inputs.class_weight,
            train=train,
            monitor=monitor,
        )
        report = training_report(
            fitted,
            inputs,
            train=train,
            replicas=int(strategy.num_replicas_in_sync),
            monitor=monitor,
        )
        thresholds = decision_thresholds(model_path, inputs, data=data, train=train, task=task)
        atomic.write_json(thresholds_path, thresholds)
        if task == "multilabel":
            report["thresholds"] = thresholds["thresholds"]
        write_report(report_path, report)
    return report


def decision_thresholds(
    model_path: Path, inputs: Any, *, data: Data, train: Train, task: str
) -> dict[str, Any]:
    """What turns the saved model's probabilities into decisions.

    Multilabel: per label, the threshold that maximises ``train.threshold_objective``
    on the validation split's observed labels, found with the saved (best) model.
    """
    if task != "multilabel":
        return {"task": task, "classes": list(data.classes), "decision": "argmax"}
    import keras

    import skysort.model.losses  # noqa: F401  (registers the custom losses and metrics)
    from skysort.evaluation.metrics import tune_thresholds
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset

    s = inputs.survey
    model = keras.models.load_model(model_path, compile=False)
    ds = make_dataset(
        s.images, s.features, inputs.val_rows, INPUTS_BY_MODEL[train.model], train.batch_size
    )
    proba = model.predict(ds, verbose=0)
    tuned = tune_thresholds(s.y[inputs.val_rows], proba, data.labels, train.threshold_objective)
    log.info("thresholds tuned on val (%s): %s", train.threshold_objective, tuned)
    return {
        "task": task,
        "labels": list(data.labels),
        "objective": train.threshold_objective,
        "thresholds": tuned,
    }


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
    writes=("model", "dvclive", "train_report", "thresholds"),
    params=(
        "seed",
        "task",
        "data.features",
        "data.asinh_scales",
        "data.classes",
        "data.labels",
        "data.image_size",
        "train",
    ),
    function=train,
    describe=lambda p: f"train: {p.train.describe()}, {p.train.epochs} epochs",
    summarize=_summarize,
)
