"""``train.model: ensemble``: the net plus the best tree model, mixed with a weight fitted on val.

The net is the fusion net where the survey has cutouts, else the tabular one. Both
tree models (``gboost``, ``forest``) are fitted on the net's train rows; the one with
the lower validation log loss joins the net, and the mix ``w * p_net + (1 - w) *
p_tree`` takes the ``w`` on a grid over [0, 1] that minimises the validation log
loss. The test split plays no part in any of it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skysort.model.saved import KerasModel, SavedModel
from skysort.model.trees import TreeModel

if TYPE_CHECKING:
    import keras

    from skysort.model.inputs import Survey
    from skysort.targets.trees import TreeHead

log = logging.getLogger(__name__)

NET_FILE = "net.keras"
GRID = np.linspace(0.0, 1.0, 21)
"""The net's weights tried: 0, 0.05, ..., 1."""


class EnsembleModel(SavedModel):
    """``weight_net`` x the net's probabilities + (1 - ``weight_net``) x the trees'."""

    kind = "ensemble"

    def __init__(self, net: KerasModel, trees: TreeModel, weight_net: float) -> None:
        self.net, self.trees, self.weight_net = net, trees, float(weight_net)
        self.inputs = net.inputs

    def _mix(self, p_net: np.ndarray, p_tree: np.ndarray) -> np.ndarray:
        return self.weight_net * np.asarray(p_net, np.float64) + (1 - self.weight_net) * p_tree

    def predict_proba(
        self, images: np.ndarray, features: np.ndarray, batch_size: int
    ) -> np.ndarray:
        return self._mix(self.net.predict_proba(images, features, batch_size),
                         self.trees.predict_proba(images, features, batch_size))  # fmt: skip

    def predict_rows(self, survey: Survey, rows: np.ndarray, batch_size: int) -> np.ndarray:
        return self._mix(self.net.predict_rows(survey, rows, batch_size),
                         self.trees.predict_rows(survey, rows, batch_size))  # fmt: skip

    @property
    def image_net(self) -> keras.Model | None:
        return self.net.image_net

    def importances(self) -> dict[str, float]:
        return self.trees.importances()

    def check(self, contract: dict[str, Any], path: Path) -> None:
        self.net.check(contract, Path(path) / NET_FILE)
        self.trees.check(contract, path)


def fit_weight(
    head: TreeHead, y: np.ndarray, p_net: np.ndarray, p_tree: np.ndarray
) -> tuple[float, dict[str, float]]:
    """The net's weight on :data:`GRID` with the lowest log loss on ``y`` (validation rows).

    Also the loss at each weight tried. Ties go to the lower weight.
    """
    losses = {f"{w:.2f}": head.log_loss(y, w * p_net + (1 - w) * p_tree) for w in GRID}
    best = min(losses, key=lambda k: (losses[k], float(k)))
    return float(best), losses


def combine(
    head: TreeHead, val_y: np.ndarray, net_val: np.ndarray, trees: dict[str, tuple[TreeModel, np.ndarray]],
) -> tuple[str, float, dict[str, Any]]:  # fmt: skip
    """The tree model to keep (lowest val log loss), the net's weight, and the report.

    ``trees`` maps each kind to its fitted model and its val probabilities; every
    array holds the validation rows only.
    """
    val_loss = {"net": head.log_loss(val_y, net_val)}
    val_loss |= {kind: head.log_loss(val_y, p) for kind, (_, p) in trees.items()}
    tree = min(trees, key=lambda k: (val_loss[k], k))
    weight, grid = fit_weight(head, val_y, net_val, trees[tree][1])
    val_loss["ensemble"] = grid[f"{weight:.2f}"]
    log.info("ensemble: net + %s, net weight %.2f (val log loss %s)", tree, weight,
             {k: round(v, 4) for k, v in val_loss.items()})  # fmt: skip
    report = {"tree": tree, "weight_net": weight, "val_log_loss": val_loss,
              "val_rows": int(len(val_y)), "weight_grid": grid}  # fmt: skip
    return tree, weight, report
