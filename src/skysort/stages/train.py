"""Stage ``train``: fit the Keras model on the balanced train index, early-stopped on val.

Images are memory-mapped from the packed array and gathered batch by batch into a
``tf.data`` pipeline, so the dataset never has to fit in memory. Multilabel: the
best epoch is judged by validation AUC (``train.monitor``), and each label's
decision threshold is tuned on the validation split's observed labels and saved
next to the model (``paths.thresholds``); evaluation and every later prediction
use those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skysort import targets
from skysort.config import Data, Train
from skysort.data import atomic
from skysort.model.contract import make_contract
from skysort.model.inputs import load_training_inputs, training_datasets
from skysort.model.report import training_report, write_report
from skysort.model.tfenv import configure_tensorflow, quiet_tensorflow_info
from skysort.pipeline.progress import Progress
from skysort.pipeline.stage import Stage
from skysort.pipeline.summaries import train_summary


def train_model(
    *,
    dataset: Path,
    images: Path,
    labels: Path,
    train_index: Path,
    model: Path,
    dvclive: Path,
    train_report: Path,
    thresholds: Path,
    contract: Path,
    data: Data,
    train: Train,
    seed: int,
    task: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train, keep the best epoch by the monitored val metric, save the model atomically.

    Writes the decisions too (``thresholds``): what turns the saved model's
    probabilities into classes or labels (the task's target decides; multilabel tunes
    a threshold per label on the validation split); and the model's ``contract``,
    what predict needs to feed it (:mod:`skysort.model.contract`).
    """
    # TensorFlow is imported here, not at module level, so the other stages start fast.
    quiet_tensorflow_info()
    from skysort.model.distribute import chief_outputs, make_strategy
    from skysort.model.fit import compile_model, fit_model
    from skysort.model.predict import load_model, predict_rows

    target = targets.get(task)
    configure_tensorflow(train.threads, seed)
    strategy = make_strategy(train.distribute)  # before any other TensorFlow op
    inputs = load_training_inputs(
        dataset, images, labels, train_index, data=data, train=train, task=task
    )
    steps = -(-len(inputs.train_rows) // train.batch_size)
    net = compile_model(
        strategy,
        inputs.feature_mean,
        inputs.feature_var,
        data=data,
        train=train,
        task=task,
        steps_per_epoch=steps,
    )
    train_ds, val_ds = training_datasets(inputs, train, seed)
    monitor = target.monitor(train)
    outputs = (model, dvclive, train_report, thresholds, contract)
    with chief_outputs(*outputs) as (model_path, live_path, report_path, thresholds_path,
                                     contract_path):  # fmt: skip
        fitted = fit_model(
            net,
            train_ds,
            val_ds,
            model_path,
            live_path,
            class_weight=inputs.class_weight,
            train=train,
            monitor=monitor,
            progress=progress,
        )
        report = {"task": task}
        report |= training_report(
            fitted,
            inputs,
            train=train,
            replicas=int(strategy.num_replicas_in_sync),
            monitor=monitor,
        )
        val_y = inputs.survey.y[inputs.val_rows]
        val_proba = None
        if target.needs_val_proba:  # the saved (best) model's output on the observed val rows
            best = load_model(model_path)
            val_proba = predict_rows(best, inputs.survey, inputs.val_rows, train.model,
                                     train.batch_size)  # fmt: skip
        decisions = target.decisions(val_y, val_proba, data, train,
                                     train_y=inputs.survey.y[inputs.train_rows])  # fmt: skip
        atomic.write_json(thresholds_path, decisions)
        atomic.write_json(contract_path, make_contract(
            task=task, outputs=target.outputs(data), data=data, train=train,
            n_features=inputs.survey.features.shape[1], feature_mean=inputs.feature_mean,
            feature_var=inputs.feature_var, decisions=decisions,
        ))  # fmt: skip
        if "thresholds" in decisions:
            report["thresholds"] = decisions["thresholds"]
        write_report(report_path, report)
    return report


STAGE = Stage(
    name="train",
    reads=("dataset", "images", "labels", "train_index"),
    writes=("model", "dvclive", "train_report", "thresholds", "contract"),
    params=(
        "seed",
        *targets.READS,
        "data.image_size",
        "train",
    ),
    function=train_model,
    describe=lambda p: f"train: {p.train.describe()}, {p.train.epochs} epochs",
    summarize=train_summary,
    progress="training epochs",
)
