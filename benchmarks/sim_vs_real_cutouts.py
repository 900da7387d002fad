"""Do the simulated cutouts look like real ones? Image statistics, a picture, and sim -> real.

Renders ``--sim-per-class`` simulated objects of each class with the project's own renderer
(``write_synthetic_cutouts``: the cutouts stage's JPEG files, no faults), at the real
cutouts' size and pixel scale (128 x 128 at 0.4 arcsec / pixel), deterministically from
``--seed``, and compares them with a class-balanced sample of the shared real SDSS
cutouts (``--cutouts``, 128 x 128 gri JPEGs with ``labels.csv``):

1. a table of per-class image statistics, simulated against real: sky level and noise,
   the central peak, the light profile of point sources, JPEG quality and size, and
   neighbours (other sources in the field);
2. a picture of both side by side (``--png``; rows are classes, simulated on the left);
3. the small CNN (the project's ``build_model``, ``train.model: image``) trained on
   simulated cutouts only and scored on real ones, and for reference the same CNN
   trained and scored on real cutouts (a stratified split as ``clean`` makes it).

    python benchmarks/sim_vs_real_cutouts.py [--cutouts PATH] [--sim-per-class 1500]
        [--real-per-class 1000] [--stats-per-class 500] [--epochs 30] [--crop 32]
        [--seeds 42 43] [--png docs/img/sim_vs_real_cutouts.png] [--no-train]
        [--save-backbone PATH] [--asinh-q Q --page NAME]

Each seed draws its own simulated and real samples and splits and trains both CNNs
again; the statistics and the picture are of the first seed's samples. ``--asinh-q``
renders with another asinh softening than the renderer's ``ASINH_Q``, to measure the
stretch's effect; give it its own ``--page`` (no picture is drawn unless ``--png``).

The CNN is ``real_cutouts.py``'s recipe (two 3x3 convs per block, the last map
flattened), reads the central ``--crop`` pixels at native scale (as ``real_cutouts.py
--center-crop``) and uses one TensorFlow thread. ``--save-backbone PATH`` keeps the
conv layers trained on simulated cutouts as a ``.weights.h5`` file: pre-training for
``real_cutouts.py --set train.weights=PATH`` (the same crop; the dense head, sized by
the crop, starts fresh).

Writes the tables to ``docs/results/sim_vs_real_cutouts.md`` (and ``.json``) through
``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from real_cutouts import CLASSES, DEFAULT_CUTOUTS
from results import Table, write_results
from scipy import ndimage

from skysort.config import Clean, Cutouts, Data, Query, SyntheticSource, Train
from skysort.data.images import cutout_path
from skysort.data.labels import encode
from skysort.data.splits import assign_splits
from skysort.evaluation.metrics import classification_scores
from skysort.sources.synthetic import render, simulate_catalog, write_synthetic_cutouts

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PNG = REPO / "docs/img/sim_vs_real_cutouts.png"
PAGE = "sim_vs_real_cutouts"
SIZE = 128  # the real cutouts: 128 x 128 pixels ...
SCALE = 0.4  # ... at 0.4 arcsec / pixel
SKY_RADIUS = 0.4  # sky = pixels beyond this fraction of the side from the centre
NEIGHBOUR_MIN_R = 12  # px: a source whose peak is farther out than this is a neighbour
NEIGHBOUR_MIN_AREA = 4  # px above the threshold
POINT_PEAK_RANGE = (40.0, 120.0)  # profile of point sources: unsaturated, well above the sky


# --- image statistics ------------------------------------------------------------------


@cache
def _quality_tables() -> dict[int, np.ndarray]:
    """libjpeg's luminance quantisation table at each quality 1-100 (as Pillow writes it)."""
    noise = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    tables = {}
    for quality in range(1, 101):
        buf = io.BytesIO()
        Image.fromarray(noise).save(buf, format="JPEG", quality=quality)
        with Image.open(buf) as img:
            tables[quality] = np.array(img.quantization[0], dtype=float)
    return tables


