"""Training losses: sparse categorical crossentropy, or focal loss for imbalanced classes.

Both take integer class labels ``0..n-1`` (what the input pipeline yields) and the
model's softmax probabilities. The focal loss is registered as a Keras
serializable under the package ``skysort``, so a model compiled with it loads back
with ``keras.models.load_model`` in any process that has imported this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from skysort.config import Train

log = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="skysort")
class SparseCategoricalFocalLoss(keras.losses.Loss):
    """Focal loss (Lin et al. 2017) on integer labels and softmax probabilities.

    Per sample: ``-alpha[y] * (1 - p_y) ** gamma * log(p_y)``. The factor
    ``(1 - p_y) ** gamma`` shrinks the loss of examples the model already gets
    right, so the rare, hard ones (quasars among stars) weigh more. ``gamma=0`` and
    no ``alpha`` is plain crossentropy. ``alpha`` is an optional weight per class;
    ``class_weight`` in ``fit`` does the same job, so use one or the other.
    Probabilities are clipped to ``[epsilon, 1 - epsilon]`` as Keras's own
    crossentropy does, so a confident wrong answer gives a large, finite loss.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Sequence[float] | None = None,
        epsilon: float | None = None,
        name: str = "sparse_categorical_focal_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"focal loss gamma must be >= 0, got {gamma}")
        if alpha is not None and any(a < 0 for a in alpha):
            raise ValueError(f"focal loss alpha must be non-negative, got {list(alpha)}")
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else [float(a) for a in alpha]
        self.epsilon = float(keras.config.epsilon() if epsilon is None else epsilon)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        n_classes = ops.shape(y_pred)[-1]
        # Labels may arrive as (batch,) or (batch, 1), int or float.
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        probs = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
        one_hot = ops.one_hot(labels, n_classes, dtype=probs.dtype)
        p_true = ops.sum(one_hot * probs, axis=-1)
        loss = -ops.log(p_true)
        if self.gamma:
            loss = ops.power(1.0 - p_true, self.gamma) * loss
        if self.alpha is not None:
            alpha = ops.convert_to_tensor(self.alpha, dtype=probs.dtype)
            loss = ops.sum(one_hot * alpha, axis=-1) * loss
        return loss

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"gamma": self.gamma, "alpha": self.alpha, "epsilon": self.epsilon})
        return config


def make_loss(train: Train, n_classes: int) -> keras.losses.Loss:
    """The loss ``train.loss`` names, for integer labels ``0..n_classes-1`` and softmax outputs.

    ``crossentropy`` is Keras's own ``SparseCategoricalCrossentropy`` (loads anywhere);
    ``focal`` is :class:`SparseCategoricalFocalLoss` with ``gamma = train.focal_gamma``
    and no per-class alpha (``train.class_weight`` covers class weighting).
    """
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
    if train.loss == "crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=False)
    if train.loss == "focal":
        log.info("focal loss with gamma=%g over %d classes", train.focal_gamma, n_classes)
        return SparseCategoricalFocalLoss(gamma=train.focal_gamma)
    raise ValueError(f"train.loss: unknown loss {train.loss!r}")
