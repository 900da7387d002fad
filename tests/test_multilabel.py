"""The multilabel task's pieces on tiny data: config, metrics, thresholds, ML-ROS, split, impute."""

import numpy as np
import pandas as pd
import pytest

from skysort.config import Balance, ConfigError, Data, Impute, validate_params
from skysort.data.atomic import read_json, write_npy, write_parquet
from skysort.data.labels import label_matrix, observed_matrix
from skysort.data.mlros import imbalance_ratios, ml_ros, positive_counts
from skysort.data.splits import assign_multilabel_splits
from skysort.evaluation.metrics import (
    binary_scores,
    multilabel_scores,
    tune_threshold,
    tune_thresholds,
)
from skysort.stages.balance import balance_train_rows
from skysort.stages.impute import impute_labels

NAN = np.nan
LABELS = ("a", "b", "c")


# ----------------------------------------------------------------------------- config


def test_task_defaults_to_multiclass_and_labels_are_galaxy_zoo():
    params = validate_params({})
    assert params.task == "multiclass"
    assert params.data.labels == ("gz_elliptical", "gz_spiral", "gz_edge_on", "gz_merger")
    assert params.train.monitored("multiclass") == "val_loss"
    assert params.train.monitored("multilabel") == "val_auc"


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"task": "multitask"}, "task"),
        ({"task": "multilabel", "impute": {"confidence": {"nope": 0.9}}}, "impute.confidence"),
        ({"balance": {"method": "ml_ros"}}, "balance.method"),
        ({"impute": {"missing_labels": "guess"}}, "impute.missing_labels"),
        ({"train": {"optimizer": "sgd"}}, "train.optimizer"),
        ({"train": {"flips": ["diagonal"]}}, "train.flips"),
        ({"data": {"labels": ["r"]}}, "data"),
        ({"source": {"skyserver": {"zoo_threshold": 1.5}}}, "source.skyserver.zoo_threshold"),
    ],
)
def test_bad_multilabel_values_fail_at_load_time_naming_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_params(raw)


# ----------------------------------------------------------------------------- metrics


def test_binary_scores_count_only_known_entries():
    y = np.array([1, 0, NAN, 1, 0, NAN])
    p = np.array([0.9, 0.2, 0.99, 0.4, 0.6, np.nan])  # a NaN label's score never counts
    s = binary_scores(y, p, 0.5)
    assert (s["tp"], s["fp"], s["tn"], s["fn"]) == (1, 1, 1, 1)
    assert s["n"] == 4 and s["precision"] == 0.5 and s["recall"] == 0.5
    assert s["specificity"] == 0.5 and s["gmean"] == pytest.approx(0.5)
    assert s["roc_auc"] == 0.75 and s["pr_auc"] is not None


def test_multilabel_scores_ignore_nan_labels():
    y = np.array([[1, 0, NAN], [0, 1, 1], [NAN, NAN, NAN], [1, 1, 0]])
    p = np.array([[0.8, 0.1, 0.9], [0.3, 0.7, 0.6], [0.9, 0.9, 0.9], [0.6, 0.2, 0.1]])
    s = multilabel_scores(y, p, LABELS)
    assert s["n"] == 3 and s["known_labels"] == 8
    # one wrong known entry: row 3's label b (0.2 < 0.5 but truth 1)
    assert s["hamming_loss"] == pytest.approx(1 / 8)
    assert s["subset_accuracy"] == pytest.approx(2 / 3)
    assert s["jaccard"] == pytest.approx((1 + 1 + 1 / 2) / 3)
    # filling the NaN entries with anything changes nothing
    filled = np.where(np.isnan(y), 1 - (p > 0.5), y)
    assert multilabel_scores(filled, p, LABELS)["hamming_loss"] > s["hamming_loss"]
    for name in LABELS:
        assert s["per_label"][name]["n"] == int((~np.isnan(y[:, LABELS.index(name)])).sum())


