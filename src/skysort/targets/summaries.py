"""What a person sees of the task-dependent stages' reports (impute, balance, baselines, evaluate).

Each function is ``(report, params) -> artifacts`` and asks the report's target for
the rows; plain data, turned into Prefect artifacts by ``skysort.tasks.artifacts``.
"""

from __future__ import annotations

from typing import Any

from skysort import targets
from skysort.config import Params
from skysort.pipeline.stage import Artifact, Link, Markdown, Table

Report = dict[str, Any]

EXPLAIN_DIR = "explain"
"""Where evaluate's explanation pictures go, under ``paths.plots``."""


def impute_summary(report: Report, params: Params) -> list[Artifact]:
    return targets.get(report["task"]).impute_summary(report)


def balance_summary(report: Report, params: Params) -> list[Artifact]:
    return targets.get(report["task"]).balance_summary(report)


def baselines_summary(report: Report, params: Params) -> list[Artifact]:
    if not report["models"]:
        return [Table("baselines-metrics", [{"model": "none", "note": report["skipped"]}],
                      "Classical baselines: none")]  # fmt: skip
    target = targets.get(report["task"])
    rows = [
        {"model": name, **target.baseline_row(m), "fit_seconds": m["fit_seconds"]}
        for name, m in report["models"].items()
    ]
    return [Table("baselines-metrics", rows, "Classical baselines on the test split")]


def evaluate_summary(report: Report, params: Params) -> list[Artifact]:
    """The metrics, a link to the plots folder, and the explanations (if any)."""
    text, plots = targets.get(report["task"]).metrics_summary(report)
    folder = params.paths.plots
    return [
        Markdown("evaluate-metrics", text, "Test metrics"),
        Link("evaluate-plots", folder.resolve().as_uri(), str(folder), plots),
        *_explanation_artifacts(report, params),
    ]


def _explanation_artifacts(report: Report, params: Params) -> list[Artifact]:
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
