"""Evaluation pictures as PNGs (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_curve,
)

from skysort.data import atomic  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def confusion_png(matrix: list[list[int]], classes: tuple[str, ...], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    _matrix(ax, np.asarray(matrix), classes)
    ax.set_title("Confusion matrix (test)")
    _save(fig, path)


def _matrix(ax: plt.Axes, m: np.ndarray, ticks: tuple[str, ...]) -> None:
    """A confusion matrix on ``ax``: observed down, predicted across, counts written in."""
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_yticks(range(len(ticks)), ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("observed")
    for (i, j), v in np.ndenumerate(m):
        colour = "white" if v > m.max() / 2 else "black"
        ax.text(j, i, str(v), ha="center", va="center", color=colour)


def roc_csv(truth: dict[str, np.ndarray], scores: dict[str, np.ndarray], path: Path) -> None:
    """ROC points per class or label (``class``, ``fpr``, ``tpr``) for ``dvc plots``.

    A name whose truth is all one outcome has no curve and no rows.
    """
    rows = []
    for name, positive in truth.items():
        if 0 < positive.sum() < len(positive):
            fpr, tpr, _ = roc_curve(positive, scores[name])
            rows += [{"class": name, "fpr": a, "tpr": b} for a, b in zip(fpr, tpr)]
    pd.DataFrame(rows, columns=["class", "fpr", "tpr"]).to_csv(path, index=False)


def _curve(ax: plt.Axes, kind: str, truth: np.ndarray, score: np.ndarray, name: str,
           average_precision: bool = False) -> None:  # fmt: skip
    """One ROC or PR curve; PR labelled with the area under it, or AP and the base rate."""
    if kind == "roc":
        fpr, tpr, _ = roc_curve(truth, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        return
    prec, rec, _ = precision_recall_curve(truth, score)
    if average_precision:
        ap = average_precision_score(truth, score)
        ax.plot(rec, prec, label=f"{name} (AP {ap:.3f}, base {truth.mean():.2f})")
    else:
        ax.plot(rec, prec, label=f"{name} (AUC {auc(rec, prec):.3f})")


def curves_png(
    y: np.ndarray, proba: np.ndarray, classes: tuple[str, ...], path: Path, kind: str
) -> None:
    """One-vs-rest ROC (``kind="roc"``) or precision-recall (``kind="pr"``) curves per class."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for k, name in enumerate(classes):
        truth = y == k
        if truth.all() or not truth.any():
            continue
        _curve(ax, kind, truth, proba[:, k], name)
    _finish_curves(ax, kind, f"{kind.upper()} curves (test, one vs rest)", fontsize=8)
    _save(fig, path)


def history_png(history: dict[str, list[float]], path: Path) -> None:
    """Loss and accuracy per epoch, train and val (and AUC when the run recorded it).

    A model fitted without epochs (a tree model: empty ``history``) gets a picture that
    says so: ``dvc.yaml`` declares this file among evaluate's plots.
    """
    if not history:
        fig, ax = plt.subplots(figsize=(4, 1.2))
        ax.text(0.5, 0.5, "no training curves: this model is fitted without epochs",
                ha="center", va="center", fontsize=8)  # fmt: skip
        ax.set_axis_off()
        _save(fig, path)
        return
    keys = ("loss", "accuracy", "auc") if "auc" in history else ("loss", "accuracy")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, key in zip(axes, keys):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(range(1, len(history[f"val_{key}"]) + 1), history[f"val_{key}"], label="val")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    _save(fig, path)


