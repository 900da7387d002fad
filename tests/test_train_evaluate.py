"""train and evaluate on a tiny hand-made dataset: real Keras, one or two epochs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysort.config import Data, Evaluate, Impute, Train
from skysort.data.atomic import read_json
from skysort.stages.evaluate import evaluate_model
from skysort.stages.train import train_model
from tests.factories import make_catalog, prepare_training_inputs

pytestmark = pytest.mark.slow  # every test trains a Keras model

DATA = Data(image_size=64)
TINY = {
    "epochs": 2,
    "batch_size": 32,
    "conv_filters": (8, 16),
    "dense_units": (16,),
    "learning_rate": 0.005,
    "patience": 2,
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    return prepare_training_inputs(
        root,
        make_catalog(150, missing_labels=10),
        Impute(n_estimators=20, max_iter=2),
        missing=(3,),
    )


def _train(root, out, **kw):
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
        data=DATA,
        train=cfg,
        seed=0,
        task="multiclass",
    )
    return cfg, report


def _evaluate(root, out, cfg):
    """Score the model ``_train`` wrote to ``out`` on ``root``'s test rows."""
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
        data=DATA,
        train=cfg,
        evaluate=Evaluate(),
        task="multiclass",
        seed=0,
    )


def test_train_then_evaluate_writes_model_metrics_and_plots(prepared, tmp_path):
    cfg, report = _train(prepared, tmp_path)
    assert (tmp_path / "model.keras").exists()
    assert report["epochs_run"] == 2 and 1 <= report["best_epoch"] <= 2
    assert read_json(tmp_path / "dvclive" / "metrics.json")["step"] == 1
    metrics = _evaluate(prepared, tmp_path, cfg)
    labels = pd.read_parquet(prepared / "labels.parquet")
    n_test = ((labels["split"] == "test") & (labels["label_source"] == "observed")).sum()
    preds = pd.read_parquet(tmp_path / "predictions.parquet")
    assert metrics["n"] == len(preds) == n_test
    assert np.allclose(preds[["p_GALAXY", "p_QSO", "p_STAR"]].sum(axis=1), 1.0, atol=1e-4)
    assert metrics["accuracy"] == pytest.approx((preds["observed"] == preds["predicted"]).mean())
    assert np.array(metrics["confusion_matrix"]).sum() == n_test
    for name in (
        "confusion.png",
        "roc.png",
        "pr.png",
        "training.png",
        "gallery.png",
        "confusion.csv",
        "roc.csv",
    ):
        assert (tmp_path / "plots" / name).stat().st_size > 0, name


@pytest.mark.parametrize("model", ["tabular", "fusion"])
def test_same_seed_gives_the_same_training_history_and_test_metrics(prepared, tmp_path, model):
    # Op determinism + seeded shuffling and augmentation: bit-identical on the same machine,
    # so no tolerance is needed (another CPU or thread count may differ in the last bits).
    scores = []
    for run in ("a", "b"):
        cfg, report = _train(prepared, tmp_path / run, model=model)
        metrics = evaluate_model(
            dataset=prepared / "dataset.parquet",
            images=prepared / "images.npy",
            labels=prepared / "labels.parquet",
            model=tmp_path / run / "model.keras",
            train_report=tmp_path / run / "train.json",
            thresholds=tmp_path / run / "thresholds.json",
            metrics=tmp_path / run / "metrics.json",
            plots=tmp_path / run / "plots",
            predictions=tmp_path / run / "predictions.parquet",
            data=DATA,
            train=cfg,
            evaluate=Evaluate(),
            task="multiclass",
            seed=0,
        )
        scores.append((report["history"], metrics))
    assert scores[0][0] == scores[1][0]
    assert scores[0][1] == scores[1][1]
    preds = [pd.read_parquet(tmp_path / run / "predictions.parquet") for run in ("a", "b")]
    pd.testing.assert_frame_equal(preds[0], preds[1])


@pytest.mark.parametrize("kw", [{"loss": "focal"}, {"class_weight": "balanced"}])
def test_imbalance_options_train(prepared, tmp_path, kw):
    _, report = _train(prepared, tmp_path, model="tabular", epochs=1, **kw)
    assert np.isfinite(report["best_val_loss"])
    assert report["loss"] == kw.get("loss", "crossentropy")


def test_colour_inputs_widen_the_tabular_input_and_evaluate_reads_them(prepared, tmp_path):
    import keras

    cfg, report = _train(prepared, tmp_path, model="tabular", epochs=1, colour_inputs=True)
    model = keras.models.load_model(tmp_path / "model.keras")
    # u g r i z fiberMag_g, then the adjacent colours u-g g-r r-i i-z
    widths = {t.name: t.shape[-1] for t in model.inputs}
    assert widths == {"features": len(DATA.features) + 4}
    metrics = _evaluate(prepared, tmp_path, cfg)
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["n"] > 0
