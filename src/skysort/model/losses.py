"""Training losses and the metrics that watch them.

Multiclass: sparse categorical crossentropy or focal loss, on integer class labels
``0..n-1`` and softmax probabilities. Multilabel: binary crossentropy or binary
focal loss on a label matrix of 0 / 1 / NaN and sigmoid probabilities, masked:
a NaN label adds nothing to the loss, its gradient or a metric. The custom classes
are registered as Keras serializables under the package ``skysort``, so a model
compiled with them loads back with ``keras.models.load_model`` in any process that
has imported this module.
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


@keras.saving.register_keras_serializable(package="skysort")
class MaskedBinaryFocalLoss(keras.losses.Loss):
    """Binary focal loss over several labels, ignoring unknown (NaN) ones.

    Per known entry: ``-a_t * (1 - p_t) ** gamma * log(p_t)``, where ``p_t`` is the
    probability given to the true outcome and ``a_t`` is ``alpha`` for positives and
    ``1 - alpha`` for negatives (no weighting when ``alpha`` is None). ``gamma = 0``
    and no alpha is binary crossentropy. The batch's loss is the mean over its
    known entries; a batch with none gives 0. NaN labels are replaced before any
    arithmetic, so they cannot leak into the loss or its gradient (``0 * NaN`` is NaN).
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | None = None,
        epsilon: float | None = None,
        name: str = "masked_binary_focal_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"focal loss gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0 <= alpha <= 1:
            raise ValueError(f"focal loss alpha must be in [0, 1], got {alpha}")
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else float(alpha)
        self.epsilon = float(keras.config.epsilon() if epsilon is None else epsilon)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, y_pred.dtype)
        mask = ops.logical_not(ops.isnan(y_true))
        y = ops.where(mask, y_true, ops.zeros_like(y_true))
        p = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
        p_t = y * p + (1.0 - y) * (1.0 - p)
        loss = -ops.log(p_t)
        if self.gamma:
            loss = ops.power(1.0 - p_t, self.gamma) * loss
        if self.alpha is not None:
            loss = (y * self.alpha + (1.0 - y) * (1.0 - self.alpha)) * loss
        loss = ops.where(mask, loss, ops.zeros_like(loss))
        # Keras averages the per-sample values over the batch; scaling by
        # batch / known entries makes that average the mean over known entries.
        batch = ops.cast(ops.shape(y)[0], loss.dtype)
        n_known = ops.maximum(ops.sum(ops.cast(mask, loss.dtype)), 1.0)
        return ops.sum(loss, axis=-1) * batch / n_known

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"gamma": self.gamma, "alpha": self.alpha, "epsilon": self.epsilon})
        return config


def _known(y_true: Any) -> tuple[Any, Any]:
    """NaN labels replaced by 0, and the known entries as 0/1 weights."""
    y_true = ops.cast(y_true, "float32")
    mask = ops.logical_not(ops.isnan(y_true))
    return ops.where(mask, y_true, ops.zeros_like(y_true)), ops.cast(mask, "float32")


@keras.saving.register_keras_serializable(package="skysort")
class MaskedAUC(keras.metrics.AUC):
    """Keras AUC over the known entries of a label matrix (micro: all labels pooled)."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        y, weight = _known(y_true)
        if sample_weight is not None:
            weight = weight * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        return super().update_state(y, y_pred, sample_weight=weight)


@keras.saving.register_keras_serializable(package="skysort")
class MaskedBinaryAccuracy(keras.metrics.Metric):
    """Share of known label entries predicted right at ``threshold``."""

    def __init__(self, threshold: float = 0.5, name: str = "accuracy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.threshold = float(threshold)
        self.right = self.add_variable(shape=(), initializer="zeros", name="right")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y, weight = _known(y_true)
        if sample_weight is not None:
            weight = weight * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        pred = ops.cast(ops.cast(y_pred, "float32") >= self.threshold, "float32")
        self.right.assign_add(ops.sum(ops.cast(ops.equal(pred, y), "float32") * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self) -> Any:
        return self.right / ops.maximum(self.count, 1.0)

    def reset_state(self) -> None:
        self.right.assign(0.0)
        self.count.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


def make_multilabel_loss(train: Train) -> keras.losses.Loss:
    """The masked loss ``train.loss`` names for sigmoid outputs: crossentropy or focal."""
    if train.loss == "crossentropy":
        return MaskedBinaryFocalLoss(gamma=0.0, name="masked_binary_crossentropy")
    if train.loss == "focal":
        log.info("masked binary focal loss with gamma=%g", train.focal_gamma)
        return MaskedBinaryFocalLoss(gamma=train.focal_gamma)
    raise ValueError(f"train.loss: unknown loss {train.loss!r}")


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
