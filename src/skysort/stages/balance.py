"""Stage ``balance``: oversample minority classes (or labels) of the train split, by row index.

Resampling indices (not feature rows) keeps each image paired with its tabular row.
Multiclass: imbalanced-learn's RandomOverSampler. Multilabel: ML-ROS
(:mod:`skysort.data.mlros`) over the rows with at least one known label, or, with
``impute.missing_labels: drop``, only the rows whose labels are all known.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import RandomOverSampler

from skysort.config import Balance, Params
from skysort.data import atomic
from skysort.data.labels import label_matrix
from skysort.data.mlros import imbalance_ratios, ml_ros, positive_counts
from skysort.pipeline.stage import Artifact, Stage, Table

log = logging.getLogger(__name__)


def balance(
    labels_path: Path,
    out_index: Path,
    out_report: Path,
    *,
    balance: Balance,
    seed: int,
    task: str = "multiclass",
    labels: tuple[str, ...] = (),
    missing_labels: str = "impute",
) -> dict[str, Any]:
    """Write the train rows to use (``row`` values of the dataset, repeats allowed)."""
    if task == "multilabel":
        return balance_multilabel(
            labels_path, out_index, out_report, balance=balance, seed=seed, names=labels,
            missing_labels=missing_labels,
        )  # fmt: skip
    labels = pd.read_parquet(labels_path)
    train = labels[(labels["split"] == "train") & labels["label"].notna()]
    if train.empty:
        raise ValueError(f"{labels_path}: the train split has no labelled rows to balance")
    rows = train["row"].to_numpy(dtype=np.int64)
    y = train["label"].astype(str).to_numpy()
    if balance.method == "random_over" and len(set(y)) > 1:
        sampler = RandomOverSampler(sampling_strategy=balance.sampling_strategy, random_state=seed)
        sampler.fit_resample(rows.reshape(-1, 1), y)
        index = rows[sampler.sample_indices_]
    else:
        index = rows
    index = np.random.default_rng(seed).permutation(index)
    atomic.write_npy(out_index, index.astype(np.int64))
    after = pd.Series(labels.set_index("row").loc[index, "label"].astype(str)).value_counts()
    report = {
        "method": balance.method,
        "sampling_strategy": balance.sampling_strategy,
        "before": {str(k): int(v) for k, v in pd.Series(y).value_counts().items()},
        "after": {str(k): int(v) for k, v in after.items()},
        "rows_before": len(rows),
        "rows_after": len(index),
    }
    atomic.write_json(out_report, report)
    log.info("balance: %s -> %s", report["before"], report["after"])
    return report


def balance_multilabel(
    labels_path: Path,
    out_index: Path,
    out_report: Path,
    *,
    balance: Balance,
    seed: int,
    names: tuple[str, ...],
    missing_labels: str,
) -> dict[str, Any]:
    """ML-ROS over the train rows that can train: any known label, or all (``drop``)."""
    table = pd.read_parquet(labels_path)
    y = label_matrix(table, names)
    known = ~np.isnan(y)
    usable = known.all(axis=1) if missing_labels == "drop" else known.any(axis=1)
    train = (table["split"] == "train").to_numpy() & usable
    if not train.any():
        raise ValueError(f"{labels_path}: the train split has no labelled rows to balance")
    rows = table["row"].to_numpy(dtype=np.int64)[train]
    y_train = y[train]
    rng = np.random.default_rng(seed)
    if balance.method in ("random_over", "ml_ros"):
        picked = ml_ros(y_train, balance.ml_ros_percent, rng)
    else:
        picked = np.arange(len(rows))
    index = rng.permutation(rows[picked]).astype(np.int64)
    atomic.write_npy(out_index, index)
    before, after = positive_counts(y_train), positive_counts(y_train[picked])
    report = {
        "task": "multilabel",
        "method": "ml_ros" if balance.method != "none" else "none",
        "ml_ros_percent": balance.ml_ros_percent,
        "missing_labels": missing_labels,
        "before": {n: int(c) for n, c in zip(names, before)},
        "after": {n: int(c) for n, c in zip(names, after)},
        "imbalance_ratio_before": _ratios(names, before),
        "imbalance_ratio_after": _ratios(names, after),
        "rows_before": len(rows),
        "rows_after": len(index),
        "train_rows_dropped_for_missing_labels": int(
            ((table["split"] == "train").to_numpy() & ~usable).sum()
        ),
    }
    atomic.write_json(out_report, report)
    log.info("balance (ML-ROS): positives %s -> %s", report["before"], report["after"])
    return report


def _ratios(names: tuple[str, ...], counts: np.ndarray) -> dict[str, float | None]:
    ratios = imbalance_ratios(counts)
    return {n: None if np.isnan(r) else round(float(r), 4) for n, r in zip(names, ratios)}


def _summarize(report: dict[str, Any], params: Params) -> list[Artifact]:
    if report.get("task") == "multilabel":
        rows = [
            {"label": n, "positives before": report["before"][n], "after": report["after"][n]}
            for n in report["before"]
        ]
        return [Table("balance-label-counts", rows, f"Train label counts ({report['method']})")]
    classes = sorted(set(report["before"]) | set(report["after"]))
    rows = [
        {"class": c, "before": report["before"].get(c, 0), "after": report["after"].get(c, 0)}
        for c in classes
    ]
    return [Table("balance-class-counts", rows, f"Train class counts ({report['method']})")]


STAGE = Stage(
    name="balance",
    reads=("labels",),
    writes=("train_index", "balance_report"),
    params=("seed", "task", "data.labels", "impute.missing_labels", "balance"),
    function=balance,
    describe=lambda p: (
        f"balance: {p.balance.method}"
        + (" (ML-ROS)" if p.task == "multilabel" and p.balance.method != "none" else "")
    ),
    summarize=_summarize,
)