def jpeg_quality(img: Image.Image) -> int:
    """The libjpeg quality whose luminance table is closest to this JPEG's."""
    table = np.array(img.quantization[0], dtype=float)
    tables = _quality_tables()
    return min(tables, key=lambda q: float(np.abs(tables[q] - table).sum()))


def image_stats(data: bytes) -> dict[str, float]:
    """Statistics of one JPEG cutout, on the mean of its three channels (grey levels).

    ``sky``: median beyond ``SKY_RADIUS`` (``sky_r`` ... per channel); ``noise``: std of those pixels within 3 MADs
    of it; ``peak``: brightest pixel within 3 px of the centre, above the sky; ``f2_8`` /
    ``f4_8``: light within 2 / 4 px over that within 8 px; ``fwhm``: diameter of the
    area above half the peak (px); ``core_rg`` / ``core_gb``: the colour of the light
    within 2 px, -2.5 log10 of the ratio of two channels above their sky (R = i, G = r,
    B = g in the gri JPEG, so R-G is a stretched r - i); ``neighbours``: sources whose 3x3-smoothed light
    exceeds max(5 noise, 8) over at least ``NEIGHBOUR_MIN_AREA`` px, peaking more
    than ``NEIGHBOUR_MIN_R`` px from the centre.
    """
    with Image.open(io.BytesIO(data)) as img:
        quality = jpeg_quality(img)
        rgb = np.asarray(img.convert("RGB"), dtype=float)
    pixels = rgb.mean(axis=2)
    h, w = pixels.shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    outer = pixels[r > SKY_RADIUS * min(h, w)]
    sky_rgb = np.median(rgb[r > SKY_RADIUS * min(h, w)], axis=0)
    sky = float(np.median(outer))
    mad = 1.4826 * float(np.median(np.abs(outer - sky)))
    noise = float(outer[np.abs(outer - sky) <= 3 * max(mad, 0.5)].std())
    light = pixels - sky
    centre = np.where(r <= 3, light, -np.inf)
    cy, cx = np.unravel_index(np.argmax(centre), light.shape)
    peak = float(light[cy, cx])
    within = {k: float(light[r <= k].sum()) for k in (2, 4, 8)}
    core, _ = ndimage.label((light >= peak / 2) & (r <= 8))
    area = int((core == core[cy, cx]).sum()) if core[cy, cx] else 0
    smooth = ndimage.uniform_filter(light, 3)
    blobs, n = ndimage.label(smooth > max(5 * noise, 8.0))
    neighbours = 0
    if n:
        index = np.arange(1, n + 1)
        areas = ndimage.sum(np.ones_like(smooth), blobs, index)
        peaks = ndimage.maximum_position(smooth, blobs, index)
        for a, (py, px) in zip(areas, peaks, strict=True):
            far = np.hypot(py - (h - 1) / 2, px - (w - 1) / 2) > NEIGHBOUR_MIN_R
            neighbours += int(a >= NEIGHBOUR_MIN_AREA and far)
    ok = within[8] > 0
    core_rgb = (rgb - sky_rgb)[r <= 2].sum(axis=0)
    lit = bool((core_rgb > 0).all())
    return {
        "sky": sky,
        "sky_r": sky_rgb[0],
        "sky_g": sky_rgb[1],
        "sky_b": sky_rgb[2],
        "noise": noise,
        "peak": peak,
        "f2_8": within[2] / within[8] if ok else np.nan,
        "f4_8": within[4] / within[8] if ok else np.nan,
        "fwhm": 2 * np.sqrt(area / np.pi),
        "core_rg": -2.5 * np.log10(core_rgb[0] / core_rgb[1]) if lit else np.nan,
        "core_gb": -2.5 * np.log10(core_rgb[1] / core_rgb[2]) if lit else np.nan,
        "quality": quality,
        "bytes_per_px": len(data) / (h * w),
        "neighbours": neighbours,
    }


def stats_frame(paths: dict[str, list[Path]]) -> pd.DataFrame:
    """One row of :func:`image_stats` per file, with its class."""
    rows = [
        {"class": cls, **image_stats(p.read_bytes())} for cls, files in paths.items() for p in files
    ]
    return pd.DataFrame(rows)


