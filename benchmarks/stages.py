"""Time each stage on the simulated survey and print the figures.

    python benchmarks/stages.py                       # defaults: 2000 objects, 3 epochs
    python benchmarks/stages.py --objects 5000 --epochs 2

Runs in a temporary directory with the library alone (no Prefect), so the figures
are the stages' own cost. Prints seconds per stage and throughputs, and writes
them to ``docs/results/stages.md`` (and ``.json``) through ``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from results import Table, write_results

from skysort.config import load_params
from skysort.data.atomic import read_json
from skysort.pipeline.registry import NAMES as STAGES
from skysort.pipeline.registry import run_stage

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    params = load_params(
        ROOT / "params.yaml",
        [
            f"query.n_objects={args.objects}",
            f"train.epochs={args.epochs}",
            f"train.patience={args.epochs}",
        ],
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory(prefix="skysort-bench-") as tmp:
        os.chdir(tmp)
        print(f"{args.objects} simulated objects, {args.epochs} epochs, {os.cpu_count()} CPUs")
        timings = []
        for stage in STAGES:
            started = time.perf_counter()
            report = run_stage(stage, params)
            seconds = time.perf_counter() - started
            extra = ""
            if stage == "cutouts":
                extra = f"{args.objects / seconds:8.0f} cutouts/s"
            elif stage == "clean":
                extra = f"{report['kept_rows'] / seconds:8.0f} images decoded+packed/s"
            elif stage == "train":
                rows = report["train_rows"]
                extra = (
                    f"{rows / report['seconds_per_epoch']:8.0f} samples/s after the first "
                    f"epoch ({report['first_epoch_seconds']:.1f} s)"
                )
            elif stage == "evaluate":
                extra = f"accuracy {report['accuracy']:.3f} macro-F1 {report['f1_macro']:.3f}"
            print(f"{stage:10s} {seconds:7.2f} s  {extra}")
            timings.append([stage, round(seconds, 2), extra.strip()])
        facts = {
            k: v
            for k, v in read_json(params.paths.train_report).items()
            if k in ("parameters", "seconds_per_epoch", "best_epoch")
        }
        print("train report:", facts)
        write_results(
            "stages",
            [Table(["stage", "seconds", "throughput"], timings, digits=2)],
            title="Seconds per stage",
            notes=[
                f"{args.objects} simulated objects, {args.epochs} epochs; the library alone "
                f"(no Prefect), in a temporary folder. Train report: {facts}."
            ],
            figures={"objects": args.objects, "epochs": args.epochs, "train": facts},
        )


if __name__ == "__main__":
    main()
