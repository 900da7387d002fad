"""train.model gboost | forest | ensemble: trained, saved, evaluated, explained, predicted.

The tree models train without Keras, so their tests are in the quick tier; the
ensemble's train a tiny net and are ``slow``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from skysort.config import Data, Evaluate, Impute, Train
from skysort.data.atomic import read_json
from skysort.data.labels import feature_matrix
from skysort.model.saved import load_saved
from skysort.stages.evaluate import evaluate_model
from skysort.stages.train import train_model
from skysort.targets.trees import ExclusiveClasses, IndependentLabels
from tests.conftest import ROOT
from tests.factories import (
    ML_LABELS,
    make_catalog,
    make_multilabel_catalog,
    prepare_multilabel_inputs,
    prepare_training_inputs,
)

DATA = {
    "multiclass": Data(image_size=64),
    "multilabel": Data(image_size=64, labels=ML_LABELS, label_classes=("GALAXY", "QSO", "STAR")),
}
TINY_NET = {"epochs": 1, "batch_size": 32, "conv_filters": (4,), "dense_units": (8,)}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Both tasks' train inputs, once per module."""
    impute = Impute(n_estimators=10, max_iter=2)
    return {
        "multiclass": prepare_training_inputs(
            tmp_path_factory.mktemp("mc"), make_catalog(150), impute
        ),
        "multilabel": prepare_multilabel_inputs(
            tmp_path_factory.mktemp("ml"), make_multilabel_catalog(150), impute
        ),
    }


def _train(root, out, task, index=None, **kw):
    cfg = Train(**{**TINY_NET, **kw})
    report = train_model(
        dataset=root / "dataset.parquet", images=root / "images.npy",
        labels=root / "labels.parquet", train_index=index or root / "index.npy",
        model=out / "model", dvclive=out / "dvclive", train_report=out / "train.json",
        thresholds=out / "thresholds.json", contract=out / "contract.json",
        data=DATA[task], train=cfg, seed=0, task=task,
    )  # fmt: skip
    return cfg, report


def _evaluate(root, out, task, cfg, explain=0):
    return evaluate_model(
        dataset=root / "dataset.parquet", images=root / "images.npy",
        labels=root / "labels.parquet", model=out / "model", train_report=out / "train.json",
        thresholds=out / "thresholds.json", metrics=out / "metrics.json", plots=out / "plots",
        predictions=out / "predictions.parquet", data=DATA[task], train=cfg,
        evaluate=Evaluate(explain=explain, lime_samples=10), task=task, seed=0,
    )  # fmt: skip


def _assert_predict_reproduces_evaluate(root, out, task):
    """The saved model on the test objects, fed as predict feeds it, gives evaluate's p_*."""
    contract = read_json(out / "contract.json")
    preds = pd.read_parquet(out / "predictions.parquet").set_index("objid")
    dataset = pd.read_parquet(root / "dataset.parquet").set_index("objid").loc[preds.index]
    features = feature_matrix(dataset, tuple(contract["features"]))
    images = np.load(root / "images.npy")[dataset["row"].to_numpy()]
    if "image" not in contract["inputs"]:
        images = np.zeros((len(dataset), 0, 0, 3), np.uint8)
    saved = load_saved(out / "model")
    saved.check(contract, out / "model")
    proba = saved.predict_proba(images, features, 7)
    columns = [f"p_{n}" for n in contract["outputs"]]
    assert np.abs(proba - preds[columns].to_numpy()).max() < 1e-6


