"""The classical classifiers the baselines stage fits beside the net.

scikit-learn's five, and LightGBM (the seed study's strongest classical baseline)
through its scikit-learn interface, so every caller fits and scores them alike.
"""

from __future__ import annotations

from lightgbm import LGBMClassifier
from sklearn.base import ClassifierMixin
from sklearn.ensemble import (
    AdaBoostClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits


def make_baseline(name: str, seed: int) -> ClassifierMixin:
    """One named classical classifier with sensible defaults for a few thousand rows."""
    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if name == "tree":
        return DecisionTreeClassifier(min_samples_leaf=5, random_state=seed)
    if name == "forest":
        return RandomForestClassifier(
            n_estimators=300, min_samples_leaf=2, random_state=seed, n_jobs=-1
        )
    if name == "adaboost":
        return AdaBoostClassifier(n_estimators=200, random_state=seed)
    if name == "gboost":
        return HistGradientBoostingClassifier(random_state=seed)
    if name == "lightgbm":
        return _lightgbm(seed)
    raise ValueError(f"unknown baseline {name!r}")


def _lightgbm(seed: int) -> ClassifierMixin:
    """LightGBM, reproducible and quiet.

    One thread (``n_jobs=1``), for the reason :func:`one_openmp_thread` gives; it also
    makes ``deterministic=True`` hold, which LightGBM promises for a fixed thread count
    only. ``force_row_wise`` skips the timing test that would pick a layout per run.
    """
    return LGBMClassifier(
        random_state=seed,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


def one_openmp_thread() -> threadpool_limits:
    """Fit with one OpenMP thread.

    Gradient boosting's spin-waiting OpenMP threads slow to a crawl when the machine's
    cores are shared with other work.
    """
    return threadpool_limits(limits=1, user_api="openmp")
