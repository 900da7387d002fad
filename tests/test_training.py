"""The train stage's pieces without TensorFlow: inputs on 4-row files, outputs per worker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skysort import targets
from skysort.config import Data, Train
from skysort.model.distribute import chief_outputs
from skysort.model.inputs import (
    feature_statistics,
    load_survey,
    load_training_inputs,
)

DATA = Data(features=("u", "g"), image_size=64)


def write_inputs(root: Path, n_images: int = 4, objids: list[int] | None = None) -> Path:
    ids = [11, 12, 13, 14]
    pd.DataFrame({"objid": ids, "u": [1.0, 2.0, 3.0, 4.0], "g": [0.0, 0.0, 1.0, 1.0]}).to_parquet(
        root / "dataset.parquet"
    )
    pd.DataFrame(
        {
            "objid": objids or ids,
            "split": ["train", "train", "val", "test"],
            "label": ["GALAXY", "STAR", "QSO", "STAR"],
            "label_source": ["observed", "imputed", "observed", "observed"],
        }
    ).to_parquet(root / "labels.parquet")
    np.save(root / "images.npy", np.zeros((n_images, 64, 64, 3), np.uint8))
    np.save(root / "index.npy", np.array([0, 1, 1, 1]))  # row 1 oversampled
    return root


def test_load_survey_gives_aligned_features_and_codes(tmp_path):
    s = load_survey(
        *(write_inputs(tmp_path) / f for f in ("dataset.parquet", "images.npy", "labels.parquet")),
        DATA,
    )
    assert s.features.dtype == np.float32 and s.features.shape == (4, 2)
    assert s.y.tolist() == [0, 2, 1, 2]  # GALAXY, STAR, QSO, STAR in DATA.classes order
    assert len(s.images) == 4


def test_load_survey_appends_adjacent_colours_when_asked(tmp_path):
    files = [
        write_inputs(tmp_path) / f for f in ("dataset.parquet", "images.npy", "labels.parquet")
    ]
    s = load_survey(*files, DATA, colours=True)
    assert s.features.shape == (4, 3)
    assert s.features[:, 2].tolist() == [1.0, 2.0, 2.0, 3.0]  # u - g


def test_load_survey_reads_asinh_scaled_features_for_the_nets(tmp_path):
    files = [
        write_inputs(tmp_path) / f for f in ("dataset.parquet", "images.npy", "labels.parquet")
    ]
    s = load_survey(*files, Data(features=("u", "g"), asinh_scales={"u": 0.5}))
    np.testing.assert_allclose(s.features[:, 0], np.arcsinh(np.array([1.0, 2, 3, 4]) / 0.5))
    assert s.features[:, 1].tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_images": 3}, "rerun the clean stage"),
        ({"objids": [11, 13, 12, 14]}, "rerun the impute"),
    ],
)
def test_load_survey_rejects_rows_that_do_not_align(tmp_path, kw, match):
    root = write_inputs(tmp_path, **kw)
    with pytest.raises(ValueError, match=match):
        load_survey(root / "dataset.parquet", root / "images.npy", root / "labels.parquet", DATA)


def test_training_inputs_validate_on_observed_val_rows_and_normalise_on_unique_train_rows(
    tmp_path,
):
    root = write_inputs(tmp_path)
    inputs = load_training_inputs(
        root / "dataset.parquet",
        root / "images.npy",
        root / "labels.parquet",
        root / "index.npy",
        data=DATA,
        train=Train(class_weight="balanced"),
    )
    assert inputs.train_rows.tolist() == [0, 1, 1, 1] and inputs.val_rows.tolist() == [2]
    assert inputs.feature_mean.tolist() == [1.5, 0.0]  # rows 0 and 1, each once
    assert inputs.class_weight == {0: 4 / (3 * 1), 2: 4 / (3 * 3)}


def test_feature_statistics_count_each_row_once():
    features = np.array([[0.0], [10.0]], np.float32)
    mean, var = feature_statistics(features, np.array([0, 1, 1, 1, 1]))
    assert mean.tolist() == [5.0] and var.tolist() == [25.0]


def test_class_weights_are_balanced_or_none():
    target, data = targets.get("multiclass"), Data(classes=("A", "B", "C"))
    y = np.array([0, 0, 0, 1])
    assert target.class_weight(y, data, Train(class_weight="none")) is None
    assert target.class_weight(y, data, Train(class_weight="balanced")) == {0: 4 / 9, 1: 4 / 3}
    # absent class 2: no weight; multilabel: never class weights
    assert targets.get("multilabel").class_weight(y, data, Train(class_weight="balanced")) is None


def test_a_worker_that_is_not_the_chief_writes_to_scratch_then_away(monkeypatch, tmp_path):
    out = (tmp_path / "model.keras", tmp_path / "train.json")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with chief_outputs(*out) as paths:
        assert paths == out
    worker = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(worker))
    with chief_outputs(*out) as paths:
        assert [p.name for p in paths] == ["model.keras", "train.json"]
        assert paths[0].parent != tmp_path
        paths[0].write_text("scratch")
    assert not paths[0].parent.exists() and not any(tmp_path.iterdir())


def test_the_survey_reads_its_images_from_the_file_a_batch_at_a_time(tmp_path):
    from skysort.data.packed import PackedImages

    files = write_inputs(tmp_path)
    array = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", array)
    s = load_survey(*(files / f for f in ("dataset.parquet", "images.npy", "labels.parquet")), DATA)
    assert isinstance(s.images, PackedImages)  # not a memory map: nothing stays resident
    rows = np.array([3, 1, 1, 0])  # a batch: any order, repeats from oversampling
    np.testing.assert_array_equal(s.images[rows], array[rows])
    assert s.images.shape == array.shape
