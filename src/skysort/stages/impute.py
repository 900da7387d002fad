"""Stage ``impute``: fill missing labels by self-training on the train split.

Multiclass: one self-trained random forest on the photometry fills ``class`` (image-only
data, with no tabular features, leaves it unknown).
Multilabel: per label, a binary random forest on cheap morphology features of the
cutout (:mod:`skysort.data.morphology`) and the photometry is fitted on the train rows
where that label is known, predicts the unknown ones, accepts those whose
probability reaches the label's confidence, and refits with them, repeatedly
(scikit-learn's SelfTrainingClassifier). Provenance and confidence are kept per
label. With ``impute.missing_labels`` ``mask`` or ``drop`` nothing is filled.

The imputer is fitted on train rows only, so the fixed test split never leaks into
it. Imputed labels are used for training only; every metric uses observed labels.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.semi_supervised import SelfTrainingClassifier

from skysort.config import Data, Impute, Params
from skysort.data import atomic
from skysort.data.labels import decode, encode, label_matrix, tabular_matrix
from skysort.evaluation.metrics import binary_scores
from skysort.pipeline.stage import Artifact, Markdown, Stage, Table, fmt

log = logging.getLogger(__name__)

LABEL_SOURCES = ("observed", "imputed", "unknown")


def impute(
    dataset_path: Path,
    images_path: Path,
    out_labels: Path,
    out_report: Path,
    *,
    data: Data,
    impute: Impute,
    seed: int,
    task: str = "multiclass",
) -> dict[str, Any]:
    """Write ``labels.parquet`` (labels, their source and confidence per dataset row) and a report."""
    if task == "multilabel":
        return impute_multilabel(
            dataset_path, images_path, out_labels, out_report, data=data, impute=impute, seed=seed
        )
    dataset = pd.read_parquet(dataset_path)
    y = encode(dataset["class"], data.classes)
    X = tabular_matrix(dataset, data.features, data.asinh_scales)
    is_train = (dataset["split"] == "train").to_numpy()
    observed = y >= 0
    missing_train = is_train & ~observed

    codes = y.copy()
    confidence = np.where(observed, 1.0, np.nan)
    source = np.where(observed, "observed", "unknown").astype(object)
    report: dict[str, Any] = {
        "enabled": impute.enabled,
        "rows": len(dataset),
        "missing_labels": int((~observed).sum()),
        "missing_labels_train": int(missing_train.sum()),
    }
    if impute.enabled and missing_train.any() and data.features:
        report["holdout"] = _masked_holdout(X[is_train], y[is_train], data, impute, seed)
        model = _self_trainer(impute, seed).fit(X[is_train], y[is_train])
        proba = model.predict_proba(X[missing_train])
        best = proba.argmax(axis=1)
        conf = proba.max(axis=1)
        accepted = conf >= impute.confidence
        idx = np.flatnonzero(missing_train)
        codes[idx[accepted]] = model.classes_[best[accepted]]
        confidence[idx] = conf
        source[idx[accepted]] = "imputed"
        report["imputed"] = int(accepted.sum())
        report["left_unknown"] = int((~accepted).sum())
    else:
        if impute.enabled and missing_train.any():  # image-only data: no features to learn from
            report["note"] = "no tabular features (data.features is empty): nothing to impute from"
            log.warning("impute: %s; %d unknown train labels stay unknown", report["note"],
                        int(missing_train.sum()))  # fmt: skip
        report["imputed"] = 0
        report["left_unknown"] = int(missing_train.sum())
    report["label_source_counts"] = {s: int((source == s).sum()) for s in LABEL_SOURCES}

    labels = pd.DataFrame(
        {
            "objid": dataset["objid"].to_numpy(),
            "row": dataset["row"].to_numpy(),
            "split": dataset["split"].to_numpy(),
            "label": pd.array(decode(codes, data.classes), dtype="string"),
            "label_source": pd.array(source, dtype="string"),
            "confidence": confidence,
        }
    )
    atomic.write_parquet(out_labels, labels)
    atomic.write_json(out_report, report)
    log.info("impute: %s", report["label_source_counts"])
    return report


def _self_trainer(impute: Impute, seed: int) -> SelfTrainingClassifier:
    base = RandomForestClassifier(
        n_estimators=impute.n_estimators, min_samples_leaf=2, random_state=seed, n_jobs=-1
    )
    return SelfTrainingClassifier(base, threshold=impute.confidence, max_iter=impute.max_iter)


def _masked_holdout(
    X: np.ndarray, y: np.ndarray, data: Data, impute: Impute, seed: int
) -> dict[str, Any]:
    """Hide a fraction of the known labels, self-train, and score the hidden ones."""
    rng = np.random.default_rng(seed + 1)
    known = np.flatnonzero(y >= 0)
    n_hide = max(1, int(round(len(known) * impute.holdout_fraction)))
    if len(known) - n_hide < 2:
        return {"hidden": 0, "note": "too few labelled rows for a hold-out"}
    hide = rng.choice(known, size=n_hide, replace=False)
    y_masked = y.copy()
    y_masked[hide] = -1
    model = _self_trainer(impute, seed).fit(X, y_masked)
    proba = model.predict_proba(X[hide])
    pred = model.classes_[proba.argmax(axis=1)]
    conf = proba.max(axis=1)
    confident = conf >= impute.confidence
    return {
        "hidden": int(n_hide),
        "accuracy": float((pred == y[hide]).mean()),
        "accuracy_confident": float((pred[confident] == y[hide][confident]).mean())
        if confident.any()
        else None,
        "coverage_confident": float(confident.mean()),
    }


def impute_multilabel(
    dataset_path: Path,
    images_path: Path,
    out_labels: Path,
    out_report: Path,
    *,
    data: Data,
    impute: Impute,
    seed: int,
) -> dict[str, Any]:
    """Per label: self-train on the known train rows, fill the confident unknown ones."""
    dataset = pd.read_parquet(dataset_path)
    y = label_matrix(dataset, data.labels)
    is_train = (dataset["split"] == "train").to_numpy()
    filling = impute.enabled and impute.missing_labels == "impute"
    X = imputer_features(dataset, images_path, data, impute) if filling else None
    table = dataset[["objid", "row", "split"]].copy()
    report: dict[str, Any] = {
        "task": "multilabel",
        "enabled": filling,
        "missing_labels": impute.missing_labels,
        "rows": len(dataset),
        "per_label": {},
    }
    for k, name in enumerate(data.labels):
        values = y[:, k].copy()
        known = ~np.isnan(values)
        source = np.where(known, "observed", "unknown").astype(object)
        confidence = np.where(known, 1.0, np.nan)
        missing_train = is_train & ~known
        entry: dict[str, Any] = {
            "known_train": int((is_train & known).sum()),
            "missing_train": int(missing_train.sum()),
            "confidence": impute.confidence_for(name),
            "filled": 0,
        }
        if filling and missing_train.any() and len(np.unique(values[is_train & known])) == 2:
            assert X is not None
            entry["holdout"] = _binary_holdout(X[is_train], values[is_train], name, impute, seed)
            model = _binary_self_trainer(impute, name, seed).fit(
                X[is_train], np.where(np.isnan(values[is_train]), -1, values[is_train]).astype(int)
            )
            idx = np.flatnonzero(missing_train)
            proba = model.predict_proba(X[idx])[:, list(model.classes_).index(1)]
            conf = np.maximum(proba, 1 - proba)
            accepted = conf >= impute.confidence_for(name)
            values[idx[accepted]] = (proba[accepted] >= 0.5).astype(float)
            source[idx[accepted]] = "imputed"
            confidence[idx] = conf
            entry["filled"] = int(accepted.sum())
            entry["filled_positive"] = int((proba[accepted] >= 0.5).sum())
        entry["left_unknown_train"] = int((is_train & np.isnan(values)).sum())
        entry["source_counts"] = {s: int((source == s).sum()) for s in LABEL_SOURCES}
        report["per_label"][name] = entry
        table[name] = values
        table[f"{name}_source"] = pd.array(source, dtype="string")
        table[f"{name}_confidence"] = confidence
    report["filled"] = int(sum(e["filled"] for e in report["per_label"].values()))
    atomic.write_parquet(out_labels, table.reset_index(drop=True))
    atomic.write_json(out_report, report)
    log.info(
        "impute (multilabel): filled %s",
        {n: e["filled"] for n, e in report["per_label"].items()},
    )
    return report


def imputer_features(
    dataset: pd.DataFrame, images_path: Path, data: Data, impute: Impute
) -> np.ndarray:
    """What the multilabel imputer sees: cutout morphology and/or photometry with colours."""
    from skysort.data.morphology import morphology_features

    parts = []
    if impute.image_features:
        images = np.load(images_path, mmap_mode="r")
        if len(images) != len(dataset):
            raise ValueError(
                f"{images_path} has {len(images)} images for {len(dataset)} rows: rerun clean"
            )
        parts.append(morphology_features(images))
    if impute.tabular_features or not parts:
        parts.append(tabular_matrix(dataset, data.features, data.asinh_scales))
    return np.column_stack(parts)


def _binary_self_trainer(impute: Impute, label: str, seed: int) -> SelfTrainingClassifier:
    base = RandomForestClassifier(
        n_estimators=impute.n_estimators,
        min_samples_leaf=2,
        class_weight="balanced_subsample",
        random_state=seed,
        n_jobs=-1,
    )
    return SelfTrainingClassifier(
        base, threshold=impute.confidence_for(label), max_iter=impute.max_iter
    )


def _binary_holdout(
    X: np.ndarray, y: np.ndarray, label: str, impute: Impute, seed: int
) -> dict[str, Any]:
    """Hide a share of one label's known train values, self-train, score the hidden ones.

    Scores at 0.5: TP, FP, TN, FN, precision, recall, ROC-AUC, PR-AUC; plus how many
    hidden values the imputer would have filled (confident) and how right those were.
    """
    rng = np.random.default_rng(seed + 1)
    known = np.flatnonzero(~np.isnan(y))
    n_hide = max(1, int(round(len(known) * impute.holdout_fraction)))
    if len(known) - n_hide < 4:
        return {"hidden": 0, "note": "too few labelled rows for a hold-out"}
    hide = rng.choice(known, size=n_hide, replace=False)
    masked = np.where(np.isnan(y), -1, y).astype(int)
    masked[hide] = -1
    if len(np.unique(masked[masked >= 0])) < 2:
        return {"hidden": 0, "note": "one outcome left after hiding"}
    model = _binary_self_trainer(impute, label, seed).fit(X, masked)
    proba = model.predict_proba(X[hide])[:, list(model.classes_).index(1)]
    scores = binary_scores(y[hide], proba, 0.5)
    confident = np.maximum(proba, 1 - proba) >= impute.confidence_for(label)
    keep = ("tp", "fp", "tn", "fn", "precision", "recall", "roc_auc", "pr_auc", "accuracy")
    return {
        "hidden": int(n_hide),
        **{k: scores[k] for k in keep},
        "would_fill": int(confident.sum()),
        "accuracy_filled": float(((proba >= 0.5) == (y[hide] == 1))[confident].mean())
        if confident.any()
        else None,
    }


def _summarize(report: dict[str, Any], params: Params) -> list[Artifact]:
    if report.get("task") == "multilabel":
        rows = []
        for name, e in report["per_label"].items():
            h = e.get("holdout", {})
            rows.append({
                "label": name, "filled": e["filled"], "left unknown": e["left_unknown_train"],
                **{k: fmt(h.get(k)) for k in ("tp", "fp", "tn", "fn", "precision", "recall",
                                               "roc_auc", "pr_auc")},
            })  # fmt: skip
        return [
            Table(
                "impute-labels",
                rows,
                f"Self-training per label ({report['missing_labels']}); masked hold-out scores",
            )
        ]
    hold = report.get("holdout", {})
    md = [
        "# Label imputation (self-training)",
        "",
        "| label source | rows |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in report["label_source_counts"].items()],
        "",
        f"Masked hold-out accuracy: **{fmt(hold.get('accuracy', 'n/a'))}** "
        f"on {hold.get('hidden', 0)} hidden labels.",
        *(["", f"Nothing imputed: {report['note']}."] if "note" in report else []),
    ]
    return [Markdown("impute-report", "\n".join(md), "Imputation")]


def _describe(p: Params) -> str:
    if p.task == "multilabel" and p.impute.missing_labels != "impute":
        return f"impute: off ({p.impute.missing_labels} missing labels)"
    return "impute: self-training" if p.impute.enabled else "impute: off"


STAGE = Stage(
    name="impute",
    reads=("dataset", "images"),
    writes=("labels", "impute_report"),
    params=(
        "seed",
        "task",
        "data.features",
        "data.asinh_scales",
        "data.classes",
        "data.labels",
        "impute",
    ),
    function=impute,
    describe=_describe,
    summarize=_summarize,
)
