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
# looks at the known entries only: a NaN label never reaches a metric. A score whose
# definition divides by nothing (a label with no positive, no negative, or no known
# value in the split) is None, never NaN or a made-up 0, and ``undefined`` says why.

DEFAULT_THRESHOLD = 0.5
"""A label's decision threshold where none can be tuned (see :func:`one_outcome`)."""


def known(y: np.ndarray) -> np.ndarray:
    """Boolean mask of the entries of a label matrix (or vector) that are known."""
    return ~np.isnan(np.asarray(y, dtype=float))


def one_outcome(y: np.ndarray, split: str = "") -> str | None:
    """Why one label's known values cannot rank or tune anything; None when both outcomes occur.

    ``split`` names where the values come from, for the reason's text.
    """
    y = np.asarray(y, dtype=float)
    values = y[known(y)]
    where = f" in {split}" if split else ""
    positives = int(values.sum())
    if len(values) == 0:
        return f"no known value{where}"
    if positives == 0:
        return f"no positive among {_values(len(values))}{where}"
    if positives == len(values):
        return f"no negative among {_values(len(values))}{where}"
    return None


def _values(n: int) -> str:
    return f"{n} known value" + ("" if n == 1 else "s")


def one_outcome_labels(y: np.ndarray, labels: tuple[str, ...], split: str) -> dict[str, str]:
    """The labels (columns of ``y``) with one outcome only, or none, among their known values; why."""
    reasons = {name: one_outcome(y[:, k], split) for k, name in enumerate(labels)}
    return {name: why for name, why in reasons.items() if why}


_RATES = ("precision", "recall", "specificity", "f1", "accuracy", "gmean", "roc_auc", "pr_auc")


