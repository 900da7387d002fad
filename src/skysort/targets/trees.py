"""How a task's outputs map onto scikit-learn-style classifiers (the tree models).

A softmax target's classes are exclusive: one multiclass classifier gives every
output. A sigmoid target's labels are independent: one binary classifier per label,
fitted on the rows where that label is known. :attr:`skysort.targets.base.Target.trees`
picks the head from the target's output activation, so a stage never tests the task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

EPS = 1e-7


class TreeHead(ABC):
    """Fit classifiers to a target's outputs, read their probabilities, score them."""

    @abstractmethod
    def fit(self, make: Callable[[], Any], X: np.ndarray, y: np.ndarray) -> list[Any]:
        """The fitted members (a classifier, or a constant where nothing can be learnt)."""

    @abstractmethod
    def proba(self, members: list[Any], X: np.ndarray, n_outputs: int) -> np.ndarray:
        """Probabilities (rows x outputs), as the net's output layer gives them."""

    @abstractmethod
    def log_loss(self, y: np.ndarray, proba: np.ndarray) -> float:
        """Mean log loss over the observed labels (lower is better)."""


class ExclusiveClasses(TreeHead):
    """One multiclass classifier over class codes (``-1`` = unknown, left out)."""

    def fit(self, make: Callable[[], Any], X: np.ndarray, y: np.ndarray) -> list[Any]:
        known = y >= 0
        return [make().fit(X[known], y[known])]

    def proba(self, members: list[Any], X: np.ndarray, n_outputs: int) -> np.ndarray:
        (model,) = members
        out = np.zeros((len(X), n_outputs), dtype=np.float64)
        if len(X):  # a class the train rows never had keeps probability 0
            out[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(X)
        return out

    def log_loss(self, y: np.ndarray, proba: np.ndarray) -> float:
        known = y >= 0
        picked = proba[np.flatnonzero(known), y[known]]
        return float(-np.log(np.clip(picked, EPS, 1.0)).mean())


class IndependentLabels(TreeHead):
    """One binary classifier per label (NaN = unknown, left out of that label's rows).

    A label with one outcome among its known rows has nothing to learn: its member is
    that outcome's rate (a constant probability), as the net's bias would learn.
    """

    def fit(self, make: Callable[[], Any], X: np.ndarray, y: np.ndarray) -> list[Any]:
        members: list[Any] = []
        for k in range(y.shape[1]):
            known = ~np.isnan(y[:, k])
            values = y[known, k].astype(int)
            if len(np.unique(values)) < 2:
                members.append(float(values.mean()) if len(values) else 0.5)
            else:
                members.append(make().fit(X[known], values))
        return members

    def proba(self, members: list[Any], X: np.ndarray, n_outputs: int) -> np.ndarray:
        out = np.empty((len(X), n_outputs), dtype=np.float64)
        for k, member in enumerate(members):
            if isinstance(member, float) or not len(X):
                out[:, k] = member if isinstance(member, float) else 0.0
            else:
                out[:, k] = member.predict_proba(X)[:, list(member.classes_).index(1)]
        return out

    def log_loss(self, y: np.ndarray, proba: np.ndarray) -> float:
        known = ~np.isnan(y)
        p = np.clip(proba[known], EPS, 1 - EPS)
        t = y[known]
        return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())


HEADS: dict[str, TreeHead] = {"softmax": ExclusiveClasses(), "sigmoid": IndependentLabels()}
"""The head for each output activation."""
