"""Self-training: a random forest fitted on the known labels fills the confident unknown ones.

scikit-learn's ``SelfTrainingClassifier`` does the loop (fit, predict the unlabelled
rows, accept those at or above the threshold, refit); rows to fill carry the label -1.
"""

from __future__ import annotations

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
