"""How much a gri JPEG cutout says about the class, measured without a CNN.

Gradient boosting on richer hand-made features than ``real_cutouts.py`` uses:
enclosed light at nine radii (1 to 16 pixels) per band, the colours g-r and r-i
inside each radius, the central 4 x 4 pixels of each band, the sky level and the sky
noise, on the same kind of stratified split (seed 42, test 20 %) of the shared real
cutouts. Also the central N x N raw pixels alone (``--pixels``). If these score about
what the CNN scores, the CNN is finding what the pixels hold and the remaining
errors (stars taken for quasars) are beyond this input.

Last, what the colours of a gri image can hold at best: gradient boosting on the
catalog magnitudes g, r, i and the colours g-r, r-i of the real DR17 sample
(``--real``, class-balanced), which are far less noisy than colours read from JPEG
pixels, and for contrast on u g r i z. Stars and quasars are both point sources, so
colour is most of what tells them apart in a cutout; the printed "3-class bound"
counts every galaxy as right and the star/quasar pair as the gri colours decide it.
It is an estimate, not a proof: the DR17 rows are other objects than the cutouts,
and a low-redshift quasar's host galaxy can show in an image.

    python benchmarks/real_cutouts_ceiling.py [--cutouts PATH] [--real PATH] [--pixels 4 8]

Writes the scores to ``docs/results/real_cutouts_ceiling.md`` (and ``.json``) through
``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from results import Table, write_results
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import train_test_split

from skysort.data.labels import tabular_matrix

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CUTOUTS = REPO / "../shared/data/sdss_cutouts"
DEFAULT_REAL = REPO / "../shared/data/sdss17_star_classification_30k.csv"
CLASSES = ("GALAXY", "QSO", "STAR")
RADII = (1, 1.5, 2, 3, 4, 6, 8, 12, 16)
SCORES: list[list] = []  # every printed score, for docs/results/


def load(cutouts: Path) -> tuple[np.ndarray, np.ndarray]:
    labels = pd.read_csv(cutouts / "labels.csv", dtype={"objid": str})
    images = np.stack([np.asarray(Image.open(cutouts / p).convert("RGB")) for p in labels["image"]])
    return images.astype(np.float32), labels["class"].map(CLASSES.index).to_numpy()


def rich_features(images: np.ndarray) -> np.ndarray:
    n, h, w, _ = images.shape
    r = np.hypot(*(np.mgrid[:h, :w] - (np.array([h, w]) - 1)[:, None, None] / 2))
    sky_pixels = images[:, r > min(h, w) * 0.4]
    sky = np.median(sky_pixels, axis=1)
    flux = images - sky[:, None, None, :]
    enclosed = np.stack([flux[:, r <= radius].sum(axis=1) for radius in RADII], axis=1)
    positive = np.maximum(enclosed, 0.1)
    g_r = -2.5 * np.log10(positive[..., 2] / positive[..., 1])  # gri JPEG: R = i, G = r, B = g
    r_i = -2.5 * np.log10(positive[..., 1] / positive[..., 0])
    c = h // 2
    core = images[:, c - 2 : c + 2, c - 2 : c + 2].reshape(n, -1)
    return np.concatenate(
        [np.log1p(np.maximum(enclosed, 0)).reshape(n, -1), g_r, r_i, core, sky,
         sky_pixels.std(axis=1)], axis=1,
    )  # fmt: skip


def score(
    name: str, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
) -> np.ndarray:
    """Fit on the train rows, print the test scores, return the test confusion matrix."""
    t0 = time.perf_counter()
    model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=0)
    predicted = model.fit(X[train], y[train]).predict(X[test])
    f1 = f1_score(y[test], predicted, average=None)
    present = [CLASSES[k] for k in np.union1d(y[test], predicted)]  # f1_score's label order
    by_class = dict(zip(present, f1, strict=True))
    SCORES.append([name, accuracy_score(y[test], predicted), f1.mean()])
    SCORES[-1] += [by_class.get(c) for c in CLASSES]
    print(
        f"{name:<34} {accuracy_score(y[test], predicted):8.4f} {f1.mean():8.4f}"
        + "".join(f" {v:7.3f}" for v in f1)
        + f"  ({time.perf_counter() - t0:.0f} s)"
    )
    return confusion_matrix(y[test], predicted)


def colour_bound(real: Path) -> None:
    """Gradient boosting on catalog magnitudes and colours of a class-balanced DR17 sample."""
    df = pd.read_csv(real, usecols=["u", "g", "r", "i", "z", "class"])
    df = df[(df[["u", "g", "r", "i", "z"]] > 0).all(axis=1)]  # no -9999 sentinels
    df = df.groupby("class").sample(n=int(df["class"].value_counts().min()), random_state=42)
    y = df["class"].map(CLASSES.index).to_numpy()
    pair = y != CLASSES.index("GALAXY")
    print(f"\n{real.name}: {len(df)} rows, class-balanced; catalog photometry, no image")
    for bands in (("g", "r", "i"), ("u", "g", "r", "i", "z")):
        X = tabular_matrix(df, bands)  # the magnitudes, then adjacent colours
        rows = np.arange(len(y))
        train, test = train_test_split(rows, test_size=0.2, stratify=y, random_state=42)
        score(f"{' '.join(bands)} + colours, 3 classes", X, y, train, test)
        train, test = train_test_split(rows[pair], test_size=0.2, stratify=y[pair], random_state=42)
        matrix = score(f"{' '.join(bands)} + colours, STAR/QSO", X, y, train, test)
        pair_accuracy = np.trace(matrix) / matrix.sum()
        bound = (1 + 2 * pair_accuracy) / 3
        print(f"{'  3-class bound, galaxies all right':<34} {bound:8.4f}")
        SCORES.append([f"{' '.join(bands)}: 3-class bound, galaxies all right", bound])
        SCORES[-1] += [None] * (1 + len(CLASSES))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cutouts", type=Path, default=DEFAULT_CUTOUTS)
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL, help="the SDSS17 sample CSV")
    ap.add_argument("--pixels", type=int, nargs="*", default=[4], help="central N x N raw pixels")
    args = ap.parse_args()
    images, y = load(args.cutouts.resolve())
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=42)
    print(f"{len(y)} cutouts, test n = {len(test)}")
    head = f"{'gboost on':<34} {'accuracy':>8} {'macro-F1':>8}" + "".join(
        f" {c:>7}" for c in CLASSES
    )
    print(head + "\n" + "-" * len(head))
    matrix = score("profiles, colours, core, sky", rich_features(images), y, train, test)
    c = images.shape[1] // 2
    for n in args.pixels:
        half = n // 2
        raw = images[:, c - half : c - half + n, c - half : c - half + n].reshape(len(y), -1)
        score(f"central {n} x {n} raw pixels", raw, y, train, test)
    print("\nconfusion (rows true, columns predicted, " + " ".join(CLASSES) + "), first model:")
    print(matrix)
    if args.real.exists():
        colour_bound(args.real.resolve())
    else:
        print(f"\n{args.real}: not found, colour bound skipped")
    write_results(
        "real_cutouts_ceiling",
        [Table(["gboost on", "accuracy", "macro-F1", *(f"F1 {c}" for c in CLASSES)], SCORES)],
        title="How far the real cutouts' pixels and gri colours go",
        notes=[
            f"{len(y)} cutouts, test n = {len(test)} (stratified, seed 42). Rows naming bands "
            "are catalog photometry of the class-balanced DR17 sample (no image); the STAR/QSO "
            "rows score those two classes alone."
        ],
        figures={"confusion_first_model": matrix},
    )


if __name__ == "__main__":
    main()
