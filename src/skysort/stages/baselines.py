"""Stage ``baselines``: classical scikit-learn models on the tabular features.

Cross-validated on the train split, scored once on the test split's observed labels.
Multilabel: one binary model per label and baseline, fitted on the train rows where
that label is known (observed or imputed), scored on the observed test labels at 0.5
(ROC-AUC and PR-AUC do not depend on the threshold); no cross-validation.
Image-only data (``data.features`` empty) has nothing for them to fit: the report
says so and lists no models.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.ensemble import (
    AdaBoostClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from skysort.config import Baselines, Data, Params
from skysort.data import atomic
from skysort.data.labels import encode, label_matrix, observed, observed_matrix, tabular_matrix
from skysort.evaluation.metrics import classification_scores, multilabel_scores
from skysort.pipeline.stage import Artifact, Stage, Table, fmt

log = logging.getLogger(__name__)


def make_baseline(name: str, seed: int) -> ClassifierMixin:
    """One named classical classifier with sensible defaults for a few thousand rows."""
    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if name == "tree":
        return DecisionTreeClassifier(min_samples_leaf=5, random_state=seed)
    if name == "forest":
        return RandomForestClassifier(
            n_estimators=300, min_samples_leaf=2, random_state=seed, n_jobs=-1
        )
    if name == "adaboost":
        return AdaBoostClassifier(n_estimators=200, random_state=seed)
    if name == "gboost":
        return HistGradientBoostingClassifier(random_state=seed)
    raise ValueError(f"unknown baseline {name!r}")


def baselines(
    dataset_path: Path,
    labels_path: Path,
    out_report: Path,
    *,
    data: Data,
    baselines: Baselines,
    seed: int,
    task: str = "multiclass",
) -> dict[str, Any]:
    """Fit each baseline on train rows (observed + imputed labels), score on observed test rows."""
    if not data.features:
        report = {
            **({"task": "multilabel"} if task == "multilabel" else {}),
            "features": [],
            "models": {},
            "skipped": "no tabular features (data.features is empty): nothing for the "
            "classical baselines to fit",
        }
        log.info("baselines: %s", report["skipped"])
        atomic.write_json(out_report, report)
        return report
    if task == "multilabel":
        return baselines_multilabel(
            dataset_path, labels_path, out_report, data=data, baselines=baselines, seed=seed
        )
    dataset = pd.read_parquet(dataset_path)
    labels = pd.read_parquet(labels_path)
    X = tabular_matrix(dataset, data.features, data.asinh_scales)
    y = encode(labels["label"], data.classes)
    train = ((labels["split"] == "train").to_numpy()) & (y >= 0)
    test = observed(labels, "test")
    if not test.any():
        raise ValueError(f"{labels_path}: the test split has no observed labels to score on")
    folds = min(baselines.cv_folds, int(np.bincount(y[train]).min()))
    results: dict[str, Any] = {}
    # One OpenMP thread: gradient boosting's spin-waiting threads slow to a crawl when the
    # machine is shared (132 s instead of 1.4 s for a 3-fold CV, measured on 2 cores).
    with threadpool_limits(limits=1, user_api="openmp"):
        for name in baselines.models:
            results[name] = _score(name, X, y, train, test, folds, data, seed)
    report = {
        "features": list(data.features),
        "train_rows": int(train.sum()),
        "test_rows": int(test.sum()),
        "models": results,
    }
    atomic.write_json(out_report, report)
    return report


def _score(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    folds: int,
    data: Data,
    seed: int,
) -> dict[str, Any]:
    """Cross-validate one baseline on train, fit it, score it on test."""
    model = make_baseline(name, seed)
    cv = (
        cross_val_score(
            model,
            X[train],
            y[train],
            scoring="f1_macro",
            cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        )
        if folds >= 2
        else np.array([np.nan])
    )
    started = time.perf_counter()
    model.fit(X[train], y[train])
    fit_s = time.perf_counter() - started
    scores = classification_scores(
        y[test], model.predict(X[test]), data.classes, model.predict_proba(X[test])
    )
    result = {
        "cv_f1_macro_mean": float(np.nanmean(cv)) if not np.isnan(cv).all() else None,
        "cv_f1_macro_std": float(np.nanstd(cv)) if not np.isnan(cv).all() else None,
        "fit_seconds": round(fit_s, 4),
        **scores,
    }
    log.info(
        "baseline %-8s test accuracy %.3f macro-F1 %.3f (fit %.2fs)",
        name,
        scores["accuracy"],
        scores["f1_macro"],
        fit_s,
    )
    return result


def baselines_multilabel(
    dataset_path: Path,
    labels_path: Path,
    out_report: Path,
    *,
    data: Data,
    baselines: Baselines,
    seed: int,
) -> dict[str, Any]:
    """Per label and baseline: fit on the known train labels, score on observed test labels."""
    dataset = pd.read_parquet(dataset_path)
    labels = pd.read_parquet(labels_path)
    X = tabular_matrix(dataset, data.features, data.asinh_scales)
    y_train = label_matrix(labels, data.labels)
    y_test = observed_matrix(labels, data.labels)
    is_train = (labels["split"] == "train").to_numpy()
    test = (labels["split"] == "test").to_numpy() & ~np.isnan(y_test).all(axis=1)
    if not test.any():
        raise ValueError(f"{labels_path}: the test split has no observed labels to score on")
    results: dict[str, Any] = {}
    with threadpool_limits(limits=1, user_api="openmp"):
        for name in baselines.models:
            started = time.perf_counter()
            proba = np.full((int(test.sum()), len(data.labels)), 0.5)
            for k in range(len(data.labels)):
                rows = is_train & ~np.isnan(y_train[:, k])
                if len(np.unique(y_train[rows, k])) < 2:
                    continue  # one outcome only: a constant 0.5 scores as chance
                model = make_baseline(name, seed).fit(X[rows], y_train[rows, k].astype(int))
                proba[:, k] = model.predict_proba(X[test])[:, 1]
            scores = multilabel_scores(y_test[test], proba, data.labels)
            scores["fit_seconds"] = round(time.perf_counter() - started, 4)
            results[name] = scores
            log.info("baseline %-8s test macro ROC-AUC %s", name, fmt(scores["roc_auc_macro"]))
    report = {
        "task": "multilabel",
        "features": list(data.features),
        "train_rows": int(is_train.sum()),
        "test_rows": int(test.sum()),
        "models": results,
    }
    atomic.write_json(out_report, report)
    return report


def _summarize(report: dict[str, Any], params: Params) -> list[Artifact]:
    multilabel = report.get("task") == "multilabel"

    def scores(m: dict[str, Any]) -> dict[str, str]:
        if multilabel:
            per_label = {f"auc_{k}": fmt(v["roc_auc"]) for k, v in m["per_label"].items()}
            return {"roc_auc_macro": fmt(m["roc_auc_macro"]),
                    "pr_auc_macro": fmt(m["pr_auc_macro"]), **per_label}  # fmt: skip
        per_class = {f"f1_{c}": fmt(v["f1"]) for c, v in m["per_class"].items()}
        return {"accuracy": fmt(m["accuracy"]), "f1_macro": fmt(m["f1_macro"]), **per_class}

    rows = [
        {"model": name, **scores(m), "fit_seconds": m["fit_seconds"]}
        for name, m in report["models"].items()
    ]
    what = "per label (test split)" if multilabel else "on the test split"
    if not rows:
        return [Table("baselines-metrics", [{"model": "none", "note": report["skipped"]}],
                      "Classical baselines: none")]  # fmt: skip
    return [Table("baselines-metrics", rows, f"Classical baselines {what}")]


STAGE = Stage(
    name="baselines",
    reads=("dataset", "labels"),
    writes=("baselines_report",),
    params=(
        "seed",
        "task",
        "data.features",
        "data.asinh_scales",
        "data.classes",
        "data.labels",
        "baselines",
    ),
    function=baselines,
    describe=lambda p: f"baselines: {', '.join(p.baselines.models)}",
    summarize=_summarize,
)
