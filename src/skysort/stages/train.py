"""Stage ``train``: fit ``train.model`` on the balanced train index, judged on val.

A net (``tabular``, ``image``, ``fusion``) is early-stopped on val; images are
memory-mapped from the packed array and gathered batch by batch into a ``tf.data``
pipeline, so the dataset never has to fit in memory. A tree model (``gboost``,
``forest``) and an ``ensemble`` (net + trees) are saved as a model folder
(:mod:`skysort.model.saved`). Multilabel: the
best epoch is judged by validation AUC (``train.monitor``), and each label's
decision threshold is tuned on the validation split's observed labels and saved
next to the model (``paths.thresholds``); evaluation and every later prediction
use those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from skysort import targets
from skysort.config import Data, Train
from skysort.data import atomic
from skysort.model.contract import make_contract
from skysort.model.ensemble import NET_FILE, EnsembleModel, combine
from skysort.model.inputs import Survey, TrainingInputs, load_training_inputs, training_datasets
from skysort.model.report import training_report, write_report
from skysort.model.saved import TREE_KINDS, KerasModel, SavedModel, new_folder, write_meta
from skysort.model.tfenv import configure_tensorflow, quiet_tensorflow_info
from skysort.model.trees import (
    TreeModel,
    fit_tree,
    log_tree_metrics,
    tree_columns,
    tree_rows,
)
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
    """Train ``train.model``, save it atomically with its decisions and contract.

    A net keeps its best epoch by the monitored val metric; a tree model (``gboost``,
    ``forest``) is fitted on the same train rows and features; an ``ensemble`` is the
    net plus the better tree model on val, mixed with a weight fitted on val
    (:mod:`skysort.model.ensemble`). Writes the decisions too (``thresholds``): what
    turns the saved model's probabilities into classes or labels (the task's target
    decides; multilabel tunes a threshold per label on the validation split); and the
    model's ``contract``, what predict needs to feed it (:mod:`skysort.model.contract`).
    """
    quiet_tensorflow_info()
    from skysort.model.distribute import chief_outputs

    target = targets.get(task)
    outputs = (model, dvclive, train_report, thresholds, contract)
    with chief_outputs(*outputs) as (model_path, live_path, report_path, thresholds_path,
                                     contract_path):  # fmt: skip
        if train.model in TREE_KINDS:
            inputs = load_training_inputs(dataset, images, labels, train_index, data=data,
                                          train=train, task=task)  # fmt: skip
            saved, val_proba, report = _train_trees(inputs, model_path, live_path,
                                                    data=data, train=train, seed=seed)  # fmt: skip
        else:
            inputs, saved, val_proba, report = _train_net(
                (dataset, images, labels, train_index), model_path, live_path,
                data=data, train=train, seed=seed, task=task, progress=progress,
            )  # fmt: skip
        val_y = inputs.survey.y[inputs.val_rows]
        decisions = target.decisions(val_y, val_proba, data, train,
                                     train_y=inputs.survey.y[inputs.train_rows])  # fmt: skip
        atomic.write_json(thresholds_path, decisions)
        atomic.write_json(contract_path, make_contract(
            task=task, outputs=target.outputs(data), data=data, train=train,
            n_features=inputs.survey.features.shape[1], feature_mean=inputs.feature_mean,
            feature_var=inputs.feature_var, decisions=decisions, inputs=saved.inputs,
        ))  # fmt: skip
        if "thresholds" in decisions:
            report["thresholds"] = decisions["thresholds"]
        write_report(report_path, report)
    return report


def _train_net(
    paths: tuple[Path, Path, Path, Path], model_path: Path, live_path: Path, *, data: Data,
    train: Train, seed: int, task: str, progress: Progress | None,
) -> tuple[TrainingInputs, SavedModel, np.ndarray | None, dict[str, Any]]:  # fmt: skip
    """Fit the net (an ensemble's too) and save it; its val probabilities where needed."""
    # TensorFlow is imported here, not at module level, so the other stages start fast.
    from skysort.model.distribute import make_strategy
    from skysort.model.fit import compile_model, fit_model
    from skysort.model.predict import load_model

    target = targets.get(task)
    configure_tensorflow(train.threads, seed)
    strategy = make_strategy(train.distribute)  # before any other TensorFlow op
    inputs = load_training_inputs(*paths, data=data, train=train, task=task)
    ensemble = train.model == "ensemble"
    if ensemble:  # the fusion net where there are cutouts, else the tabular one
        kind = "fusion" if inputs.survey.images.shape[1] else "tabular"
        train = train.model_copy(update={"model": kind})
    net_path = new_folder(model_path) / NET_FILE if ensemble else model_path
    steps = -(-len(inputs.train_rows) // train.batch_size)
    net = compile_model(strategy, inputs.feature_mean, inputs.feature_var, data=data,
                        train=train, task=task, steps_per_epoch=steps)  # fmt: skip
    train_ds, val_ds = training_datasets(inputs, train, seed)
    monitor = target.monitor(train)
    fitted = fit_model(net, train_ds, val_ds, net_path, live_path,
                       class_weight=inputs.class_weight, train=train, monitor=monitor,
                       progress=progress)  # fmt: skip
    report = {"task": task} | training_report(
        fitted, inputs, train=train, replicas=int(strategy.num_replicas_in_sync), monitor=monitor
    )
    saved: SavedModel = KerasModel(load_model(net_path), train.model)
    val_proba = None
    if ensemble or target.needs_val_proba:  # the saved (best) net's output on observed val
        val_proba = saved.predict_rows(inputs.survey, inputs.val_rows, train.batch_size)
    if ensemble:
        assert val_proba is not None and isinstance(saved, KerasModel)
        saved, val_proba, mixed = _add_trees(inputs, saved, val_proba, model_path, data, train,
                                             seed)  # fmt: skip
        report |= {"model": "ensemble", "net_model": train.model, **mixed}
    return inputs, saved, val_proba, report


def _add_trees(
    inputs: TrainingInputs, net: KerasModel, net_val: np.ndarray, folder: Path, data: Data,
    train: Train, seed: int,
) -> tuple[SavedModel, np.ndarray, dict[str, Any]]:  # fmt: skip
    """Both tree models, the better one on val mixed with the net; saved into ``folder``."""
    s, rows = inputs.survey, inputs.val_rows
    morphology = _morphology(s)
    fitted = {kind: _fit(kind, inputs, data, train, seed, morphology) for kind in TREE_KINDS}
    trees = {
        kind: (m, m.predict_rows(s, rows, train.batch_size)) for kind, (m, _) in fitted.items()
    }
    head = targets.get(s.task).trees
    kind, weight, report = combine(head, s.y[rows], net_val, trees)
    model = EnsembleModel(net, trees[kind][0], weight)
    write_meta(folder, {"kind": "ensemble", "net": {"kind": net.kind, "file": NET_FILE},
                        "trees": model.trees.save(folder), "weight_net": weight})  # fmt: skip
    seconds = {k: round(sec, 3) for k, (_, sec) in fitted.items()}
    return (
        model,
        model.predict_rows(s, rows, train.batch_size),
        {"ensemble": report, "tree_fit_seconds": seconds},
    )


def _train_trees(
    inputs: TrainingInputs, folder: Path, live_path: Path, *, data: Data, train: Train, seed: int
) -> tuple[SavedModel, np.ndarray, dict[str, Any]]:
    """Fit ``train.model``'s trees on the train rows, save them; their val probabilities."""
    s, rows = inputs.survey, inputs.val_rows
    model, seconds = _fit(train.model, inputs, data, train, seed, _morphology(s))
    val_proba = model.predict_rows(s, rows, train.batch_size)
    model_folder = new_folder(folder)
    write_meta(model_folder, {"kind": train.model, "trees": model.save(model_folder)})
    val_loss = targets.get(s.task).trees.log_loss(s.y[rows], val_proba)
    log_tree_metrics(live_path, {"val_loss": val_loss})
    report = {"task": s.task, "model": train.model, "image_encoder": None, "parameters": None,
              "train_rows": int(len(tree_rows(inputs.train_rows))), "val_rows": int(len(rows)),
              "epochs_run": None, "best_epoch": None, "best_val_loss": val_loss,
              "best_val_accuracy": None, "train_val_accuracy_gap": None,
              "seconds_per_epoch": None, "fit_seconds": round(seconds, 3),
              "columns": model.columns, "history": {}}  # fmt: skip
    return model, val_proba, report


def _morphology(survey: Survey) -> np.ndarray | None:
    """Every cutout's morphology for the trees (batch by batch); None without cutouts."""
    if not survey.images.shape[1]:
        return None
    from skysort.data.morphology import morphology_features

    return morphology_features(survey.images)


def _fit(
    kind: str, inputs: TrainingInputs, data: Data, train: Train, seed: int,
    morphology: np.ndarray | None,
) -> tuple[TreeModel, float]:  # fmt: skip
    """One tree model on the net's train rows, each once (:func:`tree_rows`)."""
    s, rows = inputs.survey, tree_rows(inputs.train_rows)
    columns, colours = tree_columns(data.features, dict(data.asinh_scales), train.colour_inputs)
    n_outputs = len(targets.get(s.task).outputs(data))
    return fit_tree(kind, s.task, s.features[rows], s.y[rows], n_outputs=n_outputs,
                    columns=columns, colours=colours, seed=seed,
                    morphology=None if morphology is None else morphology[rows])  # fmt: skip


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