def _q(values: pd.Series, lo: float = 0.25, hi: float = 0.75) -> str:
    v = values.dropna()
    if v.empty:
        return "-"
    return f"{v.median():.3g} [{v.quantile(lo):.3g}-{v.quantile(hi):.3g}]"


def stats_table(sim: pd.DataFrame, real: pd.DataFrame) -> list[str]:
    """Markdown rows: per class, simulated then real; medians [25-75 %] where it helps."""
    head = (
        "| class | cutouts | sky R/G/B | sky noise | central peak | core R-G | core G-B | "
        "point sources: r<=2 / r<=8 px | "
        "r<=4 / r<=8 px | FWHM px | JPEG quality | bytes / px | neighbours / field | "
        "with a neighbour |"
    )
    rows = [head, "| --- " * 14 + "|"]
    lo, hi = POINT_PEAK_RANGE
    for cls in CLASSES:
        for name, df in (("simulated", sim), ("real", real)):
            d = df[df["class"] == cls]
            points = d[d["peak"].between(lo, hi)] if cls != "GALAXY" else d.iloc[:0]
            rows.append(
                f"| {cls} | {name} ({len(d)}) | "
                f"{'/'.join(f'{d[c].median():.0f}' for c in ('sky_r', 'sky_g', 'sky_b'))} | "
                f"{_q(d['noise'])} | {_q(d['peak'])} | {_q(d['core_rg'])} | {_q(d['core_gb'])} | "
                f"{_q(points['f2_8'])} | "
                f"{_q(points['f4_8'])} | {_q(points['fwhm'])} | {d['quality'].median():.0f} | "
                f"{d['bytes_per_px'].median():.3f} | {d['neighbours'].mean():.1f} | "
                f"{(d['neighbours'] > 0).mean():.2f} |"
            )
    return rows


# --- the two samples --------------------------------------------------------------------


def real_sample(cutouts: Path, per_class: int, seed: int) -> pd.DataFrame:
    """A class-balanced random sample of the real cutouts: objid, class, path."""
    labels = pd.read_csv(cutouts / "labels.csv", dtype={"objid": str})
    parts = [
        labels[labels["class"] == c].sample(
            n=min(per_class, (labels["class"] == c).sum()), random_state=seed
        )
        for c in CLASSES
    ]
    out = pd.concat(parts).reset_index(drop=True)
    out["path"] = [cutouts / p for p in out["image"]]
    return out[["objid", "class", "path"]]


def simulated_sample(work: Path, per_class: int, seed: int) -> pd.DataFrame:
    """``per_class`` simulated objects of each class, rendered as the cutouts stage renders.

    Equal class mix, no faults and no missing labels; the real cutouts' size and scale.
    """
    source = SyntheticSource(
        class_mix=dict.fromkeys(CLASSES, 1.0),
        missing_cutout_rate=0.0,
        corrupt_cutout_rate=0.0,
        blank_cutout_rate=0.0,
        missing_label_rate=0.0,
        missing_feature_rate=0.0,
    )
    query = Query(n_objects=int(per_class * len(CLASSES) * 1.15) + 30)
    catalog = simulate_catalog(query, Data(), source, seed)
    catalog = pd.concat(catalog[catalog["class"] == c].head(per_class) for c in CLASSES)
    catalog = catalog.reset_index(drop=True)
    write_synthetic_cutouts(
        catalog, work, Data(image_size=SIZE), Cutouts(scale=SCALE), source, seed
    )
    return pd.DataFrame(
        {
            "objid": catalog["objid"].astype(str),
            "class": catalog["class"].astype(str),
            "path": [cutout_path(work, o) for o in catalog["objid"]],
        }
    )


def by_class(sample: pd.DataFrame, n: int) -> dict[str, list[Path]]:
    return {c: list(sample.loc[sample["class"] == c, "path"].head(n)) for c in CLASSES}


# --- the picture ------------------------------------------------------------------------


