"""Tiny hand-made inputs for unit tests: a catalog, its cutouts and a manifest.

Independent of the synthetic survey, so each stage's tests fail only for that stage.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from skysort.data.images import cutout_path, encode_jpeg
from skysort.data.schema import CATALOG_COLUMNS, MANIFEST_COLUMNS, conform

CLASS_COLOURS = {"GALAXY": (1.6, 1.4), "QSO": (0.3, 0.2), "STAR": (1.2, 0.5)}  # u-g, g-r


def make_catalog(n: int = 60, seed: int = 0, missing_labels: int = 0) -> pd.DataFrame:
    """``n`` objects with class-dependent colours; the first ``missing_labels`` have no class."""
    rng = np.random.default_rng(seed)
    classes = np.array(["GALAXY", "QSO", "STAR"])[np.arange(n) % 3]
    ug = np.array([CLASS_COLOURS[c][0] for c in classes]) + rng.normal(0, 0.15, n)
    gr = np.array([CLASS_COLOURS[c][1] for c in classes]) + rng.normal(0, 0.15, n)
    r = rng.uniform(16, 20, n)
    g = r + gr
    u = g + ug
    labels = pd.array(classes, dtype="string")
    labels[:missing_labels] = pd.NA
    df = pd.DataFrame(
        {
            "objid": np.int64(1237648704577142822) + np.arange(n, dtype=np.int64) * 7,
            "ra": rng.uniform(0, 360, n),
            "dec": rng.uniform(-10, 10, n),
            "u": u,
            "g": g,
            "r": r,
            "i": r - 0.3,
            "z": r - 0.5,
            "fiberMag_g": g + 0.4,
            "redshift": np.where(classes == "STAR", 0.0, 0.5),
            "zWarning": np.zeros(n, dtype=np.int64),
            "class": labels,
            "provenance": "test",
        }
    )
    return conform(df, CATALOG_COLUMNS)


def make_image(objid: int, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(int(objid) % 2**32)
    yy, xx = np.mgrid[:size, :size] - size / 2
    blob = 200 * np.exp(-(xx**2 + yy**2) / 8.0)
    img = blob[..., None] + rng.normal(20, 5, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_cutouts(
    catalog: pd.DataFrame,
    cutouts_dir: Path,
    size: int = 16,
    missing: tuple[int, ...] = (),
    corrupt: tuple[int, ...] = (),
    blank: tuple[int, ...] = (),
    html: tuple[int, ...] = (),
) -> pd.DataFrame:
    """Write one JPEG per row (faults at the given row positions); return the manifest."""
    cutouts_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for pos, objid in enumerate(catalog["objid"]):
        path = cutout_path(cutouts_dir, objid)
        row = {"objid": objid, "attempts": 1, "fingerprint": "factories"}
        if pos in missing:
            rows.append({**row, "status": "missing", "bytes": 0, "sha256": "", "error": "HTTP 404"})
            continue
        if pos in blank:
            data = encode_jpeg(np.full((size, size, 3), 7, dtype=np.uint8))
        elif pos in html:
            data = b"<html><body>Server Error</body></html>"
        else:
            data = encode_jpeg(make_image(objid, size))
        if pos in corrupt:
            data = data[: len(data) // 2]
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        rows.append({**row, "status": "ok", "bytes": len(data), "sha256": digest, "error": ""})
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    return conform(manifest, MANIFEST_COLUMNS)


def bomb_jpeg(claimed: int = 60000) -> bytes:
    """A 16-pixel JPEG whose header claims ``claimed`` x ``claimed`` pixels (a decompression bomb)."""
    data = bytearray(encode_jpeg(make_image(1)))
    frame = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    data[frame + 5 : frame + 9] = struct.pack(">HH", claimed, claimed)
    return bytes(data)


def prepare_training_inputs(
    root: Path, catalog: pd.DataFrame, impute_params, missing: tuple[int, ...] = ()
) -> Path:
    """Run clean, impute and balance on ``catalog`` (64-pixel cutouts) into ``root``.

    Leaves what train and evaluate read: dataset.parquet, images.npy, labels.parquet
    and index.npy (the balanced train rows).
    """
    from skysort.config import Balance, Data, Params, Paths
    from skysort.data.atomic import write_parquet
    from skysort.pipeline.registry import run_stage
    from skysort.stages.balance import balance_train_rows
    from skysort.stages.impute import impute_labels

    data = Data(image_size=64)
    manifest = write_cutouts(catalog, root / "cutouts", size=64, missing=missing)
    write_parquet(root / "catalog.parquet", catalog)
    write_parquet(root / "manifest.parquet", manifest)
    paths = Paths(
        catalog=root / "catalog.parquet",
        manifest=root / "manifest.parquet",
        cutouts_dir=root / "cutouts",
        dataset=root / "dataset.parquet",
        images=root / "images.npy",
        clean_report=root / "clean.json",
    )
    run_stage("clean", Params(paths=paths, data=data, seed=0))
    impute_labels(
        dataset=root / "dataset.parquet",
        images=root / "images.npy",
        labels=root / "labels.parquet",
        impute_report=root / "impute.json",
        data=data,
        impute=impute_params,
        seed=0,
        task="multiclass",
    )
    balance_train_rows(
        labels=root / "labels.parquet",
        train_index=root / "index.npy",
        balance_report=root / "balance.json",
        balance=Balance(),
        seed=0,
        data=data,
        impute=impute_params,
        task="multiclass",
    )
    return root


ML_LABELS = ("a", "b", "c")


def make_multilabel_catalog(n: int = 120, seed: int = 0, missing: float = 0.2) -> pd.DataFrame:
    """``make_catalog`` plus three binary labels: ``a`` follows u-g, ``b`` g-r, ``c`` is rare.

    A share ``missing`` of the label entries is NaN (no votes).
    """
    rng = np.random.default_rng(seed + 1)
    df = make_catalog(n, seed)
    ug, gr = (df["u"] - df["g"]).to_numpy(), (df["g"] - df["r"]).to_numpy()
    df["a"] = (ug > np.median(ug)).astype(float)
    df["b"] = (gr > np.quantile(gr, 0.6)).astype(float)
    df["c"] = ((ug > np.quantile(ug, 0.8)) & (rng.random(n) < 0.7)).astype(float)
    for name in ML_LABELS:
        df.loc[rng.random(n) < missing, name] = np.nan
    return df


def prepare_multilabel_inputs(
    root: Path, catalog: pd.DataFrame, impute_params, balance_params=None
) -> Path:
    """clean, impute and balance for the multilabel task (labels ``ML_LABELS``) into ``root``."""
    from skysort.config import Balance, Data, Params, Paths
    from skysort.data.atomic import write_parquet
    from skysort.pipeline.registry import run_stage
    from skysort.stages.balance import balance_train_rows
    from skysort.stages.impute import impute_labels

    data = Data(image_size=64, labels=ML_LABELS, label_classes=("GALAXY", "QSO", "STAR"))
    manifest = write_cutouts(catalog, root / "cutouts", size=64)
    write_parquet(root / "catalog.parquet", catalog)
    write_parquet(root / "manifest.parquet", manifest)
    paths = Paths(
        catalog=root / "catalog.parquet",
        manifest=root / "manifest.parquet",
        cutouts_dir=root / "cutouts",
        dataset=root / "dataset.parquet",
        images=root / "images.npy",
        clean_report=root / "clean.json",
    )
    run_stage("clean", Params(paths=paths, data=data, seed=0, task="multilabel"))
    impute_labels(
        dataset=root / "dataset.parquet",
        images=root / "images.npy",
        labels=root / "labels.parquet",
        impute_report=root / "impute.json",
        data=data,
        impute=impute_params,
        seed=0,
        task="multilabel",
    )
    balance_train_rows(
        labels=root / "labels.parquet",
        train_index=root / "index.npy",
        balance_report=root / "balance.json",
        balance=balance_params or Balance(),
        seed=0,
        task="multilabel",
        data=data,
        impute=impute_params,
    )
    return root


SHARED_SDSS17 = (
    Path(__file__).resolve().parents[2] / "shared/data/sdss17_star_classification_30k.csv"
)
"""The real SDSS17 sample beside the repository (``../shared``); tests using it skip without it."""
if not SHARED_SDSS17.is_file():  # the worktree layout: /work/wt-*/ beside /work/shared/
    SHARED_SDSS17 = Path("/work/shared/data/sdss17_star_classification_30k.csv")


def shared_sdss17_head(rows: int) -> bytes:
    """The header and the first ``rows`` rows of the shared SDSS17 sample, byte for byte (CRLF)."""
    with SHARED_SDSS17.open("rb") as f:
        return b"".join(f.readline() for _ in range(rows + 1))


MORPHOLOGY_LABELS = ("elliptical", "spiral", "edge_on", "merger")
"""Four binary labels, as the origin multi-label system's CSV had."""


