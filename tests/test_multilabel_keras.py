"""The multilabel task's Keras pieces on tiny inputs: masked losses and metrics, models, training."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from skysort.config import Train
from skysort.model.losses import (
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


# ----------------------------------------------------------------------------- models


def test_multilabel_models_end_in_one_sigmoid_per_label():
    import keras

    from skysort.model.build import build_model

    tiny = {"conv_filters": (4,), "dense_units": (8,)}
    for model in ("tabular", "image", "fusion"):
        net = build_model(Train(model=model, **tiny), 3, 4, 32, task="multilabel")
        out = net.get_layer("probabilities")
        assert out.units == 4 and out.activation is keras.activations.sigmoid
    with_head = build_model(
        Train(model="image", head_conv_filters=(6, 5), **tiny), 3, 2, 32, task="multilabel"
    )
    encoder = with_head.get_layer("image_encoder")
    assert encoder.get_layer("head_conv_1").filters == 5
    assert encoder.output.shape[-1] == 5
    assert "avg_pool" not in [layer.name for layer in encoder.get_layer("backbone").layers]


def test_flips_leave_out_vertical():
    from skysort.model.tfdata import dihedral

    img = tf.constant(np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(1, 4, 4, 6)[..., :3])
    img = tf.repeat(img, 64, axis=0)
    out = dihedral(img, seed=0, flips=("horizontal",)).numpy()
    lr = img.numpy()[:, :, ::-1]
    same = (out == img.numpy()).all(axis=(1, 2, 3))
    assert ((out == lr).all(axis=(1, 2, 3)) | same).all() and 0 < same.sum() < 64


# ----------------------------------------------------------------------------- train + evaluate


TINY = {"epochs": 2, "batch_size": 32, "conv_filters": (8,), "dense_units": (16,),
        "learning_rate": 0.005, "patience": 2}  # fmt: skip


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from skysort.config import Impute
    from tests.factories import make_multilabel_catalog, prepare_multilabel_inputs

    root = tmp_path_factory.mktemp("ml-prepared")
    return prepare_multilabel_inputs(
        root, make_multilabel_catalog(150), Impute(n_estimators=20, max_iter=2, confidence=0.7)
    )


def _run(root, out, evaluate_too=True, **kw):
    from skysort.config import Data, Evaluate
    from skysort.stages.evaluate import evaluate_model
    from skysort.stages.train import train_model
    from tests.factories import ML_LABELS

    data = Data(image_size=64, labels=ML_LABELS, label_classes=("GALAXY", "QSO", "STAR"))
    cfg = Train(**{**TINY, **kw})
    report = train_model(
        dataset=root / "dataset.parquet",
        images=root / "images.npy",
        labels=root / "labels.parquet",
        train_index=root / "index.npy",
        model=out / "model.keras",
        dvclive=out / "dvclive",
        train_report=out / "train.json",
        thresholds=out / "thresholds.json",
        contract=out / "contract.json",
        data=data,
        train=cfg,
        seed=0,
        task="multilabel",
    )

    def run_evaluate():
        return evaluate_model(
            dataset=root / "dataset.parquet",
            images=root / "images.npy",
            labels=root / "labels.parquet",
            model=out / "model.keras",
            train_report=out / "train.json",
            thresholds=out / "thresholds.json",
            metrics=out / "metrics.json",
            plots=out / "plots",
            predictions=out / "predictions.parquet",
            data=data,
            train=cfg,
            evaluate=Evaluate(),
            task="multilabel",
            seed=0,
        )

    return report, run_evaluate


@pytest.mark.slow  # trains a Keras model
def test_multilabel_train_tunes_thresholds_and_evaluate_uses_the_saved_ones(prepared, tmp_path):
    import json

    from skysort.data.atomic import read_json, write_json
    from tests.factories import ML_LABELS

    report, run_evaluate = _run(prepared, tmp_path, model="fusion", optimizer="rmsprop")
    assert report["monitor"] == "val_auc" and "best_val_auc" in report
    saved = read_json(tmp_path / "thresholds.json")
    assert saved["labels"] == list(ML_LABELS) and set(saved["thresholds"]) == set(ML_LABELS)
    metrics = run_evaluate()
    assert metrics["thresholds"] == saved["thresholds"]
    for name in ML_LABELS:
        assert metrics["per_label"][name]["threshold"] == saved["thresholds"][name]
    for key in ("hamming_loss", "jaccard", "subset_accuracy", "roc_auc_micro", "roc_auc_macro"):
        assert key in metrics
    for name in ("confusion.png", "roc.png", "pr.png", "training.png", "gallery.png",
                 "confusion.csv", "roc.csv"):  # fmt: skip
        assert (tmp_path / "plots" / name).stat().st_size > 0, name

    # Thresholds written next to the model are the ones evaluation decides by.
    forced = {"a": 0.0, "b": 1.01, "c": 0.5}
    write_json(tmp_path / "thresholds.json", {**saved, "thresholds": forced})
    metrics = run_evaluate()
    preds = pd.read_parquet(tmp_path / "predictions.parquet")
    assert (preds["pred_a"] == 1).all() and (preds["pred_b"] == 0).all()
    assert metrics["per_label"]["a"]["fn"] == 0 and metrics["per_label"]["b"]["fp"] == 0
    # A NaN label never reaches a metric: each label's count is its known test entries.
    for name in ML_LABELS:
        assert metrics["per_label"][name]["n"] == preds[name].notna().sum()
    assert json.loads((tmp_path / "metrics.json").read_text())["thresholds"] == forced


@pytest.mark.slow  # trains a Keras model
@pytest.mark.parametrize("kw", [{"loss": "focal", "lr_schedule": "cosine", "optimizer": "adagrad"},
                                {"lr_schedule": "plateau", "optimizer": "adadelta",
                                 "model": "tabular", "flips": ("horizontal",)}])  # fmt: skip
def test_multilabel_training_options_train(prepared, tmp_path, kw):
    report, _ = _run(prepared, tmp_path, model=kw.pop("model", "image"), epochs=1, **kw)
    assert np.isfinite(report["best_val_loss"])
