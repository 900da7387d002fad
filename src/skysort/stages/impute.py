"""Stage ``impute``: fill missing labels by self-training on the train split.

The task's target does the work (:meth:`skysort.targets.base.Target.impute`):
multiclass, one self-trained random forest on the photometry; multilabel, one per
label on the cutouts' morphology and the photometry (or nothing, with
``impute.missing_labels`` ``mask`` or ``drop``). Provenance and confidence are kept.

The imputer is fitted on train rows only, so the fixed test split never leaks into
it. Imputed labels are used for training only; every metric uses observed labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from skysort import targets
from skysort.config import Data, Impute
from skysort.data import atomic
from skysort.pipeline.stage import Stage
from skysort.targets.summaries import impute_summary


def impute_labels(
    *,
    dataset: Path,
    images: Path,
    labels: Path,
    impute_report: Path,
    data: Data,
    impute: Impute,
    seed: int,
    task: str,
) -> dict[str, Any]:
    """Write ``labels`` (labels, their source and confidence per dataset row) and the report."""
    table, report = targets.get(task).impute(pd.read_parquet(dataset), images, data, impute, seed)
    atomic.write_parquet(labels, table)
    atomic.write_json(impute_report, report)
    return report


STAGE = Stage(
    name="impute",
    reads=("dataset", "images"),
    writes=("labels", "impute_report"),
    params=(
        "seed",
        *targets.READS,
        "impute",
    ),
    function=impute_labels,
    describe=lambda p: targets.get(p.task).describe_impute(p.impute),
    summarize=impute_summary,
)
