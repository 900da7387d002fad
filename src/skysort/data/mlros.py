"""ML-ROS: multi-label random oversampling (Charte et al. 2015, Neurocomputing 163).

A label's imbalance ratio IRLbl is the count of the most frequent label divided by
its own count (positives among known entries). Labels whose IRLbl is above the mean
(MeanIR) are minority labels; rows carrying them are cloned at random, one per
minority label in turn, until a label's IRLbl falls to MeanIR or the budget of
``percent`` % of the rows is spent. A clone carries all its labels, so frequent
labels that co-occur grow too; that is ML-ROS as published.
"""

from __future__ import annotations

import numpy as np


def positive_counts(y: np.ndarray) -> np.ndarray:
    """Positives per label column of a 0 / 1 / NaN matrix (NaN counts as not positive)."""
    return np.nansum(np.asarray(y, dtype=float) == 1, axis=0).astype(np.int64)


def imbalance_ratios(counts: np.ndarray) -> np.ndarray:
    """IRLbl per label; NaN for a label with no positives (it cannot be oversampled)."""
    counts = np.asarray(counts, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, counts.max() / counts, np.nan)


def ml_ros(y: np.ndarray, percent: float, rng: np.random.Generator) -> np.ndarray:
    """Row positions of ``y`` after ML-ROS: every row once, plus the clones (unordered)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    counts = positive_counts(y).astype(float)
    ratios = imbalance_ratios(counts)
    if np.isnan(ratios).all():
        return np.arange(n)
    mean_ir = float(np.nanmean(ratios))
    minority = [k for k in range(y.shape[1]) if ratios[k] > mean_ir]
    bags = {k: np.flatnonzero(y[:, k] == 1) for k in minority}
    positives = y == 1
    budget = int(n * percent / 100)
    clones: list[int] = []
    while budget > 0 and minority:
        for k in list(minority):
            row = int(rng.choice(bags[k]))
            clones.append(row)
            counts += positives[row]
            budget -= 1
            if counts.max() / counts[k] <= mean_ir:
                minority.remove(k)
            if budget == 0:
                break
    return np.concatenate([np.arange(n), np.asarray(clones, dtype=np.int64)])