def test_thresholds_change_predictions_per_label():
    y = np.array([[1, 1], [0, 0], [1, 0], [0, 1]], dtype=float)
    p = np.array([[0.3, 0.9], [0.1, 0.2], [0.35, 0.4], [0.2, 0.8]])
    at_half = multilabel_scores(y, p, ("a", "b"))
    tuned = tune_thresholds(y, p, ("a", "b"), "f1")
    assert 0.2 < tuned["a"] < 0.3  # separates 0.3 / 0.35 from 0.2 / 0.1
    after = multilabel_scores(y, p, ("a", "b"), tuned)
    assert after["per_label"]["a"]["f1"] == 1.0 > at_half["per_label"]["a"]["f1"]
    assert after["per_label"]["a"]["threshold"] == tuned["a"]


@pytest.mark.parametrize("objective", ["f1", "gmean"])
def test_tune_threshold_ignores_nan_and_falls_back_to_half(objective):
    y = np.array([0, 0, 1, 1, NAN])
    p = np.array([0.1, 0.4, 0.6, 0.9, 0.5])
    assert 0.4 < tune_threshold(y, p, objective) < 0.6
    assert tune_threshold(np.array([1.0, 1.0, NAN]), np.array([0.2, 0.3, 0.4]), objective) == 0.5


# ----------------------------------------------------------------------------- ML-ROS


def test_ml_ros_raises_each_minority_labels_count():
    rng = np.random.default_rng(0)
    n = 200
    y = np.column_stack([
        rng.random(n) < 0.6, rng.random(n) < 0.5, rng.random(n) < 0.05, rng.random(n) < 0.06
    ]).astype(float)  # fmt: skip
    y[rng.random(y.shape) < 0.1] = np.nan
    before = positive_counts(y)
    ratios = imbalance_ratios(before)
    minority = np.flatnonzero(ratios > np.nanmean(ratios))
    assert set(minority) == {2, 3}
    picked = ml_ros(y, 25, np.random.default_rng(1))
    assert n < len(picked) <= n + 50 and set(range(n)) <= set(picked)
    after = positive_counts(y[picked])
    assert (after[minority] > before[minority]).all()
    assert (after >= before).all()
    assert np.nanmax(imbalance_ratios(after)) < np.nanmax(ratios)


def _labels_table(y, split, sources=None):
    df = pd.DataFrame({"objid": np.arange(len(y), dtype=np.int64),
                       "row": np.arange(len(y), dtype=np.int64), "split": split})  # fmt: skip
    for k, name in enumerate(LABELS):
        df[name] = y[:, k]
        df[f"{name}_source"] = pd.array(
            np.where(np.isnan(y[:, k]), "unknown", "observed"), dtype="string"
        )
        df[f"{name}_confidence"] = np.where(np.isnan(y[:, k]), np.nan, 1.0)
    return df


@pytest.mark.parametrize("missing", ["impute", "mask", "drop"])
def test_balance_multilabel_oversamples_minority_and_drops_rows_with_nan_on_drop(tmp_path, missing):
    rng = np.random.default_rng(3)
    y = np.column_stack([rng.random(100) < 0.5, rng.random(100) < 0.4, rng.random(100) < 0.05])
    y = y.astype(float)
    y[:10, 1] = np.nan
    y[10:12] = np.nan
    split = np.array(["train"] * 80 + ["val"] * 10 + ["test"] * 10)
    write_parquet(tmp_path / "labels.parquet", _labels_table(y, split))
    report = balance_train_rows(
        labels=tmp_path / "labels.parquet",
        train_index=tmp_path / "index.npy",
        balance_report=tmp_path / "b.json",
        balance=Balance(),
        seed=0,
        task="multilabel",
        data=Data(labels=LABELS),
        impute=Impute(missing_labels=missing),
    )
    index = np.load(tmp_path / "index.npy")
    assert set(split[index]) == {"train"}
    assert report["after"]["c"] > report["before"]["c"]
    usable = set(np.flatnonzero(~np.isnan(y).all(axis=1)))
    if missing == "drop":
        usable = set(np.flatnonzero(~np.isnan(y).any(axis=1)))
    assert set(index) == usable & set(range(80))
    assert read_json(tmp_path / "b.json")["rows_after"] == len(index)


# ----------------------------------------------------------------------------- split