def side_by_side(sim: pd.DataFrame, real: pd.DataFrame, out: Path, per_side: int = 4) -> None:
    """Rows = classes; ``per_side`` simulated cutouts on the left, real on the right."""
    gap, label_w, head_h, pad = 16, 64, 20, 2
    cell = SIZE + pad
    width = label_w + 2 * per_side * cell + gap
    height = head_h + len(CLASSES) * cell
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    left, right = label_w, label_w + per_side * cell + gap
    draw.text((left, 4), "simulated (skysort renderer)", fill=(0, 0, 0))
    draw.text((right, 4), "real (SDSS ImgCutout)", fill=(0, 0, 0))
    for row, cls in enumerate(CLASSES):
        y = head_h + row * cell
        draw.text((4, y + SIZE // 2 - 6), cls, fill=(0, 0, 0))
        for x0, sample in ((left, sim), (right, real)):
            paths = sample.loc[sample["class"] == cls, "path"].head(per_side)
            for k, path in enumerate(paths):
                with Image.open(path) as img:
                    canvas.paste(img.convert("RGB"), (x0 + k * cell, y))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, optimize=True)


# --- the CNN ----------------------------------------------------------------------------


def load_images(paths: Iterable[Path], crop: int) -> np.ndarray:
    """uint8 N x crop x crop x 3: each cutout's central ``crop`` pixels (0 = whole)."""
    out = []
    for path in paths:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
        if crop:
            w, h = rgb.size
            left, top = (w - crop) // 2, (h - crop) // 2
            rgb = rgb.crop((left, top, left + crop, top + crop))
        out.append(np.asarray(rgb, dtype=np.uint8))
    return np.stack(out)


def fit_image_net(
    images: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    train: Train,
    seed: int,
):
    """The project's image model (``build_model``), fitted as the train stage fits it.

    Early stopping on the validation loss, the best epoch kept. Returns the model and
    (best epoch, epochs run, fit seconds).
    """
    import keras

    from skysort.model.build import build_model
    from skysort.model.losses import make_loss
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset
    from skysort.model.tfenv import configure_tensorflow

    configure_tensorflow(train.threads, seed)
    model = build_model(train, 0, len(CLASSES), images.shape[1])
    model.compile(
        optimizer=keras.optimizers.Adam(train.learning_rate),
        loss=make_loss(train, len(CLASSES)),
        metrics=["accuracy"],
    )
    features = np.zeros((len(images), 0), dtype=np.float32)  # an image model reads none
    inputs = INPUTS_BY_MODEL["image"]
    train_ds = make_dataset(
        images,
        features,
        train_rows,
        inputs,
        train.batch_size,
        y=y,
        shuffle=True,
        augment=train.augment,
        seed=seed,
        flips=train.flips,
    )
    val_ds = make_dataset(images, features, val_rows, inputs, train.batch_size, y=y)
    started = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=train.epochs,
        callbacks=[
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=train.patience, restore_best_weights=True
            ),
        ],
        verbose=0,
        shuffle=False,
    )
    val_loss = history.history["val_loss"]
    return model, (int(np.argmin(val_loss)) + 1, len(val_loss), time.perf_counter() - started)


def score(model, images: np.ndarray, y: np.ndarray, rows: np.ndarray) -> dict:
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset

    features = np.zeros((len(images), 0), dtype=np.float32)
    ds = make_dataset(images, features, rows, INPUTS_BY_MODEL["image"], 256)
    proba = model.predict(ds, verbose=0)
    return classification_scores(y[rows], proba.argmax(axis=1), CLASSES, proba)


CNN_HEADER = [
    "| seed | trained on | scored on | objects | accuracy | macro-F1 | F1 GALAXY | F1 QSO | "
    "F1 STAR | ROC-AUC | best epoch | fit s |",
    "| --- " * 12 + "|",
]


