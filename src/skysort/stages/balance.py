"""Stage ``balance``: oversample minority classes of the train split, by row index.

Resampling indices (not feature rows) keeps each image paired with its tabular row.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import RandomOverSampler

from skysort import io
from skysort.config import Balance, Params
from skysort.stage import Artifact, Stage, Table

log = logging.getLogger(__name__)


def balance(
    labels_path: Path, out_index: Path, out_report: Path, *, balance: Balance, seed: int
) -> dict[str, Any]:
    """Write the train rows to use (``row`` values of the dataset, repeats allowed)."""
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
    io.write_npy(out_index, index.astype(np.int64))
    after = pd.Series(labels.set_index("row").loc[index, "label"].astype(str)).value_counts()
    report = {
        "method": balance.method,
        "sampling_strategy": balance.sampling_strategy,
        "before": {str(k): int(v) for k, v in pd.Series(y).value_counts().items()},
        "after": {str(k): int(v) for k, v in after.items()},
        "rows_before": len(rows),
        "rows_after": len(index),
    }
    io.write_json(out_report, report)
    log.info("balance: %s -> %s", report["before"], report["after"])
    return report



def _summarize(report: dict[str, Any], params: Params) -> list[Artifact]:
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
    params=("seed", "balance"),
    function=balance,
    describe=lambda p: f"balance: {p.balance.method}",
    summarize=_summarize,
)
