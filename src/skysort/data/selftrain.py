"""Self-training: a random forest fitted on the known labels fills the confident unknown ones.

scikit-learn's ``SelfTrainingClassifier`` does the loop (fit, predict the unlabelled
rows, accept those at or above the threshold, refit); rows to fill carry the label -1.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.semi_supervised import SelfTrainingClassifier


def self_trainer(
    n_estimators: int,
    threshold: float,
    max_iter: int,
    seed: int,
    class_weight: str | None = None,
) -> SelfTrainingClassifier:
    """A self-training random forest accepting predictions at ``threshold`` or above."""
    base = RandomForestClassifier(
        n_estimators=n_estimators,
        min_samples_leaf=2,
        class_weight=class_weight,
        random_state=seed,
        n_jobs=-1,
    )
    return SelfTrainingClassifier(base, threshold=threshold, max_iter=max_iter)


def at_most(
    X: np.ndarray, y: np.ndarray, max_rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_rows`` rows of ``X`` and ``y`` (drawn at random, kept in order); all if fewer.

    For the masked hold-out, a diagnostic of the imputer: its accuracy on 20,000 rows is
    known to about half a percent, while fitting it on every train row of a 100k survey
    took as long again as the imputer itself.
    """
    if len(X) <= max_rows:
        return X, y
    keep = np.sort(np.random.default_rng(seed + 2).choice(len(X), size=max_rows, replace=False))
    return X[keep], y[keep]
