"""Class labels as integer codes, shared by the stages that fit or score models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysort.schema import BANDS


def encode(labels: pd.Series, classes: tuple[str, ...]) -> np.ndarray:
    """Class names to codes 0..n-1 in ``classes`` order; unknown or foreign names become -1."""
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array(
        [lookup.get(v, -1) if isinstance(v, str) else -1 for v in labels], dtype=np.int64
    )


def observed(labels: pd.DataFrame, split: str) -> np.ndarray:
    """Boolean mask of the rows of ``split`` whose label was observed, not imputed.

    Every score (validation for early stopping, test metrics) is computed on these
    only: imputed labels may train, they never judge.
    """
    return (labels["split"] == split).to_numpy() & (labels["label_source"] == "observed").to_numpy()


def decode(codes: np.ndarray, classes: tuple[str, ...]) -> list[str | None]:
    return [classes[c] if c >= 0 else None for c in np.asarray(codes).tolist()]


def feature_matrix(df: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """The tabular features as a float32 matrix, in the configured order."""
    return df[list(features)].to_numpy(dtype=np.float32)


def tabular_matrix(df: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """The features plus the colours (u-g, g-r, ...) of adjacent bands among them.

    Colours carry the class information; magnitudes mostly carry distance. Trees
    cannot form differences themselves, so classical models get them precomputed.
    """
    base = feature_matrix(df, features)
    bands = [b for b in BANDS if b in features]
    colours = [df[a].to_numpy(np.float32) - df[b].to_numpy(np.float32)
               for a, b in zip(bands, bands[1:], strict=False)]
    return np.column_stack([base, *colours]) if colours else base
