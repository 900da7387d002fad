"""Class labels as integer codes, shared by the stages that fit or score models."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from skysort.data.schema import BANDS


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


def feature_matrix(
    df: pd.DataFrame, features: tuple[str, ...], asinh_scales: Mapping[str, float] | None = None
) -> np.ndarray:
    """The tabular features as a float32 matrix, in the configured order.

    A feature named in ``asinh_scales`` (``data.asinh_scales``) enters as
    ``asinh(x / scale)``.
    """
    scales = asinh_scales or {}
    columns = [df[f].to_numpy(np.float64) for f in features]
    columns = [
        np.arcsinh(c / scales[f]) if f in scales else c
        for f, c in zip(features, columns, strict=True)
    ]
    if not columns:
        return np.zeros((len(df), 0), dtype=np.float32)
    return np.column_stack(columns).astype(np.float32)


def tabular_matrix(
    df: pd.DataFrame, features: tuple[str, ...], asinh_scales: Mapping[str, float] | None = None
) -> np.ndarray:
    """The features plus the colours (u-g, g-r, ...) of adjacent bands among them.

    Colours carry the class information; magnitudes mostly carry distance. Trees
    cannot form differences themselves, so classical models get them precomputed.
    Colours are differences of the magnitudes as read, before any asinh scaling.
    """
    base = feature_matrix(df, features, asinh_scales)
    bands = [b for b in BANDS if b in features]
    colours = [
        df[a].to_numpy(np.float32) - df[b].to_numpy(np.float32)
        for a, b in zip(bands, bands[1:], strict=False)
    ]
    return np.column_stack([base, *colours]) if colours else base


# ----------------------------------------------------------------------------- multilabel
#
# A multilabel target is one float column per label: 1, 0, or NaN where unknown.
# labels.parquet adds, per label, ``<label>_source`` (observed / imputed / unknown)
# and ``<label>_confidence``.

LABEL_SOURCES: tuple[str, ...] = ("observed", "imputed", "unknown")


def label_matrix(df: pd.DataFrame, labels: tuple[str, ...]) -> np.ndarray:
    """The label columns as a float matrix (rows x labels): 1, 0, NaN where unknown.

    A label column the table lacks is a contract failure, named in the error.
    """
    missing = [c for c in labels if c not in df.columns]
    if missing:
        raise ValueError(
            f"label column(s) {missing} not found (data.labels); the table has {list(df.columns)}"
        )
    y = np.array(df[list(labels)].astype("float64").to_numpy(dtype=np.float64, na_value=np.nan))
    bad = ~np.isnan(y) & (y != 0) & (y != 1)
    if bad.any():
        col = labels[int(np.argwhere(bad)[0][1])]
        raise ValueError(f"label column {col!r} holds values other than 0, 1 and NaN")
    return y


def observed_matrix(labels: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    """The label matrix with every entry not observed (imputed or unknown) set to NaN.

    What validation and test scores use: imputed labels may train, they never judge.
    """
    y = label_matrix(labels, names)
    for k, name in enumerate(names):
        y[(labels[f"{name}_source"] != "observed").to_numpy(), k] = np.nan
    return y
