"""Learning curve of the image CNN on the real SDSS cutouts: data- or capacity-limited?

The data stages run once on a class-balanced subset of the shared real cutouts
(``--objects``, as in ``benchmarks/real_cutouts.py``: hand features in the catalog,
stratified seeded split, test 20 %, val 15 %). Then, for each size in ``--sizes``,
the train split is cut to that many objects (a seeded random draw of the train rows,
each smaller draw inside the larger ones) and ``train`` + ``evaluate`` run with the
image CNN and with the tree model on the hand features and the cutouts' morphology
(``train.model: gboost``). Validation and test rows stay the same for every size,
so the curve moves with the training set alone.

    python benchmarks/learning_curve.py [--objects 6000] [--sizes 500 1000 2000 all]
        [--epochs 60] [--models image gboost] [--set KEY=VALUE ...]

Writes ``docs/results/learning_curve.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from real_cutouts import CLASSES, DEFAULT_CUTOUTS, build_workdir, pipeline_overrides
from results import Table, write_results

REPO = Path(__file__).resolve().parents[1]
DATA_STAGES = ("query", "cutouts", "clean", "impute", "balance")
NAMES = {"image": "small_cnn (image only)", "gboost": "pipeline gboost (hand features + morphology)",
         "forest": "pipeline forest", "fusion": "fusion net", "ensemble": "pipeline ensemble"}  # fmt: skip


def nested_draws(rows: np.ndarray, sizes: list[int], seed: int) -> dict[int, np.ndarray]:
    """For each size, that many of ``rows`` (sorted); each draw holds every smaller one."""
    order = np.random.default_rng(seed).permutation(rows)
    return {n: np.sort(order[:n]) for n in sizes}


def dihedral_tta_accuracy(params) -> tuple[float, float]:
    """Test accuracy of the saved model without and with test-time augmentation.

    The augmented probabilities are the mean over the 8 flips and quarter turns of each
    cutout (the sky has no up or left), scored on the evaluate stage's test rows.
    """
    from skysort.model.inputs import load_survey
    from skysort.model.saved import load_saved
    from skysort.targets.base import gather

    p = params.paths
    survey = load_survey(p.dataset, p.images, p.labels, params.data, params.task,
                         params.train.colour_inputs)  # fmt: skip
    test = survey.scored_rows("test")
    saved = load_saved(p.model)
    images, feats, y = gather(survey.images, test), survey.features[test], survey.y[test]
    views = []
    for turns in range(4):
        turned = np.rot90(images, turns, axes=(1, 2))
        for flipped in (turned, turned[:, :, ::-1]):
            views.append(saved.predict_proba(np.ascontiguousarray(flipped), feats, 256))
    plain = float((views[0].argmax(1) == y).mean())
    return plain, float((np.mean(views, axis=0).argmax(1) == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cutouts", type=Path, default=DEFAULT_CUTOUTS)
    ap.add_argument("--objects", type=int, default=6000, help="class-balanced subset size")
    ap.add_argument("--sizes", nargs="+", default=["500", "1000", "2000", "all"],
                    help="training-set sizes (objects); 'all' = the whole train split")  # fmt: skip
    ap.add_argument("--models", nargs="+", default=["image", "gboost"], choices=sorted(NAMES))
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--center-crop", type=int, default=32)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--keep", type=Path, default=None, help="working directory to keep")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from skysort.config import load_params
    from skysort.data import atomic
    from skysort.data.atomic import read_json
    from skysort.pipeline.registry import run_stage

    work = args.keep or Path(tempfile.mkdtemp(prefix="learning_curve_"))
    work.mkdir(parents=True, exist_ok=True)
    _, features = build_workdir(args.cutouts.resolve(), work, args.objects, args.seed)
    overrides = pipeline_overrides(args, args.seed, features)
    rows, runs = [], []
    cwd = Path.cwd()
    os.chdir(work)
    try:
        params = load_params(REPO / "params.yaml", overrides)
        for stage in DATA_STAGES:
            run_stage(stage, params)
        full = np.unique(np.load(params.paths.train_index))
        sizes = sorted({len(full) if s == "all" else min(int(s), len(full)) for s in args.sizes})
        draws = nested_draws(full, sizes, args.seed)
        for n in sizes:
            atomic.write_npy(params.paths.train_index, draws[n])
            for model in args.models:
                p = load_params(REPO / "params.yaml", [*overrides, f"train.model={model}"])
                t0 = time.perf_counter()
                run_stage("train", p)
                run_stage("evaluate", p)
                seconds = time.perf_counter() - t0
                metrics = read_json(p.paths.metrics)
                report = read_json(p.paths.train_report)
                note = (f"best epoch {report['best_epoch']}/{report['epochs_run']}"
                        if report.get("best_epoch") else "")  # fmt: skip
                if model == "image":
                    plain, tta = dihedral_tta_accuracy(p)
                    assert abs(plain - metrics["accuracy"]) < 1e-9, (plain, metrics["accuracy"])
                    note += f"; with the 8 dihedral views averaged: {tta:.4f}"
                per = [metrics["per_class"][c]["f1"] for c in CLASSES]
                rows.append([n, NAMES[model], metrics["accuracy"], metrics["f1_macro"], *per,
                             round(seconds), note])  # fmt: skip
                runs.append({"train_objects": n, "model": model, "accuracy": metrics["accuracy"],
                             "f1_macro": metrics["f1_macro"], "seconds": round(seconds, 1),
                             "test_n": metrics["n"], "note": note})  # fmt: skip
                print(f"  {n:>5} {model:<8} {metrics['accuracy']:.4f} {seconds:6.0f} s", flush=True)
    finally:
        os.chdir(cwd)
    write_results(
        "learning_curve",
        [
            Table(
                [
                    "train objects",
                    "model",
                    "test accuracy",
                    "macro-F1",
                    *(f"F1 {c}" for c in CLASSES),
                    "train + evaluate s",
                    "note",
                ],
                rows,
            )
        ],  # fmt: skip
        title="Learning curve of the image CNN on real cutouts",
        notes=[
            f"{args.objects} class-balanced real cutouts, split once (seed {args.seed}); the "
            f"train split ({len(full)} objects) is cut to each size by a nested seeded draw, "
            f"while the {runs[0]['test_n']} test and the validation objects stay the same. "
            f"The CNN is the recipe of `benchmarks/real_cutouts.py` (small_cnn, central "
            f"{args.center_crop} px, cosine schedule, up to {args.epochs} epochs, patience 20). "
            "With the shared set's 6,000 cutouts the largest training set is the whole train "
            "split, not 6,000. The CNN's note also gives its test accuracy with test-time "
            "augmentation: the mean probabilities over the 8 flips and quarter turns of each "
            "cutout (measured here on the saved model; the pipeline does not do it)."
        ],
        figures={"runs": runs, "train_split": int(len(full))},
    )


if __name__ == "__main__":
    main()