def write_multilabel_folder(
    folder: Path,
    csv: Path,
    n: int = 60,
    missing_files: tuple[int, ...] = (3, 11, 17),
    seed: int = 0,
) -> pd.DataFrame:
    """The origin multi-label system's data in miniature: non-square JPEGs + a CSV.

    ``folder/<id>.jpg`` (ids 7000..; two aspect ratios, neither square), except the rows
    in ``missing_files``, which the CSV lists all the same. ``csv``: ``id`` and the four
    ``MORPHOLOGY_LABELS`` (0 / 1, some blank or ``NaN``), no other column. The images
    follow the labels, so a model can learn something. Returns the labels as written
    (NaN where unknown), indexed by id.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    header = ["id", *MORPHOLOGY_LABELS]
    lines, truth = [",".join(header)], {}
    for i in range(n):
        ident = 7000 + i
        labels = (rng.random(4) < (0.5, 0.35, 0.25, 0.15)).astype(int)
        if i not in missing_files:
            Image.fromarray(_morphology_image(labels, i % 2 == 1, rng)).save(
                folder / f"{ident}.jpg"
            )
        cells = [str(v) for v in labels]
        for k in np.flatnonzero(rng.random(4) < 0.12):  # no votes: blank or NaN
            cells[k] = "" if k % 2 else "NaN"
        truth[ident] = [float(c) if c not in ("", "NaN") else np.nan for c in cells]
        lines.append(f"{ident}," + ",".join(cells))
    csv.write_text("\n".join(lines) + "\n")
    return pd.DataFrame.from_dict(truth, orient="index", columns=list(MORPHOLOGY_LABELS))


def _morphology_image(labels: np.ndarray, wide: bool, rng: np.random.Generator) -> np.ndarray:
    """A noisy blob: larger if elliptical, bluer if spiral, flattened if edge-on, doubled if merger."""
    height, width = (60, 90) if wide else (70, 50)
    yy, xx = np.mgrid[:height, :width].astype(float)
    sigma = 4.0 + 6.0 * labels[0]
    flat = 4.0 if labels[2] else 1.0
    blob = np.exp(-((xx - width / 2) ** 2 + flat * (yy - height / 2) ** 2) / (2 * sigma**2))
    if labels[3]:
        blob += 0.7 * np.exp(-((xx - width / 2 - 12) ** 2 + (yy - height / 2 - 8) ** 2) / 18)
    colour = np.array([0.7, 0.85, 1.0]) if labels[1] else np.array([1.0, 0.8, 0.6])
    pixels = 200 * blob[..., None] * colour + rng.normal(25, 6, (height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)
