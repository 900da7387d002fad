"""impute, balance and baselines on a tiny hand-made dataset."""

import numpy as np
import pandas as pd
import pytest

from skysort.config import Balance, Baselines, Data, Impute
from skysort.data.atomic import read_json, write_parquet
from skysort.data.splits import assign_splits
from skysort.stages.balance import balance_train_rows
from skysort.stages.baselines import fit_baselines
from skysort.stages.impute import impute_labels
from tests.factories import make_catalog

DATA = Data()


@pytest.fixture
def dataset_path(tmp_path):
    df = make_catalog(150, missing_labels=15)
    df["split"] = assign_splits(df["class"], 0.2, 0.2, seed=0)
    df["row"] = np.arange(len(df), dtype=np.int64)
    path = tmp_path / "dataset.parquet"
    write_parquet(path, df)
    return path


def _impute(tmp_path, dataset_path, **kw):
    return impute_labels(
        dataset=dataset_path,
        images=tmp_path / "images.npy",
        labels=tmp_path / "labels.parquet",
        impute_report=tmp_path / "impute.json",
        data=DATA,
        impute=Impute(n_estimators=30, **kw),
        seed=0,
        task="multiclass",
    )


def test_impute_fills_train_labels_and_records_provenance(tmp_path, dataset_path):
    report = _impute(tmp_path, dataset_path, confidence=0.6)
    labels = pd.read_parquet(tmp_path / "labels.parquet")
    dataset = pd.read_parquet(dataset_path)
    observed = labels["label_source"] == "observed"
    # Observed labels pass through untouched; imputed ones exist only where the class was missing.
    assert (labels.loc[observed, "label"] == dataset.loc[observed, "class"]).all()
    imputed = labels["label_source"] == "imputed"
    assert imputed.sum() == report["imputed"] > 0
    assert dataset.loc[imputed, "class"].isna().all()
    assert (labels.loc[imputed, "confidence"] >= 0.6).all()
    assert set(labels.loc[imputed, "split"]) == {"train"}
    # The colours separate these classes well: the masked hold-out must say so.
    assert report["holdout"]["accuracy"] > 0.8
    # The rows that were imputed are the ones whose true (hidden) class the factory knows.
    truth = make_catalog(150)["class"]
    assert (labels.loc[imputed, "label"] == truth[imputed]).mean() > 0.8


def test_the_holdout_self_trains_on_at_most_holdout_max_rows(tmp_path):
    df = make_catalog(400, missing_labels=20)
    df["split"] = assign_splits(df["class"], 0.2, 0.2, seed=0)
    df["row"] = np.arange(len(df), dtype=np.int64)
    write_parquet(path := tmp_path / "big.parquet", df)
    train = (df["split"] == "train").to_numpy()
    whole = _impute(tmp_path, path, confidence=0.6)
    capped = _impute(tmp_path, path, confidence=0.6, holdout_max_rows=100)
    # 20 % of the known train rows are hidden: of all of them, or of the 100 drawn
    assert whole["holdout"]["hidden"] == round((train & df["class"].notna()).sum() * 0.2)
    assert 0 < capped["holdout"]["hidden"] <= 20 < whole["holdout"]["hidden"]
    # what the imputer itself fills does not depend on the diagnostic's cap
    assert capped["imputed"] == whole["imputed"] > 0


def test_impute_disabled_leaves_unknown(tmp_path, dataset_path):
    report = _impute(tmp_path, dataset_path, enabled=False)
    labels = pd.read_parquet(tmp_path / "labels.parquet")
    assert report["imputed"] == 0
    assert (labels["label_source"] == "unknown").sum() == 15
    assert labels.loc[labels["label_source"] == "unknown", "label"].isna().all()


def test_balance_oversamples_by_row_index(tmp_path):
    labels = pd.DataFrame(
        {
            "row": np.arange(40, dtype=np.int64),
            "split": ["train"] * 34 + ["test"] * 6,
            "label": pd.array(
                ["GALAXY"] * 20 + ["STAR"] * 10 + ["QSO"] * 3 + [None] + ["STAR"] * 6,
                dtype="string",
            ),
        }
    )
    write_parquet(tmp_path / "labels.parquet", labels)
    report = balance_train_rows(
        labels=tmp_path / "labels.parquet",
        train_index=tmp_path / "index.npy",
        balance_report=tmp_path / "b.json",
        balance=Balance(),
        seed=0,
        data=Data(),
        impute=Impute(),
        task="multiclass",
    )
    index = np.load(tmp_path / "index.npy")
    assert report["before"] == {"GALAXY": 20, "STAR": 10, "QSO": 3}
    assert report["after"] == {"GALAXY": 20, "STAR": 20, "QSO": 20}
    assert len(index) == 60
    assert set(index.tolist()) == set(range(33))  # train rows with labels only, no test row
    assert np.bincount(index, minlength=40)[30:33].sum() == 20  # QSO rows repeated


