"""Classification scores computed the same way for every model (baselines and Keras).

Multiclass: :func:`classification_scores`. Multilabel: :func:`multilabel_scores` over a
label matrix with NaN for unknown labels, and the per-label thresholds of
:func:`tune_thresholds`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
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


# ----------------------------------------------------------------------------- multilabel
#
# Label matrices hold 0 / 1 and NaN where a label is unknown. Every score below
# looks at the known entries only: a NaN label never reaches a metric.


def known(y: np.ndarray) -> np.ndarray:
    """Boolean mask of the entries of a label matrix (or vector) that are known."""
    return ~np.isnan(np.asarray(y, dtype=float))


def binary_scores(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """One label's scores on its known entries: counts, rates, G-mean, ROC-AUC and PR-AUC.

    PR-AUC is average precision. Rates with an empty denominator are 0; the AUCs are
    None unless both outcomes occur.
    """
    y_true = np.asarray(y_true, dtype=float)
    mask = known(y_true)
    y = y_true[mask].astype(bool)
    p = np.asarray(proba, dtype=float)[mask]
    pred = p >= threshold
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    tn, fn = int((~pred & ~y).sum()), int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    both = 0 < y.sum() < len(y)
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "accuracy": (tp + tn) / len(y) if len(y) else 0.0,
        "gmean": float(np.sqrt(recall * specificity)),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
    }


def multilabel_scores(
    y_true: np.ndarray,
    proba: np.ndarray,
    labels: tuple[str, ...],
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Per-label scores and the overall ones, on known entries only.

    Overall: Hamming loss (share of known entries predicted wrong), Jaccard index and
    subset accuracy (per row over its known labels, averaged over rows with any),
    micro AUC (all known entries pooled) and macro AUC (mean of the per-label AUCs
    that are defined). ``macro_labels`` names the labels the macro AUCs average;
    ``macro_left_out`` the others, each with why (no known value, or one outcome only).
    """
    y_true = np.asarray(y_true, dtype=float)
    proba = np.asarray(proba, dtype=float)
    if y_true.shape != proba.shape or y_true.shape[1] != len(labels):
        raise ValueError(f"labels {y_true.shape}, probabilities {proba.shape}, {len(labels)} names")
    thresholds = thresholds or {}
    cut = np.array([thresholds.get(name, 0.5) for name in labels])
    per_label = {
        name: binary_scores(y_true[:, k], proba[:, k], cut[k]) for k, name in enumerate(labels)
    }
    mask = known(y_true)
    rows = mask.any(axis=1)
    truth = np.where(mask, y_true, 0).astype(bool)
    pred = proba >= cut
    wrong = (pred != truth) & mask
    inter = (pred & truth & mask).sum(axis=1)
    union = ((pred | truth) & mask).sum(axis=1)
    jaccard = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    flat_y, flat_p = truth[mask], proba[mask]
    averaged = [name for name, s in per_label.items() if s["roc_auc"] is not None]
    aucs = [per_label[name]["roc_auc"] for name in averaged]
    pr_aucs = [per_label[name]["pr_auc"] for name in averaged]
    return {
        "n": int(rows.sum()),
        "known_labels": int(mask.sum()),
        "hamming_loss": float(wrong.sum() / max(mask.sum(), 1)),
        "jaccard": float(jaccard[rows].mean()) if rows.any() else 0.0,
        "subset_accuracy": float((wrong.sum(axis=1) == 0)[rows].mean()) if rows.any() else 0.0,
        "roc_auc_micro": float(roc_auc_score(flat_y, flat_p))
        if 0 < flat_y.sum() < len(flat_y)
        else None,
        "roc_auc_macro": float(np.mean(aucs)) if aucs else None,
        "pr_auc_macro": float(np.mean(pr_aucs)) if pr_aucs else None,
        "macro_labels": averaged,
        "macro_left_out": {
            name: "no known value" if not mask[:, k].any() else "one outcome only"
            for k, name in enumerate(labels)
            if name not in averaged
        },
        "f1_macro": float(np.mean([s["f1"] for s in per_label.values()])),
        "per_label": per_label,
    }


def tune_threshold(y_true: np.ndarray, proba: np.ndarray, objective: str = "f1") -> float:
    """The decision threshold that maximises ``objective`` (``f1`` or ``gmean``) on known entries.

    Candidates are midpoints between consecutive distinct scores, so a threshold never
    sits exactly on a validation score. 0.5 where the label has only one outcome.
    """
    y_true = np.asarray(y_true, dtype=float)
    mask = known(y_true)
    y = y_true[mask].astype(bool)
    p = np.asarray(proba, dtype=float)[mask]
    if not 0 < y.sum() < len(y):
        return 0.5
    scores = np.unique(p)
    cuts = np.concatenate([[scores[0] / 2], (scores[:-1] + scores[1:]) / 2])
    pred = p[None, :] >= cuts[:, None]
    tp = (pred & y).sum(axis=1)
    fp = (pred & ~y).sum(axis=1)
    fn = y.sum() - tp
    tn = (~y).sum() - fp
    if objective == "f1":
        value = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    elif objective == "gmean":
        value = np.sqrt(tp / (tp + fn) * tn / np.maximum(tn + fp, 1))
    else:
        raise ValueError(f"unknown threshold objective {objective!r}")
    return float(cuts[int(np.argmax(value))])


def tune_thresholds(
    y_true: np.ndarray, proba: np.ndarray, labels: tuple[str, ...], objective: str = "f1"
) -> dict[str, float]:
    """One tuned threshold per label (columns of ``y_true`` / ``proba`` in ``labels`` order)."""
    return {
        name: tune_threshold(np.asarray(y_true)[:, k], np.asarray(proba)[:, k], objective)
        for k, name in enumerate(labels)
    }
