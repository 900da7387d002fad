"""Multilabel on the simulated survey: ``impute.missing_labels`` mask against drop, on 3 seeds.

    python benchmarks/multilabel_mask_vs_drop.py                  # 3 seeds, 2000 objects, 20 epochs
    python benchmarks/multilabel_mask_vs_drop.py --seeds 1 2 --objects 800 --epochs 5

The simulated Galaxy Zoo labels are unknown more often the deeper their question sits
in the decision tree (``source.synthetic.zoo_missing_per_level``), so ``drop`` (train
only on galaxies with every label known) loses rows that ``mask`` (a NaN label adds
nothing to the loss) keeps. Per seed: query, cutouts and clean once (one test split),
then impute, balance, train and evaluate once per choice, each in its own folder, with
the library alone (no Prefect). Writes each run's test macro PR-AUC and macro ROC-AUC
(observed labels only), the train rows each choice used, and the means over seeds to
``docs/results/multilabel_mask_vs_drop.{json,md}`` through ``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from results import Table, write_results

from skysort.config import load_params
from skysort.pipeline.registry import run_stage

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("mask", "drop")
RUN_PATHS = {"labels": ".parquet", "impute_report": ".json", "train_index": ".npy",
             "balance_report": ".json", "model": ".keras", "thresholds": ".json",
             "contract": ".json", "dvclive": "", "train_report": ".json", "metrics": ".json",
             "plots": "", "predictions": ".parquet"}  # fmt: skip
"""The paths each run writes: its own under the seed's folder (the survey's are shared)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", default="fusion")
    parser.add_argument("--set", action="append", default=[], help="more dotted.key=value")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started_all = time.perf_counter()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="skysort-mask-drop-") as tmp:
        os.chdir(tmp)
        for seed in args.seeds:
            runs += _one_seed(Path(tmp) / f"seed{seed}", seed, args)
    minutes = (time.perf_counter() - started_all) / 60
    table, means = _table(runs, args.seeds)
    print(table.markdown())
    wins = sum(
        _pr(runs, seed, "mask") > _pr(runs, seed, "drop")
        for seed in args.seeds
        if None not in (_pr(runs, seed, "mask"), _pr(runs, seed, "drop"))
    )
    verdict = f"mask beats drop on macro PR-AUC on {wins} of {len(args.seeds)} seeds"
    print(verdict, f"({minutes:.1f} min)")
    write_results(
        "multilabel_mask_vs_drop",
        [table],
        title="Multilabel: mask against drop on 3 seeds",
        notes=[
            f"{args.objects} simulated objects per seed, task multilabel, {args.model}, up to "
            f"{args.epochs} epochs; the Galaxy Zoo labels' per-question missingness at its "
            "default (source.synthetic.zoo_missing_per_level). Each seed draws its own survey "
            "and test split; mask and drop share it. Scores are on the test split's observed "
            "labels; the macro means average the labels with both outcomes among them.",
            f"{verdict}. Whole run: {minutes:.1f} minutes.",
        ],
        figures={"runs": runs, "means": means, "minutes": round(minutes, 2)},
    )


def _one_seed(folder: Path, seed: int, args: argparse.Namespace) -> list[dict]:
    base = [
        "task=multilabel",
        f"seed={seed}",
        f"query.n_objects={args.objects}",
        f"train.epochs={args.epochs}",
        f"train.model={args.model}",
        *args.set,
    ]
    folder.mkdir(parents=True)
    os.chdir(folder)  # the survey's files at their default paths, one folder per seed
    params = load_params(ROOT / "params.yaml", base)
    started = time.perf_counter()
    for stage in ("query", "cutouts", "clean"):
        run_stage(stage, params)
    print(f"seed {seed}: survey {time.perf_counter() - started:.1f} s")
    out = []
    for strategy in STRATEGIES:
        where = folder / strategy
        p = load_params(ROOT / "params.yaml", [
            *base, f"impute.missing_labels={strategy}",
            *(f"paths.{k}={where}/{k}{suffix}" for k, suffix in RUN_PATHS.items()),
        ])  # fmt: skip
        started = time.perf_counter()
        run_stage("impute", p)
        balance = run_stage("balance", p)
        trained = run_stage("train", p)
        metrics = run_stage("evaluate", p)
        seconds = time.perf_counter() - started
        out.append({
            "seed": seed, "missing_labels": strategy,
            "pr_auc_macro": metrics.get("pr_auc_macro"),
            "roc_auc_macro": metrics.get("roc_auc_macro"),
            "per_label_pr_auc": {n: v.get("pr_auc") for n, v in metrics["per_label"].items()},
            "train_rows": balance["rows_before"],
            "train_rows_dropped": balance["train_rows_dropped_for_missing_labels"],
            "best_epoch": trained.get("best_epoch"), "epochs_run": trained.get("epochs_run"),
            "seconds": round(seconds, 1),
        })  # fmt: skip
        print(f"  {strategy}: macro PR-AUC {out[-1]['pr_auc_macro']}, "
              f"{out[-1]['train_rows']} train rows, {seconds:.1f} s")  # fmt: skip
    return out


def _pr(runs: list[dict], seed: int, strategy: str) -> float | None:
    return next(r["pr_auc_macro"] for r in runs
                if r["seed"] == seed and r["missing_labels"] == strategy)  # fmt: skip


def _table(runs: list[dict], seeds: list[int]) -> tuple[Table, dict]:
    head = ["seed", "mask macro PR-AUC", "drop macro PR-AUC", "mask - drop",
            "mask macro ROC-AUC", "drop macro ROC-AUC", "train rows mask / drop"]  # fmt: skip
    rows, means = [], {}

    def get(seed: int, strategy: str) -> dict:
        return next(r for r in runs if r["seed"] == seed and r["missing_labels"] == strategy)

    for seed in seeds:
        m, d = get(seed, "mask"), get(seed, "drop")
        diff = (None if None in (m["pr_auc_macro"], d["pr_auc_macro"])
                else m["pr_auc_macro"] - d["pr_auc_macro"])  # fmt: skip
        rows.append([seed, m["pr_auc_macro"], d["pr_auc_macro"], diff, m["roc_auc_macro"],
                     d["roc_auc_macro"], f"{m['train_rows']} / {d['train_rows']}"])  # fmt: skip
    for k, key in ((1, "mask_pr"), (2, "drop_pr"), (3, "diff_pr"), (4, "mask_roc"),
                   (5, "drop_roc")):  # fmt: skip
        values = [r[k] for r in rows if r[k] is not None]
        means[key] = statistics.fmean(values) if values else None
    rows.append(["mean", means["mask_pr"], means["drop_pr"], means["diff_pr"],
                 means["mask_roc"], means["drop_roc"], ""])  # fmt: skip
    return Table(head, rows), means


if __name__ == "__main__":
    main()