def test_balance_none_keeps_rows_once(tmp_path):
    labels = pd.DataFrame(
        {
            "row": np.arange(5, dtype=np.int64),
            "split": ["train"] * 5,
            "label": pd.array(["A", "A", "A", "B", None], dtype="string"),
        }
    )
    write_parquet(tmp_path / "labels.parquet", labels)
    balance_train_rows(
        labels=tmp_path / "labels.parquet",
        train_index=tmp_path / "index.npy",
        balance_report=tmp_path / "b.json",
        balance=Balance(method="none"),
        seed=0,
        data=Data(),
        impute=Impute(),
        task="multiclass",
    )
    assert sorted(np.load(tmp_path / "index.npy").tolist()) == [0, 1, 2, 3]


def test_baselines_score_every_model_on_observed_test_rows(tmp_path, dataset_path):
    _impute(tmp_path, dataset_path)
    report = fit_baselines(
        dataset=dataset_path,
        labels=tmp_path / "labels.parquet",
        baselines_report=tmp_path / "baselines.json",
        data=DATA,
        baselines=Baselines(cv_folds=2),
        seed=0,
        task="multiclass",
    )
    assert set(report["models"]) == {"logreg", "tree", "forest", "adaboost", "gboost", "lightgbm"}
    labels = pd.read_parquet(tmp_path / "labels.parquet")
    n_test = ((labels["split"] == "test") & (labels["label_source"] == "observed")).sum()
    assert report["test_rows"] == n_test
    for name, m in report["models"].items():
        assert m["n"] == n_test
        assert 0.7 < m["accuracy"] <= 1.0, name
        assert set(m["per_class"]) == {"GALAXY", "QSO", "STAR"}
        # cross-validated on train, like the test score: well above chance (1/3)
        assert 0.7 < m["cv_f1_macro_mean"] <= 1.0, name
        assert m["fit_seconds"] > 0, name
    assert read_json(tmp_path / "baselines.json") == report


def test_observed_keeps_only_observed_labels_of_the_split():
    from skysort.data.labels import observed

    labels = pd.DataFrame(
        {
            "split": ["test", "test", "val", "test"],
            "label_source": ["observed", "imputed", "observed", "unknown"],
        }
    )
    assert observed(labels, "test").tolist() == [True, False, False, False]
    assert observed(labels, "val").tolist() == [False, False, True, False]


def test_asinh_scales_change_only_the_named_feature_and_not_the_colours():
    from skysort.data.labels import feature_matrix, tabular_matrix

    df = pd.DataFrame(
        {
            "g": [18.0, 19.5, 20.0],
            "r": [17.5, 19.0, 19.0],
            "redshift": [-0.0004, 0.0, 2.5],
        }
    )
    features = ("g", "r", "redshift")
    plain = feature_matrix(df, features)
    scaled = feature_matrix(df, features, {"redshift": 0.001})
    np.testing.assert_array_equal(scaled[:, :2], plain[:, :2])
    np.testing.assert_allclose(scaled[:, 2], np.arcsinh(df["redshift"] / 0.001), rtol=1e-6)
    # Signs survive and decades compress: z = 2.5 reads as ~8.5, z = -0.0004 as ~-0.39.
    assert scaled[2, 2] > 8 and scaled[0, 2] < 0 and scaled.dtype == np.float32
    # Colours come from the magnitudes as read, whatever is scaled.
    both = tabular_matrix(df, features, {"redshift": 0.001, "g": 10.0})
    np.testing.assert_allclose(both[:, -1], df["g"] - df["r"], rtol=1e-6)
    np.testing.assert_allclose(both[:, 0], np.arcsinh(df["g"] / 10.0), rtol=1e-6)


def test_baselines_read_the_features_asinh_scaled(tmp_path, dataset_path, monkeypatch):
    """The stage builds its matrix with data.asinh_scales, as the nets' input does."""
    import skysort.stages.baselines as stage
    from skysort.data.labels import tabular_matrix

    _impute(tmp_path, dataset_path)
    seen = []

    def spy(df, features, asinh_scales=None):
        X = tabular_matrix(df, features, asinh_scales)
        seen.append(X)
        return X

    monkeypatch.setattr(stage, "tabular_matrix", spy)
    for scales in ({}, {"u": 0.01}):
        fit_baselines(
            dataset=dataset_path,
            labels=tmp_path / "labels.parquet",
            baselines_report=tmp_path / "baselines.json",
            data=Data(features=("u", "g", "r", "i", "z"), asinh_scales=scales),
            baselines=Baselines(models=("logreg",), cv_folds=2),
            seed=0,
            task="multiclass",
        )
    plain, scaled = seen
    np.testing.assert_allclose(scaled[:, 0], np.arcsinh(plain[:, 0] / 0.01), rtol=1e-5)
    np.testing.assert_array_equal(scaled[:, 1:], plain[:, 1:])
