"""Classification scores computed the same way for every model (baselines and Keras)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)


def classification_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: tuple[str, ...],
    proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, macro and per-class precision / recall / F1, confusion matrix, ROC-AUC."""
    labels = list(range(len(classes)))
    p, r, f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision_macro": float(p.mean()),
        "recall_macro": float(r.mean()),
        "f1_macro": float(f.mean()),
        "per_class": {
            c: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    if proba is not None:
        present = np.unique(y_true)
        if len(present) == len(classes) == 2:  # binary: sklearn wants the positive class's score
            out["roc_auc_macro"] = float(roc_auc_score(y_true, proba[:, 1]))
        elif len(present) == len(classes):
            out["roc_auc_macro"] = float(
                roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
            )
        else:
            out["roc_auc_macro"] = None  # undefined unless every class is in the test split
    return out
