"""The fixed train / val / test split: stratified by class, or by label for multi-label data.

Seeded, so a rerun reproduces it; rows without a known label go to train, where they
never score a model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def assign_splits(
    labels: pd.Series, test_fraction: float, val_fraction: float, seed: int
) -> np.ndarray:
    """Stratified, seeded split. Rows of unknown class go to train: they never score a model."""
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "train", dtype=object)
    values = labels.astype("object").fillna("").to_numpy()
    for cls in sorted(set(values) - {""}):
        idx = np.flatnonzero(values == cls)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        split[idx[:n_test]] = "test"
        split[idx[n_test : n_test + n_val]] = "val"
    return split


def assign_multilabel_splits(
    y: np.ndarray, test_fraction: float, val_fraction: float, seed: int
) -> np.ndarray:
    """Split stratified over the labels by iterative stratification (Sechidis et al. 2011).

    ``y`` is the label matrix (0 / 1 / NaN). Rows with no known label go to train, as
    unknown classes do in the multiclass split: they never score a model. The
    stratification balances each label's positives and, as one more column, the rows
    with a missing label, so that impute / mask / drop see comparable splits.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    y = np.asarray(y, dtype=float)
    split = np.full(len(y), "train", dtype=object)
    scored = np.flatnonzero(~np.isnan(y).all(axis=1))
    if len(scored) < 3:
        return split
    target = np.column_stack([np.nan_to_num(y[scored]) == 1, np.isnan(y[scored]).any(axis=1)])
    target = target.astype(int)

    def cut(rows: np.ndarray, fraction: float, salt: int) -> tuple[np.ndarray, np.ndarray]:
        n_out = int(round(len(rows) * fraction))
        if n_out < 1 or n_out >= len(rows):
            return rows, rows[:0]
        splitter = MultilabelStratifiedShuffleSplit(
            n_splits=1, test_size=n_out, random_state=(seed + salt) % 2**32
        )
        keep, out = next(
            splitter.split(np.zeros((len(rows), 1)), target[np.searchsorted(scored, rows)])
        )
        return rows[keep], rows[out]

    rest, test = cut(scored, test_fraction, 0)
    _, val = cut(rest, val_fraction / (1 - test_fraction) if test_fraction < 1 else 0, 1)
    split[test] = "test"
    split[val] = "val"
    return split
