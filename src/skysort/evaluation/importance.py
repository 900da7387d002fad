"""What explains a model without an image branch, and which explanations a model can serve.

A tree model (``gboost``, ``forest``, an ensemble's trees) is explained by its feature
importance; Grad-CAM and LIME (:mod:`skysort.evaluation.explain`) need an image branch.
Nothing here imports Keras, so a tree model is evaluated without TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from skysort.data import atomic

IMPORTANCE_FILES = ("importance.csv", "importance.png")
"""In the plots folder: a tree model's feature importance, as a table and a picture."""


def availability(model: Any) -> dict[str, str]:
    """Which explanation ``model`` (a :class:`~skysort.model.saved.SavedModel`) can serve.

    ``available``, or ``not available: <why>``: Grad-CAM and LIME need an image branch
    (an ensemble's is its net's), feature importance needs trees.
    """
    image = model.image_net is not None
    no_image = f"not available: a {model.kind} model has no image branch"
    trees = model.importances() is not None
    return {
        "gradcam": "available" if image else no_image,
        "lime": "available" if image else no_image,
        "importance": "available" if trees else f"not available: a {model.kind} model has no trees",
    }


def write_importance(model: Any, folder: Any) -> dict[str, Any]:
    """A tree model's feature importance as ``importance.csv`` and ``importance.png``.

    Returns what the report says of it (the files and the columns, most important
    first); nothing for a model without trees.
    """
    from skysort.evaluation import plots

    importance = model.importances()
    if importance is None:
        return {}
    table, picture = (Path(folder) / name for name in IMPORTANCE_FILES)
    ranked = dict(sorted(importance.items(), key=lambda kv: -kv[1]))
    with atomic.atomic_path(table, suffix=".csv") as tmp:
        pd.DataFrame({"feature": list(ranked), "importance": list(ranked.values())}).to_csv(
            tmp, index=False
        )
    plots.importance_png(importance, f"Feature importance ({model.kind})", picture)
    return {"importance": {"files": list(IMPORTANCE_FILES), "ranked": ranked}}
