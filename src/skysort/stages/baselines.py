"""Stage ``baselines``: classical scikit-learn models on the tabular features.

Fitted on the train rows (observed and imputed labels), scored once on the test
split's observed labels; the task's target decides how (multiclass: cross-validated
on train, one model per baseline; multilabel: one binary model per label and
baseline, scored at 0.5; a label with one outcome in train is not fitted, its
scores null with the reason). Image-only data (``data.features`` empty) has nothing for
them to fit: the report says so and lists no models.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from skysort import targets
from skysort.config import Baselines, Data
from skysort.data import atomic
from skysort.data.labels import tabular_matrix
from skysort.pipeline.stage import Stage
from skysort.targets.summaries import baselines_summary

log = logging.getLogger(__name__)


def fit_baselines(
    *,
    dataset: Path,
    labels: Path,
    baselines_report: Path,
    data: Data,
    baselines: Baselines,
    seed: int,
    task: str,
) -> dict[str, Any]:
    """Fit each baseline on the train rows, score it on the observed test rows."""
    report: dict[str, Any] = {"task": task, "features": list(data.features)}
    if not data.features:
        report.update(models={}, skipped="no tabular features (data.features is empty): "
                      "nothing for the classical baselines to fit")  # fmt: skip
        log.info("baselines: %s", report["skipped"])
    else:
        table = pd.read_parquet(dataset)
        X = tabular_matrix(table, data.features, data.asinh_scales)
        try:
            scores = targets.get(task).baselines(X, pd.read_parquet(labels), data, baselines, seed)
        except targets.NothingToScore as exc:
            raise targets.NothingToScore(f"{labels}: {exc}") from None
        report.update(scores)
    atomic.write_json(baselines_report, report)
    return report


STAGE = Stage(
    name="baselines",
    reads=("dataset", "labels"),
    writes=("baselines_report",),
    params=(
        "seed",
        *targets.READS,
        "baselines",
    ),
    function=fit_baselines,
    describe=lambda p: f"baselines: {', '.join(p.baselines.models)}",
    summarize=baselines_summary,
)
