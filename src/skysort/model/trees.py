"""The tree models ``train.model: gboost | forest`` name, saved and read like the net.

``gboost`` is LightGBM and ``forest`` scikit-learn's random forest, built by the
baselines' own builders (:mod:`skysort.model.classical`: seeded, one thread). They
read the net's tabular feature matrix (the contract's ``features``), to which they
add the colours of adjacent bands when the matrix lacks them (``train.colour_inputs:
false``): a tree cannot form a difference of two columns itself. Where the survey
has cutouts they also read each cutout's cheap morphology (concentration, size,
ellipticity, ...: :mod:`skysort.data.morphology`, numpy only), which tells a point
source from a galaxy where the photometry alone cannot. How the fitted
classifiers cover the task's outputs is the target's (:mod:`skysort.targets.trees`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skysort import targets
from skysort.data.morphology import FEATURES as MORPHOLOGY
from skysort.data.morphology import morphology_features
from skysort.data.schema import BANDS
from skysort.model.saved import SavedModel

log = logging.getLogger(__name__)

TREES_FILE = "trees.joblib"
Colour = tuple[int, int, float, float]
"""Matrix columns (a, b) of two adjacent bands and their asinh scales (0 = none): a - b."""


def tree_rows(train_rows: np.ndarray) -> np.ndarray:
    """The rows a tree model fits on: the train index's rows, each once, in order.

    The balance stage repeats minority rows so that a net's mini-batches see every
    class often; a tree needs no such help, and the copies hurt it twice: its leaves
    fill with copies of one row (LightGBM's ``min_child_samples`` counts them), and it
    learns the balanced class mix instead of the survey's. On the real DR17 sample
    (3 splits) LightGBM's test accuracy rose by 0.0015 to 0.005 fitted on the rows once.
    Rows the balance stage left out (undersampling) stay out.
    """
    return np.unique(train_rows)


def make_tree(kind: str, seed: int) -> Any:
    """A fresh ``gboost`` (LightGBM) or ``forest`` classifier, seeded, one thread."""
    from skysort.model.classical import make_baseline

    if kind == "gboost":
        return make_baseline("lightgbm", seed)
    if kind == "forest":
        return make_baseline("forest", seed).set_params(n_jobs=1)
    raise ValueError(f"unknown tree model {kind!r}")


def tree_columns(
    features: tuple[str, ...], asinh_scales: dict[str, float], colour_inputs: bool
) -> tuple[list[str], list[Colour]]:
    """The trees' column names, and the colours they add to the feature matrix.

    With ``colour_inputs`` the matrix already ends in the colours (as the baselines read
    it), so nothing is added.
    """
    bands = [b for b in BANDS if b in features]
    pairs = list(zip(bands, bands[1:], strict=False))
    names = [*features, *[f"{a}-{b}" for a, b in pairs]]
    if colour_inputs:
        return names, []
    colours = [(features.index(a), features.index(b), float(asinh_scales.get(a, 0.0)),
                float(asinh_scales.get(b, 0.0))) for a, b in pairs]  # fmt: skip
    return names, colours


@dataclass
class TreeModel(SavedModel):
    """Fitted classifiers over the feature matrix (+ colours, + morphology), one task head."""

    kind: str
    task: str
    members: list[Any]
    n_outputs: int
    n_features: int
    columns: list[str]
    colours: list[Colour]
    morphology: bool = False

    @property
    def inputs(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("image", "features") if self.morphology else ("features",)

    def matrix(
        self, features: np.ndarray, images: np.ndarray | None = None,
        morphology: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """The feature matrix with the colours (and the cutouts' morphology) appended.

        ``morphology``: the rows' morphology already computed; else it is computed
        from ``images``.
        """
        x = np.asarray(features, dtype=np.float64)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"the {self.kind} model reads {self.n_features} features, got {x.shape[1]}"
            )
        raw = [x[:, a] if sa == 0 else np.sinh(x[:, a]) * sa for a, _, sa, _ in self.colours]
        low = [x[:, b] if sb == 0 else np.sinh(x[:, b]) * sb for _, b, _, sb in self.colours]
        parts = [x, *[r - s for r, s in zip(raw, low, strict=True)]]
        if self.morphology:
            if morphology is None:
                if images is None:
                    raise ValueError(f"the {self.kind} model reads the cutouts' morphology")
                morphology = morphology_features(images)
            parts.append(np.asarray(morphology, dtype=np.float64))
        return np.column_stack(parts)

    def predict_proba(
        self, images: np.ndarray, features: np.ndarray, batch_size: int
    ) -> np.ndarray:
        head = targets.get(self.task).trees
        return head.proba(self.members, self.matrix(features, images), self.n_outputs)

    def importances(self) -> dict[str, float]:
        """Each column's importance (LightGBM: splits; forest: impurity), averaged, summing to 1."""
        fitted = [m.feature_importances_ for m in self.members if not isinstance(m, float)]
        total = np.zeros(len(self.columns))
        for values in fitted:
            values = np.asarray(values, dtype=np.float64)
            total += values / values.sum() if values.sum() > 0 else values
        total = total / total.sum() if total.sum() > 0 else total
        return {c: float(v) for c, v in zip(self.columns, total, strict=True)}

    def check(self, contract: dict[str, Any], path: Path) -> None:
        from skysort.model.contract import ContractError

        problems = []
        if self.n_features != contract["n_features"]:
            problems.append(
                f"{self.n_features} features, the contract says {contract['n_features']}"
            )
        if self.n_outputs != len(contract["outputs"]):
            problems.append(
                f"{self.n_outputs} outputs, the contract names {len(contract['outputs'])}"
            )
        if not set(self.inputs) <= set(contract["inputs"]):
            problems.append(f"it reads {list(self.inputs)}, the contract {contract['inputs']}")
        if problems:
            raise ContractError(f"{path} does not match its contract: " + "; ".join(problems))

    def save(self, folder: Path) -> dict[str, Any]:
        """Write the classifiers into ``folder``; return what ``model.json`` says of them."""
        import joblib

        joblib.dump(self.members, Path(folder) / TREES_FILE)
        return {"kind": self.kind, "task": self.task, "file": TREES_FILE,
                "n_outputs": self.n_outputs, "n_features": self.n_features,
                "columns": self.columns, "colours": [list(c) for c in self.colours],
                "morphology": self.morphology}  # fmt: skip

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any]) -> TreeModel:
        """The tree model ``save`` wrote (a pickle: load only models you trained)."""
        import joblib

        colours = [(int(a), int(b), float(sa), float(sb)) for a, b, sa, sb in meta["colours"]]
        return cls(kind=meta["kind"], task=meta["task"],
                   members=joblib.load(Path(folder) / meta["file"]),
                   n_outputs=int(meta["n_outputs"]), n_features=int(meta["n_features"]),
                   columns=list(meta["columns"]), colours=colours,
                   morphology=bool(meta.get("morphology", False)))  # fmt: skip


