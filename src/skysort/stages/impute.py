"""Stage ``impute``: fill missing class labels by self-training on the train split.

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

from skysort import io
from skysort.config import Data, Impute, Params
from skysort.labels import decode, encode, tabular_matrix
from skysort.stage import Artifact, Markdown, Stage, fmt

log = logging.getLogger(__name__)

LABEL_SOURCES = ("observed", "imputed", "unknown")


def impute(
    dataset_path: Path, out_labels: Path, out_report: Path, *, data: Data, impute: Impute, seed: int
) -> dict[str, Any]:
    """Write ``labels.parquet`` (label, label_source, confidence per dataset row) and a report."""
    dataset = pd.read_parquet(dataset_path)
    y = encode(dataset["class"], data.classes)
    X = tabular_matrix(dataset, data.features)
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
    if impute.enabled and missing_train.any():
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
    io.write_parquet(out_labels, labels)
    io.write_json(out_report, report)
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



def _summarize(report: dict[str, Any], params: Params) -> list[Artifact]:
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
    ]
    return [Markdown("impute-report", "\n".join(md), "Imputation")]


STAGE = Stage(
    name="impute",
    reads=("dataset",),
    writes=("labels", "impute_report"),
    params=("seed", "data.features", "data.classes", "impute"),
    function=impute,
    describe=lambda p: "impute: self-training" if p.impute.enabled else "impute: off",
    summarize=_summarize,
)
