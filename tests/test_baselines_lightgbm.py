"""The LightGBM baseline: configured like the others, reproducible, silent, in every table."""

import numpy as np
import pytest

from skysort.config import Baselines, ConfigError, validate_params
from skysort.model.classical import make_baseline, one_openmp_thread


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(0, 1.0, (n, 4)) + y[:, None] * np.array([1.5, -1.0, 0.5, 0.0])
    return X, y


def test_lightgbm_is_a_default_baseline_and_a_config_value():
    assert "lightgbm" in Baselines().models
    assert validate_params({"baselines": {"models": ["lightgbm"]}}).baselines.models == (
        "lightgbm",
    )
    with pytest.raises(ConfigError, match=r"baselines\.models"):
        validate_params({"baselines": {"models": ["xgboost"]}})


def test_lightgbm_is_single_threaded_deterministic_and_seeded_from_the_config():
    model = make_baseline("lightgbm", seed=7)
    params = model.get_params()
    assert params["n_jobs"] == 1 and params["deterministic"] is True
    assert params["random_state"] == 7 and params["verbose"] == -1


def test_lightgbm_fits_the_same_twice_and_says_nothing(capfd):
    X, y = _blobs()
    with one_openmp_thread():
        first = make_baseline("lightgbm", 0).fit(X[:200], y[:200]).predict_proba(X[200:])
        second = make_baseline("lightgbm", 0).fit(X[:200], y[:200]).predict_proba(X[200:])
        # one outcome per label is the multilabel case: binary fits too
        binary = make_baseline("lightgbm", 0).fit(X[:200], (y[:200] == 2).astype(int))
    np.testing.assert_array_equal(first, second)
    assert (first.argmax(axis=1) == y[200:]).mean() > 0.8  # it learned the blobs
    assert binary.predict_proba(X[200:]).shape == (100, 2)
    out, err = capfd.readouterr()
    assert "LightGBM" not in out + err, out + err  # verbose=-1: no [LightGBM] [Warning] lines