def binary_scores(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """One label's scores on its known entries: counts, rates, G-mean, ROC-AUC and PR-AUC.

    PR-AUC is average precision. A rate with an empty denominator (recall with no
    positive, specificity with no negative, precision with nothing predicted positive)
    is None, and so are the AUCs unless both outcomes occur; ``undefined`` maps each
    None score to why (absent when every score is defined).
    """
    y_true = np.asarray(y_true, dtype=float)
    mask = known(y_true)
    y = y_true[mask].astype(bool)
    p = np.asarray(proba, dtype=float)[mask]
    pred = p >= threshold
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    tn, fn = int((~pred & ~y).sum()), int((~pred & y).sum())
    n = len(y)
    undefined: dict[str, str] = {}
    no_value = "no known value"
    no_positive = no_value if not n else f"no positive among {_values(n)}"
    no_negative = no_value if not n else f"no negative among {_values(n)}"

    def ratio(name: str, num: int, den: int, why: str) -> float | None:
        if den:
            return num / den
        undefined[name] = why
        return None

    precision = ratio("precision", tp, tp + fp, f"nothing predicted positive at {threshold:g}")
    recall = ratio("recall", tp, tp + fn, no_positive)
    specificity = ratio("specificity", tn, tn + fp, no_negative)
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    else:  # 0 where there is anything to get wrong (a positive, or a false alarm)
        f1 = ratio("f1", 2 * tp, 2 * tp + fp + fn, f"{no_positive}, none predicted positive")
    accuracy = ratio("accuracy", tp + tn, n, no_value)
    gmean = None
    if recall is not None and specificity is not None:
        gmean = float(np.sqrt(recall * specificity))
    else:
        undefined["gmean"] = undefined.get("recall") or undefined["specificity"]
    auc_why = one_outcome(y_true)
    if auc_why:
        undefined["roc_auc"] = undefined["pr_auc"] = auc_why
    scores: dict[str, Any] = {
        "n": n,
        "positives": int(y.sum()),
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": f1,
        "accuracy": accuracy,
        "gmean": gmean,
        "roc_auc": None if auc_why else float(roc_auc_score(y, p)),
        "pr_auc": None if auc_why else float(average_precision_score(y, p)),
    }
    if undefined:
        scores["undefined"] = undefined
    return scores


def multilabel_scores(
    y_true: np.ndarray,
    proba: np.ndarray,
    labels: tuple[str, ...],
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Per-label scores and the overall ones, on known entries only.

    Overall: Hamming loss (share of known entries predicted wrong), Jaccard index and
    subset accuracy (per row over its known labels, averaged over rows with any),
    micro AUC (all known entries pooled) and the macro means of ROC-AUC, PR-AUC and F1
    over the labels with both outcomes among their known values: ``macro_labels``
    names them, ``macro_left_out`` the others, each with why (no known value, or one
    outcome only). A score that cannot be computed is None, with its reason in
    ``undefined`` (absent when all are defined).
    """
    y_true = np.asarray(y_true, dtype=float)
    proba = np.asarray(proba, dtype=float)
    if y_true.ndim != 2 or y_true.shape != proba.shape or y_true.shape[1] != len(labels):
        raise ValueError(f"labels {y_true.shape}, probabilities {proba.shape}, {len(labels)} names")
    bad = known(y_true) & np.isnan(proba)
    if bad.any():
        names = [labels[k] for k in np.flatnonzero(bad.any(axis=0))]
        raise ValueError(f"NaN probabilities for {int(bad.sum())} known labels of {names}")
    thresholds = thresholds or {}
    cut = np.array([thresholds.get(name, DEFAULT_THRESHOLD) for name in labels])
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
    averaged = [name for name, s in per_label.items() if s["roc_auc"] is not None]
    undefined: dict[str, str] = {}

    def mean(key: str, values: Any, why: str) -> float | None:
        if len(values):
            return float(np.mean(values))
        undefined[key] = why
        return None

    no_row, no_label = "no row has a known label", "no label has both outcomes"
    micro_why = one_outcome(y_true[mask])
    if micro_why:
        undefined["roc_auc_micro"] = micro_why
    macro = {
        key: [per_label[name][key] for name in averaged] for key in ("roc_auc", "pr_auc", "f1")
    }
    scores: dict[str, Any] = {
        "n": int(rows.sum()),
        "known_labels": int(mask.sum()),
        "hamming_loss": mean("hamming_loss", wrong[mask], no_row),
        "jaccard": mean("jaccard", jaccard[rows], no_row),
        "subset_accuracy": mean("subset_accuracy", (wrong.sum(axis=1) == 0)[rows], no_row),
        "roc_auc_micro": None if micro_why else float(roc_auc_score(truth[mask], proba[mask])),
        "roc_auc_macro": mean("roc_auc_macro", macro["roc_auc"], no_label),
        "pr_auc_macro": mean("pr_auc_macro", macro["pr_auc"], no_label),
        "f1_macro": mean("f1_macro", macro["f1"], no_label),
        "macro_labels": averaged,
        "macro_left_out": {
            name: "no known value" if not mask[:, k].any() else "one outcome only"
            for k, name in enumerate(labels)
            if name not in averaged
        },
        "per_label": per_label,
    }
    if undefined:
        scores["undefined"] = undefined
    return scores


def not_fitted(
    scores: dict[str, Any], y: np.ndarray, labels: tuple[str, ...], unfit: dict[str, str]
) -> dict[str, Any]:
    """:func:`multilabel_scores` with each label of ``unfit`` (no model: why) scored None.

    Its counts are its known values in ``y``; it joins ``macro_left_out``.
    """
    for name, why in unfit.items():
        column = np.asarray(y, dtype=float)[:, labels.index(name)]
        reason = f"not fitted: {why}"
        entry = scores["per_label"][name]
        entry.update(dict.fromkeys(("tp", "fp", "tn", "fn", *_RATES)))
        entry.update(n=int(known(column).sum()), positives=int(np.nansum(column)),
                     undefined=dict.fromkeys(_RATES, reason))  # fmt: skip
        scores["macro_left_out"][name] = reason
    return scores


def tune_threshold(y_true: np.ndarray, proba: np.ndarray, objective: str = "f1") -> float:
    """The decision threshold that maximises ``objective`` (``f1`` or ``gmean``) on known entries.

    Candidates are midpoints between consecutive distinct scores, so a threshold never
    sits exactly on a validation score. :data:`DEFAULT_THRESHOLD` where the label has
    only one outcome (:func:`one_outcome` says why).
    """
    y_true = np.asarray(y_true, dtype=float)
    mask = known(y_true)
    y = y_true[mask].astype(bool)
    p = np.asarray(proba, dtype=float)[mask]
    if not 0 < y.sum() < len(y):
        return DEFAULT_THRESHOLD
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