def fit_tree(
    kind: str, task: str, features: np.ndarray, y: np.ndarray, *, n_outputs: int,
    columns: list[str], colours: list[Colour], seed: int, morphology: np.ndarray | None = None,
) -> tuple[TreeModel, float]:  # fmt: skip
    """Fit one tree model on the train rows' features and targets; also the seconds it took.

    ``morphology``: the rows' cutout morphology, where the survey has cutouts.
    """
    from skysort.model.classical import one_openmp_thread

    with_morphology = morphology is not None
    names = [*columns, *(MORPHOLOGY if with_morphology else ())]
    model = TreeModel(kind, task, [], n_outputs, features.shape[1], names, colours,
                      with_morphology)  # fmt: skip
    started = time.perf_counter()
    with one_openmp_thread():
        model.members = targets.get(task).trees.fit(
            lambda: make_tree(kind, seed), model.matrix(features, morphology=morphology), y
        )
    seconds = time.perf_counter() - started
    log.info("train: %s fitted on %d rows in %.2f s", kind, len(features), seconds)
    return model, seconds


def log_tree_metrics(folder: Path, metrics: dict[str, float]) -> None:
    """dvclive's files for a fit without epochs: one step of ``metrics`` (``dvc.yaml`` reads them)."""
    import shutil

    from dvclive import Live

    shutil.rmtree(folder, ignore_errors=True)
    live = Live(str(folder), dvcyaml=False, save_dvc_exp=False, report=None)
    for name, value in metrics.items():
        live.log_metric(name, float(value))
    live.end()
