"""What each stage shows in the Prefect UI, built from the report the stage returns."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from skysort.config import Params


def _counts_table(counts: dict[str, int], label: str) -> list[dict[str, Any]]:
    total = sum(counts.values()) or 1
    return [{label: k, "count": v, "share": f"{100 * v / total:.1f} %"} for k, v in counts.items()]


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def publish(stage: str, report: dict[str, Any], params: Params) -> None:
    """Create the stage's artifacts (keys are ``<stage>-<what>``: lowercase and dashes)."""
    if stage == "query":
        create_table_artifact(
            _counts_table(report["class_counts"], "class"),
            key="query-class-mix",
            description=f"{report['rows']} objects from {report['source']}",
        )
    elif stage == "cutouts":
        create_table_artifact(
            _counts_table(report["status_counts"], "status"),
            key="cutouts-status",
            description="Cutouts by final status",
        )
    elif stage == "clean":
        create_table_artifact(
            _counts_table(report["dropped_by_reason"], "reason")
            or [{"reason": "none", "count": 0}],
            key="clean-dropped",
            description=f"Kept {report['kept_rows']} of {report['input_rows']} rows; dropped by reason",
        )
        create_table_artifact(
            _counts_table(report["split_counts"], "split"),
            key="clean-splits",
            description="Rows per split",
        )
    elif stage == "impute":
        hold = report.get("holdout", {})
        md = [
            "# Label imputation (self-training)",
            "",
            "| label source | rows |",
            "| --- | --- |",
            *[f"| {k} | {v} |" for k, v in report["label_source_counts"].items()],
            "",
            f"Masked hold-out accuracy: **{_fmt(hold.get('accuracy', 'n/a'))}** "
            f"on {hold.get('hidden', 0)} hidden labels.",
        ]
        create_markdown_artifact("\n".join(md), key="impute-report", description="Imputation")
    elif stage == "balance":
        classes = sorted(set(report["before"]) | set(report["after"]))
        create_table_artifact(
            [
                {
                    "class": c,
                    "before": report["before"].get(c, 0),
                    "after": report["after"].get(c, 0),
                }
                for c in classes
            ],
            key="balance-class-counts",
            description=f"Train class counts ({report['method']})",
        )
    elif stage == "baselines":
        create_table_artifact(
            [
                {
                    "model": name,
                    "accuracy": _fmt(m["accuracy"]),
                    "f1_macro": _fmt(m["f1_macro"]),
                    **{f"f1_{c}": _fmt(v["f1"]) for c, v in m["per_class"].items()},
                    "fit_seconds": m["fit_seconds"],
                }
                for name, m in report["models"].items()
            ],
            key="baselines-metrics",
            description="Classical baselines on the test split",
        )
    elif stage == "train":
        md = [
            "# Training",
            "",
            "| | |",
            "| --- | --- |",
            *[
                f"| {k} | {_fmt(report[k])} |"
                for k in (
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
            ],
        ]
        create_markdown_artifact("\n".join(md), key="train-summary", description="Training run")
    elif stage == "evaluate":
        per_class = report["per_class"]
        md = [
            "# Test metrics (observed labels only)",
            "",
            f"accuracy **{report['accuracy']:.4f}**, macro-F1 **{report['f1_macro']:.4f}**, "
            f"ROC-AUC {_fmt(report.get('roc_auc_macro'))}, n = {report['n']}",
            "",
            "| class | precision | recall | F1 | support |",
            "| --- | --- | --- | --- | --- |",
            *[
                f"| {c} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |"
                for c, v in per_class.items()
            ],
        ]
        create_markdown_artifact("\n".join(md), key="evaluate-metrics", description="Test metrics")
        plots_dir = params.paths.plots.resolve()
        create_link_artifact(
            plots_dir.as_uri(),
            link_text=str(params.paths.plots),
            key="evaluate-plots",
            description="Confusion matrix, ROC/PR, gallery",
        )
