"""Multilabel study on the simulated survey: impute vs mask vs drop vs a gradient-boosting baseline.

    python benchmarks/multilabel.py                        # 2000 objects, up to 40 epochs
    python benchmarks/multilabel.py --objects 1000 --epochs 10 --model image

Runs query, cutouts and clean once (one fixed test split), the per-label baselines
on the photometry, then impute, balance, train and evaluate once per
``impute.missing_labels`` choice, each in its own folder, with the library alone (no
Prefect). Prints each label's test ROC-AUC and PR-AUC (average precision) per run,
and the macro means; writes the table to ``docs/results/multilabel.md`` (and
``.json``) through ``benchmarks/results.py`` too.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from results import Table, write_results

from skysort.config import load_params
from skysort.pipeline.registry import run_stage

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("impute", "mask", "drop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--model", default="fusion")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--set", action="append", default=[], help="more dotted.key=value")
    args = parser.parse_args()
    base = [
        "task=multilabel",
        f"seed={args.seed}",
        f"query.n_objects={args.objects}",
        f"train.epochs={args.epochs}",
        f"train.model={args.model}",
        "baselines.models=[gboost]",
        *args.set,
    ]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory(prefix="skysort-multilabel-") as tmp:
        os.chdir(tmp)
        params = load_params(ROOT / "params.yaml", base)
        print(f"{args.objects} simulated objects, {args.model}, up to {args.epochs} epochs")
        for stage in ("query", "cutouts", "clean", "impute", "balance", "baselines"):
            started = time.perf_counter()
            report = run_stage(stage, params)
            print(f"  {stage:10s} {time.perf_counter() - started:6.1f} s")
        splits = report  # baselines report
        runs = {"gboost (photometry)": splits["models"]["gboost"]}
        for strategy in STRATEGIES:
            folder = Path(tmp) / strategy
            p = load_params(ROOT / "params.yaml", [
                *base,
                f"impute.missing_labels={strategy}",
                f"paths.labels={folder}/labels.parquet",
                f"paths.impute_report={folder}/impute.json",
                f"paths.train_index={folder}/train_index.npy",
                f"paths.balance_report={folder}/balance.json",
                f"paths.model={folder}/model.keras",
                f"paths.thresholds={folder}/thresholds.json",
                f"paths.dvclive={folder}/dvclive",
                f"paths.train_report={folder}/train.json",
                f"paths.metrics={folder}/metrics.json",
                f"paths.plots={folder}/plots",
                f"paths.predictions={folder}/predictions.parquet",
            ])  # fmt: skip
            started = time.perf_counter()
            for stage in ("impute", "balance", "train"):
                stage_report = run_stage(stage, p)
            epochs = f"{stage_report['best_epoch']}/{stage_report['epochs_run']}"
            runs[f"{args.model} {strategy}"] = run_stage("evaluate", p)
            print(f"  {strategy:10s} {time.perf_counter() - started:6.1f} s (best epoch {epochs})")
        table = _table(runs, params.data.labels)
        print(table.markdown())
        write_results(
            "multilabel",
            [table],
            title="Multilabel: impute, mask, drop, gradient boosting",
            notes=[
                f"{args.objects} simulated objects (seed {args.seed}), {args.model}, up to "
                f"{args.epochs} epochs; test split: {splits['test_rows']} objects. Each cell "
                "is a label's test ROC-AUC / PR-AUC (average precision)."
            ],
            figures={"runs": runs},
        )


def _table(runs: dict, labels: tuple[str, ...]) -> Table:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    head = ["run", *[f"{n} ROC / PR" for n in labels], "macro ROC-AUC", "macro PR-AUC"]
    rows = []
    for name, m in runs.items():
        cells = [f"{f(m['per_label'][n]['roc_auc'])} / {f(m['per_label'][n]['pr_auc'])}"
                 for n in labels]  # fmt: skip
        rows.append([name, *cells, f(m["roc_auc_macro"]), f(m["pr_auc_macro"])])
    positives = next(iter(runs.values()))["per_label"]
    rows.append(
        ["test positives / known"]
        + [f"{positives[n]['positives']} / {positives[n]['n']}" for n in labels]
        + ["", ""]
    )
    return Table(head, rows)


if __name__ == "__main__":
    main()