def test_trees_fit_each_train_row_once_though_the_index_repeats_rows(prepared, tmp_path):
    """Oversampled copies change nothing for a tree model: same rows, same predictions."""
    root = prepared["multiclass"]
    index = np.load(root / "index.npy")
    np.save(tmp_path / "repeated.npy", np.concatenate([index, index[:40], index[:10]]))
    np.save(tmp_path / "once.npy", np.unique(index))
    predictions = {}
    for name in ("repeated", "once"):
        out = tmp_path / name
        cfg, report = _train(root, out, "multiclass", index=tmp_path / f"{name}.npy",
                             model="gboost")  # fmt: skip
        assert report["train_rows"] == len(np.unique(index))
        _evaluate(root, out, "multiclass", cfg)
        predictions[name] = pd.read_parquet(out / "predictions.parquet")
    pd.testing.assert_frame_equal(predictions["repeated"], predictions["once"])


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
@pytest.mark.parametrize("kind", ["gboost", "forest"])
def test_a_tree_model_trains_evaluates_and_predicts_like_the_net(prepared, tmp_path, task, kind):
    root = prepared[task]
    cfg, report = _train(root, tmp_path, task, model=kind)
    assert report["model"] == kind and report["best_epoch"] is None
    assert report["train_rows"] == len(np.unique(np.load(root / "index.npy")))
    assert (tmp_path / "model/model.json").exists()
    assert (tmp_path / "dvclive/metrics.json").exists()  # dvc.yaml's train metrics
    contract = read_json(tmp_path / "contract.json")
    # the factories' survey has cutouts: the trees read their morphology too
    assert contract["model"] == kind and contract["inputs"] == ["image", "features"]
    if task == "multilabel":  # thresholds tuned on val through the target's decisions
        assert set(read_json(tmp_path / "thresholds.json")["thresholds"]) == set(ML_LABELS)
    scores = _evaluate(root, tmp_path, task, cfg)
    metrics = read_json(tmp_path / "metrics.json")
    assert metrics["model"] == kind
    lead = "f1_macro" if task == "multiclass" else "roc_auc_macro"
    assert metrics[lead] is not None and metrics[lead] > 0.4, metrics
    assert (tmp_path / "plots/confusion.png").exists() and (tmp_path / "plots/roc.csv").exists()
    # every plot and metric dvc.yaml declares for train and evaluate is there (else DVC fails)
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage, base in (("train", "${paths.dvclive}/"), ("evaluate", "${paths.plots}/")):
        for entry in stages[stage].get("plots", []) + stages[stage].get("metrics", []):
            name = next(iter(entry)) if isinstance(entry, dict) else entry
            if name.startswith(base):
                folder = "dvclive" if stage == "train" else "plots"
                assert (tmp_path / folder / name.removeprefix(base)).exists(), name
    ranked = scores["explanations"]["importance"]["ranked"]
    assert set(ranked) >= {"u", "g", "u-g", "concentration"}
    assert abs(sum(ranked.values()) - 1) < 1e-6
    assert (tmp_path / "plots/importance.png").exists()
    _assert_predict_reproduces_evaluate(root, tmp_path, task)


def test_a_tree_model_is_deterministic(prepared, tmp_path):
    root = prepared["multiclass"]
    for run in ("a", "b"):
        _train(root, tmp_path / run, "multiclass", model="gboost")
    a, b = (load_saved(tmp_path / r / "model") for r in ("a", "b"))
    x = np.random.default_rng(0).normal(18, 2, (20, 6)).astype(np.float32)
    images = np.load(root / "images.npy")[:20]
    assert np.array_equal(a.predict_proba(images, x, 8), b.predict_proba(images, x, 8))