def cnn_table(
    sim: pd.DataFrame,
    real: pd.DataFrame,
    train: Train,
    crop: int,
    seed: int,
    save_backbone: Path | None = None,
) -> tuple[list[str], dict[str, float]]:
    """The CNN trained on simulated cutouts, and on real ones, each scored on real test rows.

    Returns the table's rows (without :data:`CNN_HEADER`) and then the confusion matrix
    on all real cutouts, and the accuracies: ``sim_to_real`` (all real cutouts) and
    ``real_to_real`` (the real test split). ``save_backbone``: where to write the
    sim-trained conv layers' weights.
    """
    clean = Clean()
    sim_x, real_x = load_images(sim["path"], crop), load_images(real["path"], crop)
    sim_y, real_y = encode(sim["class"], CLASSES), encode(real["class"], CLASSES)
    sim_split = assign_splits(sim["class"], clean.test_fraction, clean.val_fraction, seed)
    real_split = assign_splits(real["class"], clean.test_fraction, clean.val_fraction, seed)
    rows: list[str] = []

    def line(trained: str, tested: str, s: dict, facts: tuple[int, int, float]) -> str:
        f1 = " | ".join(f"{s['per_class'][c]['f1']:.3f}" for c in CLASSES)
        return (
            f"| {seed} | {trained} | {tested} | {s['n']} | {s['accuracy']:.3f} | {s['f1_macro']:.3f} | "
            f"{f1} | {s['roc_auc_macro']:.3f} | {facts[0]}/{facts[1]} | {facts[2]:.0f} |"
        )

    def where(split: np.ndarray, name: str) -> np.ndarray:
        return np.flatnonzero(split == name)

    # Trained on simulated cutouts only (early-stopped on simulated val): nothing real is seen.
    train_rows = where(sim_split, "train")
    model, facts = fit_image_net(sim_x, sim_y, train_rows, where(sim_split, "val"), train, seed)
    if save_backbone is not None:
        backbone = model.get_layer("image_encoder").get_layer("backbone")
        backbone.save_weights(str(save_backbone))
    n_sim = f"simulated ({len(train_rows)})"
    real_test = where(real_split, "test")
    rows.append(
        line(
            n_sim,
            "simulated, test split",
            score(model, sim_x, sim_y, where(sim_split, "test")),
            facts,
        )
    )
    rows.append(line(n_sim, "real, test split", score(model, real_x, real_y, real_test), facts))
    on_real = score(model, real_x, real_y, np.arange(len(real)))
    rows.append(line(n_sim, "real, all", on_real, facts))
    # For reference: the same CNN on real cutouts (train split), early-stopped on real val.
    model, facts = fit_image_net(
        real_x, real_y, where(real_split, "train"), where(real_split, "val"), train, seed
    )
    n_real = f"real ({len(where(real_split, 'train'))})"
    on_real_test = score(model, real_x, real_y, real_test)
    rows.append(line(n_real, "real, test split", on_real_test, facts))
    rows.append("")
    rows.append(
        f"seed {seed}, trained on simulated, scored on all real: rows = true, "
        f"columns = predicted {CLASSES}"
    )
    rows += [
        f"  {c:<7} {counts}" for c, counts in zip(CLASSES, on_real["confusion_matrix"], strict=True)
    ]
    return rows, {"sim_to_real": on_real["accuracy"], "real_to_real": on_real_test["accuracy"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cutouts", type=Path, default=DEFAULT_CUTOUTS)
    ap.add_argument("--sim-per-class", type=int, default=1500, help="simulated objects per class")
    ap.add_argument("--real-per-class", type=int, default=1000, help="real cutouts per class")
    ap.add_argument("--stats-per-class", type=int, default=500, help="of those, for the table")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--crop", type=int, default=32, help="CNN input: central N px (0 = whole)")
    ap.add_argument("--save-backbone", type=Path, help="write the sim-trained conv weights here")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    ap.add_argument(
        "--png", type=Path, help=f"the picture (default {DEFAULT_PNG} on the main page)"
    )
    ap.add_argument("--asinh-q", type=float, help="render with this asinh softening instead")
    ap.add_argument("--page", default=PAGE, help="results page to write")
    ap.add_argument("--no-train", action="store_true", help="statistics and picture only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.asinh_q is not None:
        render.ASINH_Q = args.asinh_q
    png = args.png or (DEFAULT_PNG if args.page == PAGE else None)

    started = time.perf_counter()
    first = args.seeds[0]
    real = real_sample(args.cutouts.resolve(), args.real_per_class, first)
    with tempfile.TemporaryDirectory(prefix="sim_cutouts_") as tmp:
        sim = simulated_sample(Path(tmp) / str(first), args.sim_per_class, first)
        render_s = time.perf_counter() - started
        print(
            f'{len(sim)} simulated cutouts (seed {first}, {SIZE} px at {SCALE}"/px, '
            f"asinh Q {render.ASINH_Q:g}, {render_s:.0f} s) against {len(real)} real ones "
            f"from {args.cutouts}\n"
        )
        n = args.stats_per_class
        table = stats_table(stats_frame(by_class(sim, n)), stats_frame(by_class(real, n)))
        print("\n".join(table))
        if png is not None:
            side_by_side(sim, real, png)
            print(f"\npicture: {png} ({png.stat().st_size / 1024:.0f} KB)")
        tables = [Table.from_markdown(table, caption="Image statistics")]
        notes = [
            f'{len(sim)} simulated cutouts (seed {first}, {SIZE} px at {SCALE}"/px, asinh '
            f"softening Q = {render.ASINH_Q:g}) against {len(real)} real ones; statistics of "
            f"{n} per class and side." + (f" Picture: {png.name}." if png is not None else "")
        ]
        if args.no_train:
            _publish(args.page, tables, notes, {})
            return
        train = Train(
            model="image",
            image_encoder="small_cnn",
            convs_per_block=2,
            pooling="flatten",
            epochs=args.epochs,
            threads=1,
        )
        print(
            f"\nsmall_cnn (image only), input {args.crop or SIZE} px "
            f"({'central crop' if args.crop else 'whole field'}), up to {args.epochs} epochs, "
            f"patience {train.patience}, augment {train.augment}, 1 TensorFlow thread\n"
        )
        rows, matrices, scores = [], [], {}
        for seed in args.seeds:
            if seed != first:
                real = real_sample(args.cutouts.resolve(), args.real_per_class, seed)
                sim = simulated_sample(Path(tmp) / str(seed), args.sim_per_class, seed)
            backbone = args.save_backbone if seed == first else None
            cnn, scores[seed] = cnn_table(sim, real, train, args.crop, seed, backbone)
            print("\n".join(cnn))
            rows += [r for r in cnn if r.startswith("|")]
            matrices += [r for r in cnn if r and not r.startswith("|")]
    summary = summary_rows(scores)
    print("\n".join(summary))
    caption = f"The small CNN, input {args.crop or SIZE} px, up to {args.epochs} epochs"
    tables.append(Table.from_markdown([*CNN_HEADER, *rows], caption))
    tables.append(Table.from_markdown(summary, "Accuracy on real cutouts, mean over seeds"))
    _publish(args.page, tables, [*notes, "```\n" + "\n".join(matrices) + "\n```"], scores)


def summary_rows(scores: dict[int, dict[str, float]]) -> list[str]:
    """Mean and range over seeds of the sim-trained and the real-trained CNN's accuracy."""
    rows = ["| CNN | seeds | mean accuracy | lowest | highest |", "| --- " * 5 + "|"]
    for key, name in (
        ("sim_to_real", "trained on simulated, scored on all real"),
        ("real_to_real", "trained on real, scored on the real test split"),
    ):
        values = [s[key] for s in scores.values()]
        rows.append(
            f"| {name} | {len(values)} | {np.mean(values):.3f} | {min(values):.3f} | "
            f"{max(values):.3f} |"
        )
    return rows


def _publish(page: str, tables: list[Table], notes: list[str], scores: dict) -> None:
    write_results(
        page,
        tables,
        title="Simulated cutouts against real ones",
        notes=notes,
        figures={"asinh_q": render.ASINH_Q, "accuracy_by_seed": scores},
    )


if __name__ == "__main__":
    main()
