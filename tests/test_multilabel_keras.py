"""The multilabel task's Keras pieces on tiny inputs: masked losses and metrics, models, training."""

import numpy as np
import pytest
import tensorflow as tf

from skysort.config import Train
from skysort.losses import (
    MaskedAUC,
    MaskedBinaryAccuracy,
    MaskedBinaryFocalLoss,
    make_multilabel_loss,
)

NAN = np.nan
Y = np.array([[1, 0, NAN], [NAN, 1, 0], [0, NAN, NAN]], dtype="float32")
P = np.array([[0.8, 0.3, 0.5], [0.1, 0.6, 0.2], [0.4, 0.9, 0.7]], dtype="float32")


def _bce(y, p):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_masked_loss_is_the_mean_over_known_entries_and_nan_never_reaches_it(gamma):
    loss = MaskedBinaryFocalLoss(gamma=gamma)
    mask = ~np.isnan(Y)
    y, p = Y[mask], P[mask]
    p_t = np.where(y == 1, p, 1 - p)
    expected = np.mean(_bce(y, p) * (1 - p_t) ** gamma)
    assert float(loss(Y, P)) == pytest.approx(expected, rel=1e-5)
    # whatever sits in an unknown entry's prediction, the loss and its gradient ignore it
    pred = tf.Variable(P)
    with tf.GradientTape() as tape:
        value = loss(tf.constant(Y), pred)
    grad = tape.gradient(value, pred).numpy()
    assert np.isfinite(float(value)) and np.isfinite(grad).all()
    assert (grad[~mask] == 0).all() and (grad[mask] != 0).all()
    # a batch with no known label gives 0, not NaN
    assert float(loss(np.full((2, 3), NAN, "float32"), P[:2])) == 0.0


def test_make_multilabel_loss_follows_train_loss():
    assert make_multilabel_loss(Train()).gamma == 0.0
    assert make_multilabel_loss(Train(loss="focal", focal_gamma=1.5)).gamma == 1.5


def test_masked_metrics_ignore_nan_labels():
    acc = MaskedBinaryAccuracy()
    acc.update_state(Y, P)
    # known: (1, .8) ok, (0, .3) ok, (1, .6) ok, (0, .2) ok, (0, .4) ok -> 5 of 5
    assert float(acc.result()) == 1.0
    auc = MaskedAUC(name="auc")
    auc.update_state(Y, P)
    assert float(auc.result()) == pytest.approx(1.0)
    flipped = np.where(np.isnan(Y), 1 - (P > 0.5), Y)
    auc.reset_state()
    auc.update_state(flipped, P)
    assert float(auc.result()) < 1.0