def test_without_cutouts_a_tree_model_reads_the_features_alone():
    from skysort.model.trees import fit_tree, tree_columns

    rng = np.random.default_rng(0)
    x = rng.normal(18, 2, (60, 6)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(int) * 2  # GALAXY or STAR by u-g
    columns, colours = tree_columns(DATA["multiclass"].features, {}, False)
    model, _ = fit_tree("gboost", "multiclass", x, y, n_outputs=3, columns=columns,
                        colours=colours, seed=0)  # fmt: skip
    assert model.inputs == ("features",) and len(model.columns) == 6 + 4
    proba = model.predict_proba(np.zeros((60, 0, 0, 3), np.uint8), x, 16)
    assert (proba[:, 1] == 0).all() and (proba.argmax(axis=1) == y).mean() > 0.9


def test_explain_says_gradcam_is_not_available_for_a_tree(prepared, tmp_path):
    from skysort.evaluation.importance import availability

    root = prepared["multiclass"]
    cfg, _ = _train(root, tmp_path, "multiclass", model="forest")
    saved = load_saved(tmp_path / "model")
    assert availability(saved)["gradcam"] == "not available: a forest model has no image branch"
    assert availability(saved)["importance"] == "available"
    report = _evaluate(root, tmp_path, "multiclass", cfg, explain=2)  # asked for, not failing
    assert report["explanations"]["objects"] == 0
    assert "not available" in report["explanations"]["skipped"]
    assert not (tmp_path / "plots/explain").exists()


def test_the_ensemble_weight_minimises_val_log_loss_and_ignores_other_rows():
    from skysort.model.ensemble import combine, fit_weight

    head = ExclusiveClasses()
    y = np.array([0, 1, 2, 0])
    right = np.eye(3)[y] * 0.9 + 0.1 / 3
    wrong = np.eye(3)[(y + 1) % 3] * 0.9 + 0.1 / 3
    assert fit_weight(head, y, right, wrong)[0] == 1.0
    assert fit_weight(head, y, wrong, right)[0] == 0.0
    half = fit_weight(head, y, np.full((4, 3), 1 / 3), right)[0]
    assert half == 0.0
    trees = {"gboost": (None, wrong), "forest": (None, right)}
    tree, weight, report = combine(head, y, wrong, trees)
    assert (tree, weight) == ("forest", 0.0) and report["val_rows"] == 4


def test_tree_heads_cover_unknown_labels_and_classes_never_seen():
    from sklearn.tree import DecisionTreeClassifier

    x = np.arange(12, dtype=float).reshape(-1, 1)
    y = np.array([0, 0, 0, 2, 2, 2, -1, 0, 2, 0, 2, 2])  # class 1 never seen, one unknown
    members = ExclusiveClasses().fit(DecisionTreeClassifier, x, y)
    p = ExclusiveClasses().proba(members, x, 3)
    assert p.shape == (12, 3) and (p[:, 1] == 0).all() and np.allclose(p.sum(axis=1), 1)
    labels = np.array([[1, 0], [0, 0], [np.nan, 0], [1, np.nan]] * 3, dtype=float)
    members = IndependentLabels().fit(DecisionTreeClassifier, x, labels)
    assert members[1] == 0.0  # label 2 is never positive: a constant
    p = IndependentLabels().proba(members, x, 2)
    assert (p[:, 1] == 0).all()
    assert np.isfinite(IndependentLabels().log_loss(labels, p))


@pytest.mark.slow  # trains a (tiny) Keras net
@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_the_ensemble_fits_its_weight_on_val_rows_only(prepared, tmp_path, monkeypatch, task):
    import skysort.stages.train as stage
    from skysort.model.inputs import load_survey

    root = prepared[task]
    seen = {}
    real = stage.combine

    def spy(head, val_y, net_val, trees):
        seen["y"], seen["n"] = val_y, {k: len(p) for k, (_, p) in trees.items()}
        return real(head, val_y, net_val, trees)

    monkeypatch.setattr(stage, "combine", spy)
    cfg, report = _train(root, tmp_path, task, model="ensemble")
    survey = load_survey(root / "dataset.parquet", root / "images.npy",
                         root / "labels.parquet", DATA[task], task)  # fmt: skip
    val, test = survey.scored_rows("val"), survey.scored_rows("test")
    # the weight and the tree were chosen on the observed val rows: no test row took part
    np.testing.assert_array_equal(seen["y"], survey.y[val])
    assert seen["n"] == {"gboost": len(val), "forest": len(val)} and len(test) != len(val)
    mix = report["ensemble"]
    assert report["model"] == "ensemble" and report["net_model"] == "fusion"
    assert 0.0 <= mix["weight_net"] <= 1.0 and mix["tree"] in ("gboost", "forest")
    assert mix["val_log_loss"]["ensemble"] <= min(mix["val_log_loss"].values()) + 1e-12
    meta = json.loads((tmp_path / "model/model.json").read_text())
    assert meta["weight_net"] == mix["weight_net"] and meta["net"]["kind"] == "fusion"
    assert read_json(tmp_path / "contract.json")["inputs"] == ["image", "features"]
    scores = _evaluate(root, tmp_path, task, cfg, explain=1)
    assert scores["explanations"]["objects"] == 1  # Grad-CAM and LIME of its net
    assert "the ensemble's net" in scores["explanations"]["explains"]
    assert (tmp_path / "plots/importance.csv").exists()
    _assert_predict_reproduces_evaluate(root, tmp_path, task)


def test_compare_runs_the_tree_models_once_and_tabulates_them_without_epochs():
    from skysort.config import Compare
    from skysort.pipeline.compare import expand_grid, format_table, keras_row

    grid = expand_grid(Compare(models=("gboost", "forest", "ensemble"),
                               image_encoders=("small_cnn", "mobilenetv3small")))  # fmt: skip
    assert [v.name for v in grid] == ["study-gboost", "study-forest", "study-ensemble-small_cnn",
                                      "study-ensemble-mobilenetv3small-all"]  # fmt: skip
    report = {"best_epoch": None, "epochs_run": None, "fit_seconds": 0.5, "history": {}}
    metrics = {"accuracy": 0.9, "f1_macro": 0.8, "per_class": {"STAR": {"f1": 0.7}}}
    row = keras_row(grid[0], report, metrics)
    assert row["seconds_unit"] == "s fit" and row["best_epoch"] is None
    assert "0.50 s fit" in format_table([row], ["STAR"])


def test_a_model_folder_replaces_a_model_file_and_back(tmp_path):
    from skysort.pipeline.outputs import replaced_together

    final = tmp_path / "model.keras"
    final.write_bytes(b"a net")
    with replaced_together([final]) as (staged,):  # a tree model's folder over the net's file
        staged.mkdir()
        (staged / "model.json").write_text("{}")
    assert (final / "model.json").exists()
    with replaced_together([final]) as (staged,):  # and a net's file over the folder
        staged.write_bytes(b"a net again")
    assert final.read_bytes() == b"a net again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


@pytest.mark.slow
def test_without_cutouts_the_ensemble_mixes_the_tabular_net_with_plain_trees(prepared, tmp_path):
    """Tabular-only data (``images: none``: a ``(rows, 0, 0, 3)`` images.npy) trains an
    ensemble of the tabular net and trees on the features alone, read back alike."""
    import shutil

    from skysort.data.packed import PackedWriter

    root = tmp_path / "inputs"
    root.mkdir()
    for name in ("dataset.parquet", "labels.parquet", "index.npy"):
        shutil.copy(prepared["multiclass"] / name, root / name)
    rows = len(pd.read_parquet(root / "dataset.parquet"))
    with PackedWriter(root / "images.npy", rows, (0, 0, 3), every_row=False):
        pass  # as clean packs a survey without cutouts
    cfg, report = _train(root, tmp_path, "multiclass", model="ensemble")
    assert report["net_model"] == "tabular" and report["ensemble"]["tree"] in ("gboost", "forest")
    meta = json.loads((tmp_path / "model/model.json").read_text())
    assert meta["net"]["kind"] == "tabular" and meta["trees"]["morphology"] is False
    assert read_json(tmp_path / "contract.json")["inputs"] == ["features"]
    scores = _evaluate(root, tmp_path, "multiclass", cfg, explain=1)
    assert scores["explanations"]["objects"] == 0  # no image branch: said, not failed
    assert "not available" in scores["explanations"]["skipped"]
    assert (tmp_path / "plots/importance.csv").exists()
    _assert_predict_reproduces_evaluate(root, tmp_path, "multiclass")