def test_multilabel_split_is_stratified_seeded_and_keeps_unlabelled_rows_in_train():
    rng = np.random.default_rng(0)
    y = np.column_stack([rng.random(500) < 0.5, rng.random(500) < 0.1]).astype(float)
    y[:40] = np.nan
    split = assign_multilabel_splits(y, 0.2, 0.15, seed=1)
    assert (split[:40] == "train").all()
    assert np.array_equal(split, assign_multilabel_splits(y, 0.2, 0.15, seed=1))
    scored = ~np.isnan(y).all(axis=1)
    for name, share in (("test", 0.2), ("val", 0.15)):
        assert abs((split[scored] == name).mean() - share) < 0.01
        rare = y[(split == name), 1]
        assert abs(np.nanmean(rare) - np.nanmean(y[scored, 1])) < 0.02


# ----------------------------------------------------------------------------- impute


@pytest.fixture
def ml_dataset(tmp_path):
    """Rows whose label ``a`` follows the colour u-g and ``b`` the image's size; some NaN."""
    from tests.factories import make_catalog

    rng = np.random.default_rng(0)
    df = make_catalog(240)
    ug = (df["u"] - df["g"]).to_numpy()
    df["a"] = (ug > np.median(ug)).astype(float)
    big = rng.random(len(df)) < 0.4
    df["b"] = big.astype(float)
    df["c"] = (rng.random(len(df)) < 0.3).astype(float)
    hidden = rng.random((len(df), 3)) < 0.25
    truth = df[list(LABELS)].to_numpy().copy()
    for k, name in enumerate(LABELS):
        df.loc[hidden[:, k], name] = np.nan
    df["split"] = assign_multilabel_splits(label_matrix(df, LABELS), 0.2, 0.15, 0)
    df["row"] = np.arange(len(df), dtype=np.int64)
    yy, xx = np.mgrid[:64, :64] - 31.5
    width = np.where(big, 60.0, 6.0)
    images = 20 + 200 * np.exp(-(xx**2 + yy**2)[None] / width[:, None, None])
    images = np.repeat(images[..., None], 3, axis=-1) + rng.normal(0, 3, (len(df), 64, 64, 3))
    write_parquet(tmp_path / "dataset.parquet", df)
    write_npy(tmp_path / "images.npy", np.clip(images, 0, 255).astype(np.uint8))
    return tmp_path, truth


def _impute_ml(root, **kw):
    return impute_labels(
        dataset=root / "dataset.parquet",
        images=root / "images.npy",
        labels=root / "labels.parquet",
        impute_report=root / "impute.json",
        data=Data(labels=LABELS),
        task="multilabel",
        impute=Impute(n_estimators=30, max_iter=3, **kw),
        seed=0,
    )


def test_multilabel_impute_fills_train_labels_with_provenance_and_holdout_scores(ml_dataset):
    root, truth = ml_dataset
    report = _impute_ml(root, confidence={"a": 0.7, "b": 0.7, "c": 0.99})
    labels = pd.read_parquet(root / "labels.parquet")
    dataset = pd.read_parquet(root / "dataset.parquet")
    for name in LABELS:
        observed = labels[f"{name}_source"] == "observed"
        assert (labels.loc[observed, name] == dataset.loc[observed, name]).all()
        imputed = labels[f"{name}_source"] == "imputed"
        assert imputed.sum() == report["per_label"][name]["filled"]
        assert set(labels.loc[imputed, "split"]) <= {"train"}
        assert dataset.loc[imputed, name].isna().all()
        assert (
            labels.loc[labels["split"] != "train", name]
            .isna()
            .equals(dataset.loc[dataset["split"] != "train", name].isna())
        )
    for name in ("a", "b"):  # learnable from colour / image: filled, and mostly right
        imputed = (labels[f"{name}_source"] == "imputed").to_numpy()
        assert imputed.sum() > 5
        k = LABELS.index(name)
        assert (labels.loc[imputed, name].to_numpy() == truth[imputed, k]).mean() > 0.85
        hold = report["per_label"][name]["holdout"]
        assert {"tp", "fp", "tn", "fn", "precision", "recall", "roc_auc", "pr_auc"} <= set(hold)
        assert hold["roc_auc"] > 0.85
    # observed_matrix never lets an imputed label judge
    assert np.isnan(
        observed_matrix(labels, LABELS)[(labels["a_source"] == "imputed").to_numpy(), 0]
    ).all()


