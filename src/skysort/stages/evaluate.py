"""Stage ``evaluate``: score the trained model on the test split's observed labels only.

Multilabel: each label is decided at the threshold the train stage tuned on val and
saved next to the model; every score uses the known (observed) test labels only.

``evaluate.explain`` > 0: that many test objects, drawn with ``seed``, get a picture
of where the model looked (Grad-CAM) and which superpixels raised its output (LIME),
for the predicted class or each positive label, in ``plots/explain/<objid>.png``.
They are listed in the stage's report (not in metrics.json).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort.config import Data, Evaluate, Params, Train
from skysort.data import atomic
from skysort.data.labels import observed
from skysort.evaluation.metrics import classification_scores, multilabel_scores
from skysort.model.inputs import load_survey
from skysort.model.tfenv import quiet_tensorflow_info
from skysort.pipeline.stage import Artifact, Link, Markdown, Stage, fmt

log = logging.getLogger(__name__)

EXPLAIN_DIR = "explain"  # under paths.plots


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
    seed: int = 0,
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
            seed=seed,
        )
    quiet_tensorflow_info()
    import keras

    import skysort.model.losses  # noqa: F401  (registers custom losses for loading)
    from skysort.evaluation import plots
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset

    survey = load_survey(dataset_path, images_path, labels_path, data, colours=train.colour_inputs)
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
    atomic.write_json(out_metrics, metrics)

    predictions = pd.DataFrame(
        {
            "objid": dataset["objid"].to_numpy()[test],
            "observed": pd.array([data.classes[k] for k in y[test]], dtype="string"),
            "predicted": pd.array([data.classes[k] for k in pred], dtype="string"),
            **{f"p_{c}": proba[:, k] for k, c in enumerate(data.classes)},
        }
    )
    atomic.write_parquet(out_predictions, predictions)
    tmp = _fresh_dir(Path(out_plots))
    _write_plots(tmp, predictions, y[test], proba, images, test, data, train_report_path, plots)
    targets = [[(int(k), f"{data.classes[k]} (p={proba[i, k]:.2f})")] for i, k in enumerate(pred)]
    explained = _explain(model, survey, test, targets, tmp, train, evaluate, seed)
    _swap_in(tmp, Path(out_plots))
    log.info(
        "evaluate: test accuracy %.4f macro-F1 %.4f on %d objects",
        scores["accuracy"],
        scores["f1_macro"],
        len(test),
    )
    return {**metrics, "explanations": explained}


def _write_plots(
    tmp: Path,
    predictions: pd.DataFrame,
    y: np.ndarray,
    proba: np.ndarray,
    images: np.ndarray,
    test: np.ndarray,
    data: Data,
    train_report_path: Path,
    plots: Any,
) -> None:
    """The multiclass plots, into ``tmp`` (the fresh folder swapped in when all is written)."""
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
        plots.history_png(atomic.read_json(train_report_path)["history"], tmp / "training.png")
    plots.gallery_png(
        np.asarray(images[np.sort(test)])[np.argsort(np.argsort(test))],
        list(predictions["observed"]),
        list(predictions["predicted"]),
        tmp / "gallery.png",
    )


def load_thresholds(path: Path, labels: tuple[str, ...]) -> dict[str, float]:
    """The per-label thresholds the train stage saved; they must be for ``labels``."""
    saved = atomic.read_json(path)
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
    seed: int = 0,
) -> dict[str, Any]:
    """Per-label and overall scores at the saved thresholds, predictions, and the plots."""
    quiet_tensorflow_info()
    import keras

    import skysort.model.losses  # noqa: F401  (registers custom losses and metrics for loading)
    from skysort.evaluation import plots
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset

    survey = load_survey(
        dataset_path, images_path, labels_path, data, "multilabel", train.colour_inputs
    )
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
    atomic.write_json(out_metrics, metrics)

    cut = np.array([thresholds[n] for n in data.labels])
    pred = proba >= cut
    columns: dict[str, Any] = {"objid": survey.dataset["objid"].to_numpy()[test]}
    for k, name in enumerate(data.labels):
        columns[name] = y[:, k]
        columns[f"p_{name}"] = proba[:, k]
        columns[f"pred_{name}"] = pred[:, k].astype(np.int8)
    predictions = pd.DataFrame(columns)
    atomic.write_parquet(out_predictions, predictions)

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
        plots.history_png(atomic.read_json(train_report_path)["history"], tmp / "training.png")
    shown = test[:18]
    plots.label_gallery_png(
        np.asarray(survey.images[np.sort(shown)])[np.argsort(np.argsort(shown))],
        y[: len(shown)],
        pred[: len(shown)],
        data.labels,
        tmp / "gallery.png",
    )
    targets = []
    for i in range(len(test)):
        # each positive label; the most probable one where none is positive
        positive = np.flatnonzero(pred[i]).tolist() or [int(proba[i].argmax())]
        targets.append([(k, f"{data.labels[k]} (p={proba[i, k]:.2f})") for k in positive])
    explained = _explain(model, survey, test, targets, tmp, train, evaluate, seed)
    _swap_in(tmp, Path(out_plots))
    log.info(
        "evaluate: macro ROC-AUC %s, Hamming loss %.4f on %d objects",
        fmt(scores["roc_auc_macro"]),
        scores["hamming_loss"],
        len(test),
    )
    return {**metrics, "explanations": explained}


def _explain(
    model: Any,
    survey: Any,
    test: np.ndarray,
    targets: list[list[tuple[int, str]]],
    plots_dir: Path,
    train: Train,
    evaluate: Evaluate,
    seed: int,
) -> dict[str, Any]:
    """Explain ``evaluate.explain`` test objects drawn with ``seed`` into ``plots_dir/explain``.

    ``targets[i]`` are the outputs to explain for test row ``test[i]``.
    """
    if evaluate.explain == 0:
        return {"objects": 0}
    if train.model == "tabular":
        log.info("evaluate: a tabular model has no image branch: no explanations")
        return {"objects": 0, "skipped": "tabular model: no image branch to explain"}
    from skysort.evaluation.explain import write_explanations

    n = min(evaluate.explain, len(test))
    chosen = np.sort(np.random.default_rng(seed).choice(len(test), size=n, replace=False))
    rows = test[chosen]
    order = np.argsort(rows)  # read the memory-mapped cutouts in file order
    images = np.empty((n, *survey.images.shape[1:]), dtype=survey.images.dtype)
    images[order] = survey.images[rows[order]]
    started = time.perf_counter()
    written = write_explanations(
        model,
        images,
        survey.features[rows],
        survey.dataset["objid"].to_numpy()[rows],
        [targets[i] for i in chosen],
        plots_dir / EXPLAIN_DIR,
        lime_samples=evaluate.lime_samples,
        seed=seed,
        batch_size=evaluate.batch_size,
    )
    per_object = (time.perf_counter() - started) / n
    log.info("evaluate: explained %d test objects, %.2f s each", n, per_object)
    return {
        "objects": n,
        "lime_samples": evaluate.lime_samples,
        "seconds_per_object": round(per_object, 3),
        "files": [f"{EXPLAIN_DIR}/{w['file']}" for w in written],
        "explained": {str(w["objid"]): w["explained"] for w in written},
    }


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
    return _with_plots(
        Markdown("evaluate-metrics", "\n".join(md), "Test metrics"),
        "Confusion matrix, ROC/PR, gallery",
        report,
        params,
    )


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
    return _with_plots(
        Markdown("evaluate-metrics", "\n".join(md), "Test metrics per label"),
        "Per-label confusion, ROC/PR, training curves, gallery",
        report,
        params,
    )


def _with_plots(
    metrics: Artifact, plots: str, report: dict[str, Any], params: Params
) -> list[Artifact]:
    """The metrics artifact, a link to the plots folder, and the explanations (if any)."""
    folder = params.paths.plots
    return [
        metrics,
        Link("evaluate-plots", folder.resolve().as_uri(), str(folder), plots),
        *_explanation_artifacts(report, params),
    ]


def _explanation_artifacts(report: dict[str, Any], params: Params) -> list[Artifact]:
    """The explanation PNGs as a list (with links) and a link to their folder; none when off."""
    ex = report.get("explanations") or {}
    if ex.get("skipped"):
        text = f"# Explanations\n\nNone: {ex['skipped']}."
        return [Markdown("evaluate-explanations", text, "Explanations (Grad-CAM, LIME)")]
    if not ex.get("objects"):
        return []
    folder = params.paths.plots / EXPLAIN_DIR
    md = [
        "# Explanations: where the model looked",
        "",
        f"{ex['objects']} test objects, LIME with {ex['lime_samples']} perturbed cutouts "
        f"each, {ex['seconds_per_object']:.2f} s per object. Each picture, per explained "
        "class or positive label: the cutout, the Grad-CAM heatmap over it, and the "
        "superpixels LIME found raising that output (the rest dimmed).",
        "",
        "| objid | explained | picture |",
        "| --- | --- | --- |",
        *[
            f"| {objid} | {', '.join(what)} | "
            f"[{name}]({(params.paths.plots / name).resolve().as_uri()}) |"
            for (objid, what), name in zip(ex["explained"].items(), ex["files"])
        ],
    ]
    return [
        Markdown("evaluate-explanations", "\n".join(md), "Explanations (Grad-CAM, LIME)"),
        Link(
            "evaluate-explanations-folder",
            folder.resolve().as_uri(),
            str(folder),
            "Grad-CAM and LIME pictures, one PNG per explained test object",
        ),
    ]


STAGE = Stage(
    name="evaluate",
    reads=("dataset", "images", "labels", "model", "train_report", "thresholds"),
    writes=("metrics", "plots", "predictions"),
    params=(
        "seed",
        "task",
        "data.features",
        "data.asinh_scales",
        "data.classes",
        "data.labels",
        "train.model",
        "train.image_encoder",
        "train.colour_inputs",
        "evaluate",
    ),
    function=evaluate,
    describe=lambda p: f"evaluate: {p.train.describe()}",
    summarize=_summarize,
)
