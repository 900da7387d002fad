"""What a person sees of the task-dependent stages' reports (impute, balance, baselines, evaluate).

Each function is ``(report, params) -> artifacts`` and asks the report's target for
the rows; plain data, turned into Prefect artifacts by ``skysort.tasks.artifacts``.
"""

from __future__ import annotations

from typing import Any

from skysort import targets
from skysort.config import Params
from skysort.pipeline.stage import Artifact, Images, Markdown, Picture, Table

Report = dict[str, Any]

EXPLAIN_DIR = "explain"
"""Where evaluate's explanation pictures go, under ``paths.plots``."""

PLOTS = (
    ("confusion.png", "Confusion"),
    ("roc.png", "ROC curves"),
    ("pr.png", "Precision-recall curves"),
    ("training.png", "Training curves"),
    ("gallery.png", "Test cutouts, observed and predicted"),
    ("importance.png", "Feature importance (a model with trees)"),
)
"""Evaluate's pictures in ``paths.plots``, in the order the UI shows them, with captions."""


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
    """The metrics, the plots as pictures, and the explanations (if any)."""
    text, caption = targets.get(report["task"]).metrics_summary(report)
    folder = params.paths.plots
    pictures = tuple(
        Picture(what, folder / name) for name, what in PLOTS if (folder / name).exists()
    )
    intro = f"# Plots\n\nThis run's pictures; full size in [{folder}]({folder.resolve().as_uri()})."
    return [
        Markdown("evaluate-metrics", text, "Test metrics"),
        Images("evaluate-plots", intro, pictures, caption),
        *_explanation_artifacts(report, params),
    ]


def _explanation_artifacts(report: Report, params: Params) -> list[Artifact]:
    """The explanation PNGs as pictures, one per explained object; none when off."""
    ex = report.get("explanations") or {}
    if ex.get("skipped"):
        text = f"# Explanations\n\nNone: {ex['skipped']}."
        return [Markdown("evaluate-explanations", text, "Explanations (Grad-CAM, LIME)")]
    if not ex.get("objects"):
        return []
    folder = params.paths.plots / EXPLAIN_DIR
    intro = (
        "# Explanations: where the model looked\n\n"
        f"{ex['objects']} test objects, LIME with {ex['lime_samples']} perturbed cutouts "
        f"each, {ex['seconds_per_object']:.2f} s per object. Each picture, per explained "
        "class or positive label: the cutout, the Grad-CAM heatmap over it, and the "
        "superpixels LIME found raising that output (the rest dimmed). All of them: "
        f"[{folder}]({folder.resolve().as_uri()})."
    )
    pictures = tuple(
        Picture(f"{objid}: {', '.join(what)}", params.paths.plots / name)
        for (objid, what), name in zip(ex["explained"].items(), ex["files"])
    )
    return [Images("evaluate-explanations", intro, pictures, "Explanations (Grad-CAM, LIME)")]
