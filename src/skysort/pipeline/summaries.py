"""What a person sees of each stage's report in the Prefect UI, as plain data.

One function per stage, ``(report, params) -> artifacts``, for the stages whose
summary is the same for every task; :mod:`skysort.targets.summaries` has the others.
The library never imports Prefect: ``skysort.tasks.artifacts`` turns these into
Prefect artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skysort.config import Params
from skysort.pipeline.stage import (
    Artifact,
    Images,
    Link,
    Markdown,
    Picture,
    Table,
    counts_table,
    fmt,
)

Report = dict[str, Any]


def query_summary(report: Report, params: Params) -> list[Artifact]:
    artifacts: list[Artifact] = [
        Table(
            "query-class-mix",
            counts_table(report["class_counts"], "class"),
            f"{report['rows']} objects from {report['source']}",
        )
    ]
    if "file" in report:
        artifacts.append(
            Markdown("query-file", _file_summary(report), "What was read from the file")
        )
    return artifacts


def _file_summary(report: Report) -> str:
    """The files source's report as a person reads it: ids, what was odd, what is missing."""
    lines = [f"# {report['file']}", "", f"- {report['rows']} rows; ids: {report['ids']}"]
    lines += [f"- {note}" for note in report["notes"]]
    if report["unused_columns"]:
        lines.append(f"- columns not used: {', '.join(report['unused_columns'])}")
    for feature, problems in report["missing_features"].items():
        for kind, where in problems.items():
            lines.append(f"- `{feature}` {kind}: {where['rows']} rows (first: {where['first']})")
    return "\n".join(lines)


def cutouts_summary(report: Report, params: Params) -> list[Artifact]:
    rows = counts_table(report["status_counts"], "status")
    return [Table("cutouts-status", rows, "Cutouts by final status")]


def clean_summary(report: Report, params: Params) -> list[Artifact]:
    dropped = counts_table(report["dropped_by_reason"], "reason")
    return [
        Table(
            "clean-dropped",
            dropped or [{"reason": "none", "count": 0}],
            f"Kept {report['kept_rows']} of {report['input_rows']} rows; dropped by reason",
        ),
        Table("clean-splits", counts_table(report["split_counts"], "split"), "Rows per split"),
    ]


_TRAIN_KEYS = (
    "model",
    "image_encoder",
    "parameters",
    "train_rows",
    "val_rows",
    "epochs_run",
    "best_epoch",
    "best_val_accuracy",
    "best_val_loss",
    "seconds_per_epoch",
)


def train_summary(report: Report, params: Params) -> list[Artifact]:
    md = ["# Training", "", "| | |", "| --- | --- |"]
    md += [f"| {k} | {fmt(report[k])} |" for k in _TRAIN_KEYS]
    return [Markdown("train-summary", "\n".join(md), "Training run")]


def predict_summary(report: Report, params: Params) -> list[Artifact]:
    """Objects per class (or label), why some could not be classified, how sure the rest are.

    The confidence histogram is a table and a picture (embedded as a small thumbnail).
    """
    counts = counts_table(report["counts"], "class or label")
    hist = report["confidence_histogram"]
    edges, n = hist["edges"], hist["counts"]
    bars = [{"top probability": f"{a:.1f}-{b:.1f}", "objects": c, "bar": "#" * round(40 * c / max(max(n), 1))}
            for a, b, c in zip(edges, edges[1:], n)]  # fmt: skip
    lost = counts_table(report["unclassified_by_reason"], "reason")
    folder = Path(report["output"])
    headline = (report.get("note") or f"{report['classified']} of {report['objects']} objects "
                f"classified ({report['described']})")  # fmt: skip
    artifacts: list[Artifact] = [
        Table("predict-counts", counts or [{"class or label": "none", "count": 0}], headline),
        Table("predict-confidence", bars, "How sure the model is: objects per top probability"),
    ]
    if hist.get("picture"):
        text = (f"# How sure the model is\n\n{headline}; {report['needs_spectrum']} below "
                f"predict.min_confidence ({report['min_confidence']}) need a spectrum.")  # fmt: skip
        artifacts.append(Images("predict-confidence-plot", text,
                                (Picture("Objects per top probability", Path(hist["picture"])),),
                                "Confidence histogram"))  # fmt: skip
    return [
        *artifacts,
        Table("predict-unclassified", lost or [{"reason": "none", "count": 0}],
              f"{report['unclassified']} objects not classified, by reason; "
              f"{report['needs_spectrum']} below predict.min_confidence"),
        Link("predict-output", folder.resolve().as_uri(), str(folder),
             f"The classified objects (model md5 {report['model_md5'][:8]})"),
    ]  # fmt: skip
