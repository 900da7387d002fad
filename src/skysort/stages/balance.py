"""Stage ``balance``: oversample minority classes (or labels) of the train split, by row index.

Resampling indices (not feature rows) keeps each image paired with its tabular row.
Multiclass: imbalanced-learn's RandomOverSampler. Multilabel: ML-ROS
(:mod:`skysort.data.mlros`) over the rows with at least one known label, or, with
``impute.missing_labels: drop``, only the rows whose labels are all known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from skysort import targets
from skysort.config import Balance, Data, Impute
from skysort.data import atomic
from skysort.pipeline.stage import Stage
from skysort.targets.summaries import balance_summary


def balance_train_rows(
    *,
    labels: Path,
    train_index: Path,
    balance_report: Path,
    data: Data,
    balance: Balance,
    impute: Impute,
    seed: int,
    task: str,
) -> dict[str, Any]:
    """Write the train rows to use (``row`` values of the dataset, repeats allowed)."""
    try:
        index, report = targets.get(task).balance(
            pd.read_parquet(labels), data, balance, impute, seed
        )
    except targets.NothingToScore as exc:
        raise targets.NothingToScore(f"{labels}: {exc}") from None
    atomic.write_npy(train_index, index)
    atomic.write_json(balance_report, report)
    return report


STAGE = Stage(
    name="balance",
    reads=("labels",),
    writes=("train_index", "balance_report"),
    params=("seed", "task", "data.labels", "impute.missing_labels", "balance"),
    function=balance_train_rows,
    describe=lambda p: targets.get(p.task).describe_balance(p.balance),
    summarize=balance_summary,
)