def gallery_png(
    images: np.ndarray, true: list[str], pred: list[str], path: Path, per_class: int = 6
) -> None:
    """A grid of test cutouts per observed class; misclassified ones framed in red.

    Tabular-only data has no cutouts: the grid then shows the predictions alone.
    """
    classes = sorted(set(true))
    fig, axes = plt.subplots(
        len(classes), per_class, figsize=(per_class * 1.3, len(classes) * 1.45), squeeze=False
    )
    for r, cls in enumerate(classes):
        idx = [i for i, t in enumerate(true) if t == cls]
        wrong = [i for i in idx if pred[i] != cls]
        right = [i for i in idx if pred[i] == cls]
        chosen = (wrong[: per_class // 2] + right)[:per_class]
        for c in range(per_class):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(chosen):
                i = chosen[c]
                if images.shape[1]:  # tabular-only data packs empty-width images
                    ax.imshow(images[i])
                _frame(ax, pred[i] == cls, f"→{pred[i]}", fontsize=7)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(cls, fontsize=9)
    fig.suptitle("Test cutouts by observed class (red: misclassified)", fontsize=9)
    _save(fig, path)


def _frame(ax: plt.Axes, ok: bool, title: str, fontsize: int) -> None:
    """A gallery cell's frame and caption: green when right, thick red when wrong."""
    for spine in ax.spines.values():
        spine.set_edgecolor("tab:green" if ok else "red")
        spine.set_linewidth(1 if ok else 3)
    ax.set_title(title, fontsize=fontsize, color="black" if ok else "red")


def comparison_png(histories: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Validation loss and accuracy per epoch of every run of a comparison, overlaid."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, history in histories.items():
        for ax, key in zip(axes, ("val_loss", "val_accuracy")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], label=name)
    for ax, key in zip(axes, ("validation loss", "validation accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(key)
    axes[1].legend(fontsize=7, loc="lower right")
    _save(fig, path)


# ----------------------------------------------------------------------------- multilabel


def label_curves_png(
    y: np.ndarray, proba: np.ndarray, labels: tuple[str, ...], path: Path, kind: str
) -> None:
    """Per-label ROC (``kind="roc"``) or precision-recall curves, on known labels only."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for k, name in enumerate(labels):
        mask = ~np.isnan(y[:, k])
        truth, score = y[mask, k] == 1, proba[mask, k]
        if truth.all() or not truth.any():
            continue
        _curve(ax, kind, truth, score, name, average_precision=True)
    _finish_curves(ax, kind, f"{kind.upper()} curves per label (test, known labels)", fontsize=7)
    _save(fig, path)


def _finish_curves(ax: plt.Axes, kind: str, title: str, fontsize: int) -> None:
    """Axes, chance line (ROC), legend and title of a ROC or PR figure."""
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
    else:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
    ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=fontsize)
    ax.set_title(title)


def label_confusion_png(per_label: dict[str, dict], path: Path) -> None:
    """One 2x2 confusion matrix per label at its tuned threshold."""
    names = list(per_label)
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        s = per_label[name]
        _matrix(ax, np.array([[s["tn"], s["fp"]], [s["fn"], s["tp"]]]), ("0", "1"))
        ax.set_title(f"{name}\n(threshold {s['threshold']:.2f})", fontsize=8)
    _save(fig, path)


def label_gallery_png(
    images: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    labels: tuple[str, ...],
    path: Path,
    n: int = 18,
) -> None:
    """Test cutouts with their true (T) and predicted (P) labels; red where a known label is wrong.

    Labels are shortened to their last word (``gz_edge_on`` -> ``on``); ``?`` marks a
    label that is unknown for that object. Tabular-only data has no cutouts: the grid
    then shows the labels alone.
    """
    short = [name.removeprefix("gz_")[:6] for name in labels]
    n = min(n, len(images))
    cols = 6
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        if images.shape[1]:  # tabular-only data packs empty-width images: labels alone
            ax.imshow(images[i])
        known = ~np.isnan(truth[i])
        t = [
            s + ("" if known[k] else "?")
            for k, s in enumerate(short)
            if not known[k] or truth[i, k] == 1
        ]
        p = [s for k, s in enumerate(short) if pred[i, k]]
        ok = bool(((truth[i] == 1) == pred[i])[known].all())
        _frame(ax, ok, f"T {','.join(t) or '-'}\nP {','.join(p) or '-'}", fontsize=6)
    fig.suptitle(
        "Test cutouts: true (T) and predicted (P) labels; red: a known label wrong", fontsize=8
    )
    _save(fig, path)


def explanation_png(
    image: np.ndarray,
    rows: list[tuple[str, np.ndarray, np.ndarray]],
    title: str,
    path: Path,
) -> None:
    """One object's explanations: per row (what is explained, Grad-CAM heatmap, LIME mask)
    the cutout, the heatmap over it, and the cutout with LIME's superpixels outlined and
    the rest dimmed."""
    fig, axes = plt.subplots(len(rows), 3, figsize=(7.2, 2.5 * len(rows)), squeeze=False)
    for r, (name, heatmap, mask) in enumerate(rows):
        ax_img, ax_cam, ax_lime = axes[r]
        ax_img.imshow(image)
        ax_img.set_ylabel(name, fontsize=8)
        ax_cam.imshow(image)
        ax_cam.imshow(heatmap, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
        dimmed = image.astype("float32") * np.where(mask, 1.0, 0.35)[..., None]
        ax_lime.imshow(dimmed.astype(np.uint8))
        if mask.any() and not mask.all():
            ax_lime.contour(mask, levels=[0.5], colors="yellow", linewidths=0.8)
        for ax, label in ((ax_img, "cutout"), (ax_cam, "Grad-CAM"), (ax_lime, "LIME")):
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def importance_png(importance: dict[str, float], title: str, path: Path) -> None:
    """Feature importance as horizontal bars, the most important on top."""
    ranked = sorted(importance.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(4.8, 0.3 * len(ranked) + 1.0))
    ax.barh([k for k, _ in ranked], [v for _, v in ranked], color="#4c72b0")
    ax.set_xlabel("share of importance")
    ax.set_title(title, fontsize=9)
    _save(fig, path)
