"""Explanations: Grad-CAM and LIME on tiny untrained models, and the evaluate stage's PNGs."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from skysort.config import Data, Evaluate, Impute, Params, Train
from skysort.evaluation.explain import (
    check_split,
    gradcam,
    lime_masks,
    predictor,
    split_at_feature_map,
)
from skysort.model.build import build_model

SIZE = 16
TINY = {"conv_filters": (4, 8), "dense_units": (8,), "dropout": 0.0, "modality_dropout": 0.0}


def _model(kind: str = "fusion", task: str = "multiclass", **kw) -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_model(Train(model=kind, **{**TINY, **kw}), 3, 3, SIZE, task=task)


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] - SIZE / 2
    blob = 200 * np.exp(-((xx - 3) ** 2 + yy**2) / 6.0)
    return np.clip(blob[..., None] + rng.normal(30, 8, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)


FEATURES = np.array([0.5, -1.0, 2.0], dtype="float32")


@pytest.mark.parametrize(
    ("kind", "task", "extra"),
    [
        ("image", "multiclass", {}),
        ("fusion", "multiclass", {}),
        ("fusion", "multilabel", {}),
        ("fusion", "multilabel", {"head_conv_filters": (4,)}),
        ("image", "multiclass", {"pooling": "flatten", "convs_per_block": 2}),
        ("fusion", "multiclass", {"pooling": "flatten", "center_crop": 8}),
    ],
)
def test_the_split_model_gives_the_models_own_outputs(kind, task, extra):
    model = _model(kind, task, **extra)
    branch = split_at_feature_map(model)
    feats = FEATURES[None] if kind == "fusion" else None
    check_split(model, branch, _image()[None], feats)  # raises on any difference


def test_a_tabular_model_has_no_image_branch():
    assert split_at_feature_map(_model("tabular")) is None


@pytest.mark.parametrize("kind", ["image", "fusion"])
def test_gradcam_heatmap_has_the_image_shape_is_finite_and_non_negative(kind):
    model = _model(kind)
    feats = FEATURES if kind == "fusion" else None
    heat = gradcam(split_at_feature_map(model), _image(), feats, target=1)
    assert heat.shape == (SIZE, SIZE)
    assert np.isfinite(heat).all() and (heat >= 0).all() and heat.max() <= 1.0


def test_gradcam_of_a_center_crop_model_is_zero_outside_the_crop():
    model = _model("image", center_crop=8)
    branch = split_at_feature_map(model)
    check_split(model, branch, _image()[None], None)
    heat = gradcam(branch, _image(), None, target=1)
    assert branch.crop == 8 and heat.shape == (SIZE, SIZE)
    outside = np.ones((SIZE, SIZE), bool)
    outside[4:12, 4:12] = False  # CenterCrop's window: (16 - 8) // 2 from top and left
    assert (heat[outside] == 0).all() and heat[~outside].max() > 0


def test_gradcam_changes_when_the_conv_weights_change():
    model = _model("image")
    branch = split_at_feature_map(model)
    before = gradcam(branch, _image(), None, target=0)
    conv = model.get_layer("image_encoder").get_layer("backbone").get_layer("conv_1")
    kernel, bias = conv.get_weights()
    rng = np.random.default_rng(1)
    conv.set_weights([kernel * rng.uniform(0.0, 2.0, kernel.shape).astype("float32"), bias])
    after = gradcam(branch, _image(), None, target=0)
    assert before.shape == after.shape and not np.allclose(before, after)


def test_lime_gives_a_mask_of_the_images_shape_per_target_and_the_same_one_for_a_seed():
    model = _model("fusion")
    predict = predictor(model, FEATURES, batch_size=64)
    masks = lime_masks(predict, _image(), [0, 2], num_samples=40, seed=3)
    assert set(masks) == {0, 2}
    for mask in masks.values():
        assert mask.shape == (SIZE, SIZE) and mask.dtype == bool
    again = lime_masks(predict, _image(), [0, 2], num_samples=40, seed=3)
    assert all(np.array_equal(masks[k], again[k]) for k in masks)


# ----------------------------------------------------------------------------- evaluate stage


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from tests.factories import make_catalog, prepare_training_inputs

    root = tmp_path_factory.mktemp("explain-prepared")
    return prepare_training_inputs(root, make_catalog(90), Impute(n_estimators=10, max_iter=1))


def _evaluate(root, out, cfg: Train, explain: int, data: Data, task: str = "multiclass"):
    from skysort.stages.evaluate import evaluate_model

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
        evaluate=Evaluate(explain=explain, lime_samples=30),
        task=task,
        seed=7,
    )


def _save_untrained(out, cfg: Train, data: Data, task: str = "multiclass") -> None:
    n_out = len(data.labels if task == "multilabel" else data.classes)
    keras.utils.set_random_seed(0)
    build_model(cfg, len(data.features), n_out, data.image_size, task=task).save(
        out / "model.keras"
    )


@pytest.mark.slow
@pytest.mark.parametrize("model", ["image", "fusion"])
def test_evaluate_explains_n_test_objects_into_pngs_listed_in_its_report(prepared, tmp_path, model):
    from skysort.stages.evaluate import STAGE

    data = Data(image_size=64)
    cfg = Train(model=model, **TINY)
    _save_untrained(tmp_path, cfg, data)
    report = _evaluate(prepared, tmp_path, cfg, 3, data)
    folder = tmp_path / "plots" / "explain"
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert len(pngs) == 3 and all((folder / p).stat().st_size > 0 for p in pngs)
    ex = report["explanations"]
    assert ex["objects"] == 3 and sorted(f.split("/")[-1] for f in ex["files"]) == pngs
    test_ids = set(pd.read_parquet(tmp_path / "predictions.parquet")["objid"].astype(str))
    assert set(ex["explained"]) <= test_ids
    assert "explanations" not in json.loads((tmp_path / "metrics.json").read_text())
    # the same seed explains the same objects the same way
    again = _evaluate(prepared, tmp_path, cfg, 3, data)["explanations"]
    assert again["explained"] == ex["explained"]
    params = Params(paths={"plots": tmp_path / "plots"})
    (shown,) = [a for a in STAGE.summarize(report, params) if a.key == "evaluate-explanations"]
    assert sorted(p.path.name for p in shown.pictures) == pngs  # each one, as a picture


@pytest.mark.slow
def test_evaluate_with_explain_zero_writes_no_explanations(prepared, tmp_path):
    data = Data(image_size=64)
    cfg = Train(model="fusion", **TINY)
    _save_untrained(tmp_path, cfg, data)
    report = _evaluate(prepared, tmp_path, cfg, 0, data)
    assert not (tmp_path / "plots" / "explain").exists()
    assert report["explanations"] == {"objects": 0}
    assert (tmp_path / "plots" / "gallery.png").exists()


@pytest.mark.slow
def test_a_tabular_model_gets_no_image_explanation_and_the_report_says_so(prepared, tmp_path):
    from skysort.stages.evaluate import STAGE

    data = Data(image_size=64)
    cfg = Train(model="tabular", **TINY)
    _save_untrained(tmp_path, cfg, data)
    report = _evaluate(prepared, tmp_path, cfg, 2, data)
    assert not (tmp_path / "plots" / "explain").exists()
    assert "no image branch" in report["explanations"]["skipped"]
    (md,) = [a for a in STAGE.summarize(report, Params()) if a.key == "evaluate-explanations"]
    assert "no image branch" in md.text


@pytest.fixture(scope="module")
def prepared_multilabel(tmp_path_factory):
    from tests.factories import make_multilabel_catalog, prepare_multilabel_inputs

    root = tmp_path_factory.mktemp("explain-ml")
    return prepare_multilabel_inputs(
        root, make_multilabel_catalog(90), Impute(n_estimators=10, max_iter=1, confidence=0.7)
    )


@pytest.mark.slow
def test_multilabel_evaluate_explains_each_positive_label(prepared_multilabel, tmp_path):
    from tests.factories import ML_LABELS

    data = Data(image_size=64, labels=ML_LABELS, label_classes=("GALAXY", "QSO", "STAR"))
    cfg = Train(model="fusion", **TINY)
    _save_untrained(tmp_path, cfg, data, "multilabel")
    # threshold 0 makes every label positive: each one gets explained
    (tmp_path / "thresholds.json").write_text(json.dumps(
        {"task": "multilabel", "labels": list(ML_LABELS),
         "thresholds": dict.fromkeys(ML_LABELS, 0.0)}
    ))  # fmt: skip
    report = _evaluate(prepared_multilabel, tmp_path, cfg, 2, data, "multilabel")
    ex = report["explanations"]
    assert len(list((tmp_path / "plots" / "explain").glob("*.png"))) == ex["objects"] == 2
    for explained in ex["explained"].values():
        assert [e.split(" ")[0] for e in explained] == list(ML_LABELS)
