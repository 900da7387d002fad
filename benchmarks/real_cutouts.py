"""Image models on the real SDSS cutouts, through ``source.kind: files``.

Takes a class-balanced subset (``--objects``) of the shared real cutouts
(``--cutouts``: 128 x 128 gri JPEGs with ``labels.csv``: ``objid, class, image``),
computes a few hand-made image features per object (radial light profile per band,
central concentration, colours) and writes them as the feature columns of a catalog
CSV in a temporary working directory. The pipeline's own stages then run there on
that catalog with ``source.kind: files`` (``images: column``): ``query``, ``cutouts``,
``clean`` (stratified, seeded split: test 20 %, val 15 %), ``impute``, ``balance``,
``baselines`` (``gboost`` only: gradient boosting on the hand features, the baseline)
and ``train`` + ``evaluate`` with ``train.model: image`` and the small CNN, scored
on the same held-out test rows.

    python benchmarks/real_cutouts.py [--cutouts PATH] [--objects 6000] [--epochs 60]
        [--image-size 128] [--center-crop 32] [--splits 1] [--models image ensemble]
        [--page real_cutouts] [--set train.lr_schedule=constant ...]

``--models`` lists the ``train.model`` values scored on each split (``train`` and
``evaluate`` run again for each, on the same test rows); ``ensemble`` is the pipeline's
choice made on validation: the fusion net mixed with the better tree model on val.
``--splits N`` repeats on N subsets and splits (seeds ``--seed`` onwards) and adds the
mean, its spread and the paired gap of each model to the hand-feature baseline.

``--center-crop N`` (``train.center_crop``) feeds the CNN the central N x N pixels of
each cutout (0 = the whole cutout); at ``--image-size 128`` the cutouts keep their
native scale (0.4 arcsec / pixel), so 32 pixels are the central 12.8 arcsec.
The CNN is ``small_cnn`` with two 3x3 convs per block, a flattened last map (where
the light is matters for a centred object) and a cosine learning-rate schedule;
``--set`` passes any ``params.yaml`` override (``train.pooling=avg`` ...). Prints one table: model, accuracy,
macro-F1 and the F1 of each class per split, and writes it to
``docs/results/<page>.md`` (and ``.json``) through ``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from results import Table, write_results

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CUTOUTS = REPO / "../shared/data/sdss_cutouts"
CLASSES = ("GALAXY", "QSO", "STAR")
RADII = (2, 4, 8, 16)  # pixels (0.4 arcsec each) of the radial profile
STAGES = ("query", "cutouts", "clean", "impute", "balance", "baselines", "train", "evaluate")


def hand_features(path: Path) -> dict[str, float]:
    """Radial light profile per band, central concentration and colours of one cutout."""
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    h, w, _ = img.shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    sky = np.median(img[r > min(h, w) * 0.4], axis=0)
    flux = img - sky
    out: dict[str, float] = {}
    enclosed: dict[int, np.ndarray] = {}
    for radius in RADII:
        enclosed[radius] = flux[r <= radius].sum(axis=0)
    for b, band in enumerate(("i", "r", "g")):  # gri JPEG: R = i, G = r, B = g
        for radius in RADII:
            out[f"prof_{band}_{radius}"] = float(np.log1p(max(enclosed[radius][b], 0.0)))
        out[f"peak_{band}"] = float(flux[r <= 2, b].mean())
    total = enclosed[RADII[-1]].sum()
    out["conc_4_16"] = float(enclosed[4].sum() / total) if total > 0 else 0.0
    out["conc_2_8"] = float(enclosed[2].sum() / max(enclosed[8].sum(), 1e-3))
    core = np.maximum(enclosed[4], 1e-3)
    out["col_g_r"] = float(-2.5 * np.log10(core[2] / core[1]))
    out["col_r_i"] = float(-2.5 * np.log10(core[1] / core[0]))
    out["sky_std"] = float(img[r > min(h, w) * 0.4].std())
    return out


def build_workdir(
    cutouts: Path, work: Path, objects: int, seed: int
) -> tuple[pd.DataFrame, list[str]]:
    """Write the catalog (hand features as columns) and the images the pipeline reads."""
    labels = pd.read_csv(cutouts / "labels.csv", dtype={"objid": str})
    per_class = objects // len(CLASSES)
    subset = pd.concat(
        labels[labels["class"] == c].sample(n=per_class, random_state=seed) for c in CLASSES
    ).reset_index(drop=True)
    feats = pd.DataFrame([hand_features(cutouts / p) for p in subset["image"]])
    catalog = pd.concat([subset, feats], axis=1)
    images = work / "data/external/images"
    images.parent.mkdir(parents=True, exist_ok=True)
    images.symlink_to(cutouts.resolve(), target_is_directory=True)
    catalog.to_csv(work / "data/external/catalog.csv", index=False)
    return catalog, list(feats.columns)


MODEL_NAMES = {
    "image": "small_cnn (image only)",
    "ensemble": "pipeline ensemble",
    "gboost": "pipeline gboost",
    "forest": "pipeline forest",
    "fusion": "fusion net",
}


def pipeline_overrides(args: argparse.Namespace, seed: int, features: list[str]) -> list[str]:
    """The ``params.yaml`` overrides that point the pipeline at the working directory's
    catalog and images, with the CNN recipe and ``--set`` on top."""
    return [
        f"seed={seed}",
        "source.kind=files",
        "source.files.id_column=objid",
        "source.files.label_column=class",
        "source.files.images=column",
        "source.files.image_column=image",
        "source.files.resize=stretch",
        "paths.source_catalog=data/external/catalog.csv",
        "paths.source_images=data/external/images",
        f"data.features=[{','.join(features)}]",
        f"data.classes=[{','.join(CLASSES)}]",
        f"data.image_size={args.image_size}",
        "impute.enabled=false",
        "clean.min_pixel_std=0.5",
        "baselines.models=[gboost]",
        "baselines.cv_folds=2",
        "train.image_encoder=small_cnn",
        f"train.epochs={args.epochs}",
        f"train.center_crop={args.center_crop}",
        "train.convs_per_block=2",
        "train.pooling=flatten",
        "train.lr_schedule=cosine",
        "train.patience=20",
        *args.set,
    ]


def run_split(args: argparse.Namespace, seed: int) -> tuple[dict[str, dict], dict[str, str], dict]:
    """One class-balanced subset and split: the baseline and each ``--models`` entry's test scores.

    The data stages run once; ``train`` and ``evaluate`` run again for each model, so
    every model is scored on the same test rows.
    """
    from skysort.config import load_params
    from skysort.data.atomic import read_json
    from skysort.pipeline.registry import run_stage

    cutouts = args.cutouts.resolve()
    work = (args.keep / f"seed{seed}") if args.keep else Path(
        tempfile.mkdtemp(prefix="real_cutouts_"))  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _, features = build_workdir(cutouts, work, args.objects, seed)
    overrides = pipeline_overrides(args, seed, features)
    prep_s = time.perf_counter() - started
    scores: dict[str, dict] = {}
    notes: dict[str, str] = {}
    cwd = Path.cwd()
    os.chdir(work)
    try:
        for i, model in enumerate(args.models):
            params = load_params(REPO / "params.yaml", [*overrides, f"train.model={model}"])
            for stage in STAGES if i == 0 else ("train", "evaluate"):
                t0 = time.perf_counter()
                run_stage(stage, params)
                print(f"  seed {seed} {model:<8} {stage:<9} {time.perf_counter() - t0:7.1f} s",
                      flush=True)  # fmt: skip
            if i == 0:
                scores["baseline"] = read_json(params.paths.baselines_report)["models"]["gboost"]
                clean = read_json(params.paths.clean_report)
            scores[model] = read_json(params.paths.metrics)
            report = read_json(params.paths.train_report)
            if "ensemble" in report:
                mix = report["ensemble"]
                notes[model] = (f"{report['net_model']} net + {mix['tree']}, net weight "
                                f"{mix['weight_net']:.2f} (fitted on val)")  # fmt: skip
            elif report.get("best_epoch"):
                notes[model] = f"best epoch {report['best_epoch']}/{report['epochs_run']}"
    finally:
        os.chdir(cwd)
    info = {"test_n": scores[args.models[0]]["n"], "dropped_rows": clean["dropped_rows"],
            "features_s": round(prep_s, 1), "work": str(work)}  # fmt: skip
    return scores, notes, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cutouts", type=Path, default=DEFAULT_CUTOUTS)
    ap.add_argument("--objects", type=int, default=6000, help="class-balanced subset size")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--image-size", type=int, default=128, help="128 = native scale")
    ap.add_argument(
        "--center-crop", type=int, default=32, help="train.center_crop: central pixels (0 = all)"
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--splits", type=int, default=1,
                    help="repeat on this many subsets and splits (seeds --seed onwards)")  # fmt: skip
    ap.add_argument("--models", nargs="+", default=["image"], choices=sorted(MODEL_NAMES),
                    help="train.model values to score (the first runs the data stages)")  # fmt: skip
    ap.add_argument("--page", default="real_cutouts", help="docs/results page name")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--keep", type=Path, default=None, help="working directory to keep")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    names = {"baseline": "gboost on hand features", **MODEL_NAMES}
    order = ["baseline", *args.models]
    rows, runs = [], []
    for seed in range(args.seed, args.seed + args.splits):
        scores, notes, info = run_split(args, seed)
        runs.append({"seed": seed, "scores": scores, "notes": notes, **info})
        print(f"\nseed {seed}: test n = {info['test_n']}, dropped {info['dropped_rows']}")
        for key in order:
            s = scores[key]
            per = [s["per_class"][c]["f1"] for c in CLASSES]
            rows.append([seed, names[key], s["accuracy"], s["f1_macro"], *per, notes.get(key, "")])
            print(f"  {names[key]:<26} {s['accuracy']:.4f} {s['f1_macro']:.4f}", flush=True)
    tables = [Table(["split seed", "model", "accuracy", "macro-F1",
                     *(f"F1 {c}" for c in CLASSES), "note"], rows)]  # fmt: skip
    if args.splits > 1:
        summary = []
        for key in order:
            acc = np.array([r["scores"][key]["accuracy"] for r in runs])
            gap = acc - np.array([r["scores"]["baseline"]["accuracy"] for r in runs])
            wins = int((gap >= 0).sum()) if key != "baseline" else None
            summary.append([names[key], acc.mean(), acc.std(ddof=1),
                            None if key == "baseline" else gap.mean(),
                            None if wins is None else f"{wins} of {len(runs)}"])  # fmt: skip
        tables.append(Table(["model", "mean accuracy", "sd", "mean paired gap to the baseline",
                             "splits at or above the baseline"], summary))  # fmt: skip
    crop = f"central {args.center_crop} px" if args.center_crop else "whole field"
    write_results(
        args.page,
        tables,
        title=f"Image models against hand-made features on {args.objects} real cutouts",
        notes=[
            f"{args.objects} objects per split, class-balanced ({args.image_size} px cutouts, "
            f"the CNN sees the {crop}), up to {args.epochs} epochs; test split "
            f"{runs[0]['test_n']} objects (20 %), val 15 %; each split seed draws its own "
            "subset and split, and every model of a split is scored on the same test rows. "
            "The baseline is the baselines stage's gradient boosting on the hand features "
            "(radial profile per band, concentration, colours, sky noise); the pipeline "
            "ensemble is `train.model: ensemble`: the fusion net (cutout + hand features) "
            "mixed with the tree model (LightGBM or a forest on the hand features and the "
            "cutouts' morphology) that does better on val, the net's weight fitted on val."
        ],
        figures={"runs": runs},
    )


if __name__ == "__main__":
    main()
