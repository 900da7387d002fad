"""Stage ``evaluate``: score the trained model on the test split's observed labels only.

Multilabel: each label is decided at the threshold the train stage tuned on val and
saved next to the model; every score uses the known (observed) test labels only.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort import io
from skysort.config import Data, Evaluate, Params, Train
from skysort.labels import observed
from skysort.metrics import classification_scores, multilabel_scores
from skysort.stage import Artifact, Link, Markdown, Stage, fmt
from skysort.tfenv import quiet_tensorflow_info
from skysort.training.inputs import load_survey

log = logging.getLogger(__name__)


def evaluate(
    dataset_path: Path,
    images_path: Path,
    labels_path: Path,
    model_path: Path,
    train_report_path: Path,
    thresholds_path: Path,
    out_metrics: Path,
    out_plots: Path,
    out_predictions: Path,
    *,
    data: Data,
    train: Train,
    evaluate: Evaluate,
    task: str = "multiclass",
) -> dict[str, Any]:
    """Write metrics.json, predictions.parquet and the plots (PNG + CSV for ``dvc plots``)."""
    if task == "multilabel":
        return evaluate_multilabel(
            dataset_path,
            images_path,
            labels_path,
            model_path,
            train_report_path,
            thresholds_path,
            out_metrics,
            out_plots,
            out_predictions,
            data=data,
            train=train,
            evaluate=evaluate,
        )
    quiet_tensorflow_info()
    import keras

    import skysort.losses  # noqa: F401  (registers custom losses for loading)
    from skysort import plots
    from skysort.tfdata import INPUTS_BY_MODEL, make_dataset

    survey = load_survey(dataset_path, images_path, labels_path, data)
    dataset, images, y = survey.dataset, survey.images, survey.y
    test = np.flatnonzero(observed(survey.labels, "test"))
    if len(test) == 0:
        raise ValueError(f"{labels_path}: the test split has no observed labels to score on")
    model = keras.models.load_model(model_path)
    ds = make_dataset(
        images, survey.features, test, INPUTS_BY_MODEL[train.model], evaluate.batch_size
    )
    proba = model.predict(ds, verbose=0)
    pred = proba.argmax(axis=1)
    scores = classification_scores(y[test], pred, data.classes, proba)
    metrics = {"model": train.model, "image_encoder": train.image_encoder, **scores}
    io.write_json(out_metrics, metrics)

    predictions = pd.DataFrame(
        {
            "objid": dataset["objid"].to_numpy()[test],
            "observed": pd.array([data.classes[k] for k in y[test]], dtype="string"),
            "predicted": pd.array([data.classes[k] for k in pred], dtype="string"),
            **{f"p_{c}": proba[:, k] for k, c in enumerate(data.classes)},
        }
    )
    io.write_parquet(out_predictions, predictions)
    _write_plots(
        Path(out_plots), predictions, y[test], proba, images, test, data, train_report_path, plots
    )
    log.info(
        "evaluate: test accuracy %.4f macro-F1 %.4f on %d objects",
        scores["accuracy"],
        scores["f1_macro"],
        len(test),
    )
    return metrics


def _write_plots(
    out: Path,
    predictions: pd.DataFrame,
    y: np.ndarray,
    proba: np.ndarray,
    images: np.ndarray,
    test: np.ndarray,
    data: Data,
    train_report_path: Path,
    plots: Any,
) -> None:
    # Rebuild the folder in a temp sibling, then swap it in, so a failure keeps the old plots.
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    predictions[["observed", "predicted"]].to_csv(tmp / "confusion.csv", index=False)
    rows = []
    for k, c in enumerate(data.classes):
        if 0 < (y == k).sum() < len(y):
            from sklearn.metrics import roc_curve

            fpr, tpr, _ = roc_curve(y == k, proba[:, k])
            rows += [{"class": c, "fpr": a, "tpr": b} for a, b in zip(fpr, tpr)]
    pd.DataFrame(rows).to_csv(tmp / "roc.csv", index=False)
    plots.confusion_png(
        classification_scores(y, proba.argmax(1), data.classes)["confusion_matrix"],
        data.classes,
        tmp / "confusion.png",
    )
    plots.curves_png(y, proba, data.classes, tmp / "roc.png", "roc")
    plots.curves_png(y, proba, data.classes, tmp / "pr.png", "pr")
    if Path(train_report_path).exists():
        plots.history_png(io.read_json(train_report_path)["history"], tmp / "training.png")
    plots.gallery_png(
        np.asarray(images[np.sort(test)])[np.argsort(np.argsort(test))],
        list(predictions["observed"]),
        list(predictions["predicted"]),
        tmp / "gallery.png",
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def load_thresholds(path: Path, labels: tuple[str, ...]) -> dict[str, float]:
    """The per-label thresholds the train stage saved; they must be for ``labels``."""
    saved = io.read_json(path)
    if saved.get("task") != "multilabel" or list(saved.get("labels", [])) != list(labels):
        raise ValueError(
            f"{path} holds thresholds for {saved.get('labels') or saved.get('task')}, not for "
            f"data.labels {list(labels)}: rerun the train stage"
        )
    return {name: float(saved["thresholds"][name]) for name in labels}


def evaluate_multilabel(
    dataset_path: Path,
    images_path: Path,
    labels_path: Path,
    model_path: Path,
    train_report_path: Path,
    thresholds_path: Path,
    out_metrics: Path,
    out_plots: Path,
    out_predictions: Path,
    *,
    data: Data,
    train: Train,
    evaluate: Evaluate,
) -> dict[str, Any]:
    """Per-label and overall scores at the saved thresholds, predictions, and the plots."""
    quiet_tensorflow_info()
    import keras

    import skysort.losses  # noqa: F401  (registers custom losses and metrics for loading)
    from skysort import plots
    from skysort.tfdata import INPUTS_BY_MODEL, make_dataset

    survey = load_survey(dataset_path, images_path, labels_path, data, "multilabel")
    test = survey.scored_rows("test")
    if len(test) == 0:
        raise ValueError(f"{labels_path}: the test split has no observed labels to score on")
    thresholds = load_thresholds(thresholds_path, data.labels)
    model = keras.models.load_model(model_path, compile=False)
    ds = make_dataset(
        survey.images, survey.features, test, INPUTS_BY_MODEL[train.model], evaluate.batch_size
    )
    proba = model.predict(ds, verbose=0)
    y = survey.y[test]
    scores = multilabel_scores(y, proba, data.labels, thresholds)
    metrics = {
        "task": "multilabel",
        "model": train.model,
        "image_encoder": train.image_encoder,
        "thresholds": thresholds,
        **scores,
    }
    io.write_json(out_metrics, metrics)

    cut = np.array([thresholds[n] for n in data.labels])
    pred = proba >= cut
    columns: dict[str, Any] = {"objid": survey.dataset["objid"].to_numpy()[test]}
    for k, name in enumerate(data.labels):
        columns[name] = y[:, k]
        columns[f"p_{name}"] = proba[:, k]
        columns[f"pred_{name}"] = pred[:, k].astype(np.int8)
    predictions = pd.DataFrame(columns)
    io.write_parquet(out_predictions, predictions)

    tmp = _fresh_dir(Path(out_plots))
    rows = []
    for k, name in enumerate(data.labels):
        known = ~np.isnan(y[:, k])
        rows += [{"observed": f"{name}={int(a)}", "predicted": f"{name}={int(b)}"}
                 for a, b in zip(y[known, k], pred[known, k])]  # fmt: skip
    pd.DataFrame(rows, columns=["observed", "predicted"]).to_csv(tmp / "confusion.csv", index=False)
    roc_rows = []
    from sklearn.metrics import roc_curve

    for k, name in enumerate(data.labels):
        known = ~np.isnan(y[:, k])
        if 0 < (y[known, k] == 1).sum() < known.sum():
            fpr, tpr, _ = roc_curve(y[known, k] == 1, proba[known, k])
            roc_rows += [{"class": name, "fpr": a, "tpr": b} for a, b in zip(fpr, tpr)]
    pd.DataFrame(roc_rows, columns=["class", "fpr", "tpr"]).to_csv(tmp / "roc.csv", index=False)
    plots.label_confusion_png(scores["per_label"], tmp / "confusion.png")
    plots.label_curves_png(y, proba, data.labels, tmp / "roc.png", "roc")
    plots.label_curves_png(y, proba, data.labels, tmp / "pr.png", "pr")
    if Path(train_report_path).exists():
        plots.history_png(io.read_json(train_report_path)["history"], tmp / "training.png")
    shown = test[:18]
    plots.label_gallery_png(
        np.asarray(survey.images[np.sort(shown)])[np.argsort(np.argsort(shown))],
        y[: len(shown)],
        pred[: len(shown)],
        data.labels,
        tmp / "gallery.png",
    )
    _swap_in(tmp, Path(out_plots))
    log.info(
        "evaluate: macro ROC-AUC %s, Hamming loss %.4f on %d objects",
        fmt(scores["roc_auc_macro"]),
        scores["hamming_loss"],
        len(test),
    )
    return metrics


def _fresh_dir(out: Path) -> Path:
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _swap_in(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def _summarize(report: dict[str, Any], params: Params) -> list[Artifact]:
    if report.get("task") == "multilabel":
        return _summarize_multilabel(report, params)
    md = [
        "# Test metrics (observed labels only)",
        "",
        f"accuracy **{report['accuracy']:.4f}**, macro-F1 **{report['f1_macro']:.4f}**, "
        f"ROC-AUC {fmt(report.get('roc_auc_macro'))}, n = {report['n']}",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {c} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |"
            for c, v in report["per_class"].items()
        ],
    ]
    return [
        Markdown("evaluate-metrics", "\n".join(md), "Test metrics"),
        Link(
            "evaluate-plots",
            params.paths.plots.resolve().as_uri(),
            str(params.paths.plots),
            "Confusion matrix, ROC/PR, gallery",
        ),
    ]


def _summarize_multilabel(report: dict[str, Any], params: Params) -> list[Artifact]:
    keys = ("threshold", "tp", "fp", "tn", "fn", "precision", "recall", "specificity",
            "gmean", "roc_auc", "pr_auc")  # fmt: skip
    md = [
        "# Test metrics per label (observed labels only)",
        "",
        f"macro ROC-AUC **{fmt(report['roc_auc_macro'])}**, micro ROC-AUC "
        f"{fmt(report['roc_auc_micro'])}, macro PR-AUC {fmt(report['pr_auc_macro'])}, "
        f"Hamming loss {fmt(report['hamming_loss'])}, Jaccard {fmt(report['jaccard'])}, "
        f"subset accuracy {fmt(report['subset_accuracy'])}, n = {report['n']}",
        "",
        "| label | " + " | ".join(keys) + " |",
        "| --- " * (len(keys) + 1) + "|",
        *[
            f"| {name} | " + " | ".join(fmt(v[k]) for k in keys) + " |"
            for name, v in report["per_label"].items()
        ],
    ]
    return [
        Markdown("evaluate-metrics", "\n".join(md), "Test metrics per label"),
        Link(
            "evaluate-plots",
            params.paths.plots.resolve().as_uri(),
            str(params.paths.plots),
            "Per-label confusion, ROC/PR, training curves, gallery",
        ),
    ]


STAGE = Stage(
    name="evaluate",
    reads=("dataset", "images", "labels", "model", "train_report", "thresholds"),
    writes=("metrics", "plots", "predictions"),
    params=(
        "task",
        "data.features",
        "data.classes",
        "data.labels",
        "train.model",
        "train.image_encoder",
        "evaluate",
    ),
    function=evaluate,
    describe=lambda p: f"evaluate: {p.train.describe()}",
    summarize=_summarize,
)
