"""Fault injection: what goes wrong on purpose, at configured rates fixed by the seed.

In the catalog: missing labels (half of them failed redshifts) and missing magnitudes.
In the cutouts: *missing* (no file), *corrupt* (a truncated JPEG) and *blank* (a flat
frame) — the clean stage has to catch the last two, as with the real service.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysort.config import SyntheticSource
from skysort.data.images import JPEG_END
from skysort.data.schema import MAGNITUDE_COLUMNS
from skysort.sources.synthetic.seeding import stream

ZWARNING_BITS: tuple[int, ...] = (4, 4, 4, 16, 32, 128)  # SMALL_DELTA_CHI2 is most common


def inject_catalog_faults(df: pd.DataFrame, synthetic: SyntheticSource, seed: int) -> None:
    """Blank labels, then single magnitudes, at the configured rates (in place)."""
    # Labels first: failed redshifts are drawn by r magnitude, which must not be NaN yet.
    _inject_missing_labels(df, synthetic.missing_label_rate, stream(seed, "missing_labels"))
    _inject_missing_features(df, synthetic.missing_feature_rate, stream(seed, "missing_feat"))


def plan_cutout_faults(n: int, synthetic: SyntheticSource, seed: int) -> np.ndarray:
    """Each of ``n`` cutouts' fault: "", "missing", "corrupt" or "blank" (exact counts)."""
    order = stream(seed, "cutout_faults").permutation(n)
    faults = np.full(n, "", dtype=object)
    start = 0
    for fault, rate in (
        ("missing", synthetic.missing_cutout_rate),
        ("corrupt", synthetic.corrupt_cutout_rate),
        ("blank", synthetic.blank_cutout_rate),
    ):
        k = min(_exact_count(n, rate), n - start)
        faults[order[start : start + k]] = fault
        start += k
    return faults


def blank_frame(size: int) -> np.ndarray:
    """Outside the footprint the service sends a flat frame, not an error."""
    return np.full((size, size, 3), 0, dtype=np.uint8)


def truncate(payload: bytes, rng: np.random.Generator) -> bytes:
    """Cut a JPEG short, as a dropped connection does; never leave a valid end marker."""
    cut = payload[: int(len(payload) * rng.uniform(0.3, 0.8))]
    while cut.rstrip(b"\x00").endswith(JPEG_END):
        cut = cut[:-1]
    return cut


def _exact_count(n: int, rate: float) -> int:
    return min(n, int(round(n * rate)))


def _inject_missing_labels(df: pd.DataFrame, rate: float, rng: np.random.Generator) -> None:
    """Blank ``class`` for ``rate`` of rows: half failed redshifts (zWarning set), half unknown.

    Failed redshifts favour faint objects (low signal-to-noise spectra), and their
    redshift is often wrong, as in the real pipeline.
    """
    n = len(df)
    k = _exact_count(n, rate)
    if k == 0:
        return
    rows = rng.permutation(n)[:k]
    faintness = 10 ** (0.4 * (df["r"].to_numpy()[rows] - 20.0))
    failed = rng.choice(rows, (k + 1) // 2, replace=False, p=faintness / faintness.sum())
    df.loc[df.index[rows], "class"] = pd.NA
    df.loc[df.index[failed], "zWarning"] = rng.choice(ZWARNING_BITS, len(failed))
    wrong = failed[rng.random(len(failed)) < 0.5]
    df.loc[df.index[wrong], "redshift"] = rng.uniform(0.0, 3.0, len(wrong))


def _inject_missing_features(df: pd.DataFrame, rate: float, rng: np.random.Generator) -> None:
    """One magnitude becomes NaN for ``rate`` of rows (a failed measurement in one band)."""
    k = _exact_count(len(df), rate)
    rows = rng.permutation(len(df))[:k]
    cols = rng.choice(len(MAGNITUDE_COLUMNS), k)
    for j, col in enumerate(MAGNITUDE_COLUMNS):
        df.loc[df.index[rows[cols == j]], col] = np.nan