@pytest.mark.parametrize("missing", ["mask", "drop"])
def test_multilabel_impute_leaves_nan_for_mask_and_drop(ml_dataset, missing):
    root, _ = ml_dataset
    report = _impute_ml(root, missing_labels=missing)
    labels = pd.read_parquet(root / "labels.parquet")
    dataset = pd.read_parquet(root / "dataset.parquet")
    assert report["filled"] == 0
    assert labels[list(LABELS)].isna().equals(dataset[list(LABELS)].isna())


# ----------------------------------------------------------------------------- SkyServer


def test_multilabel_sql_joins_galaxy_zoo_votes_and_multiclass_sql_does_not():
    from skysort.config import Query
    from skysort.sources.skyserver.sql_build import build_sql

    plain = build_sql(Query(), Data(), 10)
    zoo = build_sql(Query(), Data(), 10, zoo=True)
    assert "zooSpec" not in plain and "p_el" not in plain
    assert "LEFT JOIN zooSpec AS zs ON zs.specobjid = s.specobjid" in zoo
    for column in ("zs.nvote", "zs.p_el", "zs.p_cs", "zs.p_edge", "zs.p_mg"):
        assert column in zoo
    assert (
        zoo.replace(",\n    zs.nvote, zs.p_el, zs.p_cs, zs.p_edge, zs.p_mg", "").replace(
            "\nLEFT JOIN zooSpec AS zs ON zs.specobjid = s.specobjid", ""
        )
        == plain
    )


def test_zoo_labels_threshold_vote_fractions_and_blank_too_few_votes():
    from skysort.config import SkyServerSource
    from skysort.sources.skyserver.galaxyzoo import zoo_labels

    raw = pd.DataFrame({
        "objid": [1, 2, 3, 4],
        "nvote": [30, 30, 5, np.nan],
        "p_el": [0.9, 0.1, 0.95, np.nan],
        "p_cs": [0.05, 0.85, 0.0, np.nan],
        "p_edge": [0.0, 0.5, 0.0, np.nan],
        "p_mg": [0.05, 0.8, 0.0, np.nan],
    })  # fmt: skip
    out = zoo_labels(raw, SkyServerSource(zoo_threshold=0.8, zoo_min_votes=10))
    y = label_matrix(out, ("gz_elliptical", "gz_spiral", "gz_edge_on", "gz_merger"))
    np.testing.assert_array_equal(y[:2], [[1, 0, 0, 0], [0, 1, 0, 1]])
    assert np.isnan(y[2:]).all()  # too few votes; no Galaxy Zoo entry


# ----------------------------------------------------------------------------- compare


def test_compare_table_has_the_multilabel_columns():
    from skysort.pipeline.compare import Variant, baseline_rows, format_table, keras_row

    y = np.array([[1, 0, NAN], [0, 1, 1], [1, NAN, 0], [0, 0, 1]])
    p = np.array([[0.8, 0.1, 0.9], [0.3, 0.7, 0.6], [0.6, 0.9, 0.1], [0.2, 0.4, 0.7]])
    metrics = multilabel_scores(y, p, LABELS)
    report = {"best_epoch": 2, "epochs_run": 3, "train_val_accuracy_gap": 0.01,
              "seconds_per_epoch": 1.0, "parameters": 10}  # fmt: skip
    rows = [keras_row(Variant("study-tabular", "tabular", None, None), report, metrics)]
    rows += baseline_rows({"models": {"gboost": {**metrics, "fit_seconds": 0.5}}})
    lines = format_table(rows, LABELS).splitlines()
    assert "macro AUC" in lines[0] and "F1 c" in lines[0]
    cells = lines[2].split()
    assert cells[4] == f"{1 - metrics['hamming_loss']:.4f}"
    assert cells[6] == f"{metrics['roc_auc_macro']:.4f}"
    assert lines[3].startswith("baseline-gboost")
