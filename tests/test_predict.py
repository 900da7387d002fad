"""Predict: the trained model on objects without labels, streamed in batches, resumable."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skysort.config import ConfigError, Data, Params, Paths, Predict, Train, load_params
from skysort.data.atomic import read_json, write_json
from skysort.model.contract import ContractError, check_columns, make_contract, read_contract
from skysort.sources.skyserver.sql_photo import build_photo_sql

TINY_PREDICT = {"max_objects": 150, "batch_size": 40}


# -- parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["predict.dec=95"], "predict.dec"),
        (["predict.radius_arcmin=0"], "predict.radius_arcmin"),
        (["predict.ra_min=20", "predict.ra_max=10"], r"ra_min \(20.0\) must be below ra_max"),
        (["predict.batch_size=0"], "predict.batch_size"),
        (["predict.cron=every day"], "predict.cron"),
        (["predict.objects=everything"], "predict.objects"),
    ],
)
def test_bad_region_parameters_are_refused_at_load(tmp_path, overrides, message):
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match=message):
        load_params(tmp_path / "params.yaml", overrides)


def test_photometric_sql_selects_clean_photometry_in_a_box_a_cone_or_a_list():
    box = build_photo_sql(Predict(), 100)
    assert "FROM PhotoObj AS p" in box and "p.type IN (3, 6) AND p.clean = 1" in box
    assert "p.ra >= 150.0 AND p.ra <= 151.0" in box and "SpecObj" not in box
    cone = build_photo_sql(Predict(shape="cone", ra=10.0, dec=-5.0, radius_arcmin=3.0), 10, 42)
    assert "fGetNearbyObjEq(10.0, -5.0, 3.0)" in cone and "p.objid > 42" in cone
    listed = build_photo_sql(Predict(), 2, objids=[1237648704577142822, 5])
    assert "p.objid IN (1237648704577142822, 5)" in listed and "p.ra >=" not in listed
    with pytest.raises(ValueError, match="objid must be in"):
        build_photo_sql(Predict(), 1, objids=[-1])


# -- the model's contract ------------------------------------------------------------------


def test_a_missing_or_foreign_contract_is_refused(tmp_path):
    with pytest.raises(ContractError, match="is missing: the model has no contract"):
        read_contract(tmp_path / "contract.json")
    write_json(tmp_path / "contract.json", {"task": "multiclass"})
    with pytest.raises(ContractError, match="not a version-1 model contract"):
        read_contract(tmp_path / "contract.json")


def test_objects_without_a_feature_the_model_reads_are_refused():
    terms = _contract(Data(features=("u", "g", "redshift")), Train(model="tabular"))
    with pytest.raises(ContractError, match=r"has no \['redshift'\]"):
        check_columns(terms, ["objid", "u", "g"], "the photometric objects")


def _contract(data: Data, train: Train) -> dict:
    n = len(data.features)
    return make_contract(task="multiclass", outputs=data.classes, data=data, train=train,
                         n_features=n, feature_mean=np.zeros(n), feature_var=np.ones(n),
                         decisions={"task": "multiclass", "classes": list(data.classes),
                                    "decision": "argmax"})  # fmt: skip


def _untrained_project(root: Path, model: str = "tabular") -> Params:
    """A project whose model is an untrained tiny net with its contract: enough to predict."""
    from skysort.model.build import build_model

    data = Data(image_size=64)
    train = Train(model=model, dense_units=(8,), conv_filters=(4,))
    paths = Paths().under(root)
    paths.model.parent.mkdir(parents=True, exist_ok=True)
    n = len(data.features)
    build_model(train, n, len(data.classes), data.image_size, np.zeros(n), np.ones(n)).save(
        paths.model
    )
    write_json(paths.contract, _contract(data, train))
    return Params(paths=paths, data=data, train=train, seed=3, predict=Predict(**TINY_PREDICT))


def _parts(folder: Path) -> pd.DataFrame:
    files = sorted(f for f in glob.glob(str(folder / "part-*.parquet")) if "unclassified" not in f)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_a_model_that_does_not_match_its_contract_is_refused(tmp_path):
    from skysort.pipeline.registry import run_stage

    params = _untrained_project(tmp_path)
    terms = read_json(params.paths.contract)
    write_json(params.paths.contract, {**terms, "n_features": 4})
    with pytest.raises(
        ContractError, match=r"input 'features' is \(6,\), the contract says \(4,\)"
    ):
        run_stage("predict", params)


# -- streaming, resume ---------------------------------------------------------------------


def test_predict_streams_a_region_and_a_killed_run_resumes_without_gaps(tmp_path, monkeypatch):
    from skysort.pipeline.registry import run_stage
    from skysort.stages import predict as stage

    params = _untrained_project(tmp_path)
    real = stage._classify_batch
    calls: list[Path] = []

    def dies_on_the_third_batch(*args, **kwargs):
        part = args[6]
        calls.append(part)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(stage, "_classify_batch", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        run_stage("predict", params)
    assert sorted(p.name for p in params.paths.predicted.glob("*part-*.parquet")) == [
        "_part-00000.unclassified.parquet", "_part-00001.unclassified.parquet",
        "part-00000.parquet", "part-00001.parquet",
    ]  # fmt: skip
    assert not params.paths.predict_report.exists()  # nothing half-written
    calls.clear()
    report = run_stage("predict", params)
    assert [p.name for p in calls] == ["part-00002.parquet", "part-00003.parquet"]  # resumed
    table = _parts(params.paths.predicted)
    lost = pd.read_parquet(params.paths.unclassified)
    assert not table["objid"].duplicated().any() and not set(table["objid"]) & set(lost["objid"])
    assert len(table) + len(lost) == report["objects"] == TINY_PREDICT["max_objects"]
    assert report["classified"] == len(table) and report["parts"] == 4
    # the simulated sky's faults: some objects had no usable cutout or feature
    assert set(lost["reason"]) <= {"missing_image", "blank_image", "unreadable_image",
                                   "missing_features"} and len(lost) > 0  # fmt: skip
    probabilities = table[["p_GALAXY", "p_QSO", "p_STAR"]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert (table["predicted"] == pd.Series(np.array(["GALAXY", "QSO", "STAR"])[
        probabilities.argmax(axis=1)])).all()  # fmt: skip
    assert set(table["model_md5"]) == {report["model_md5"]} and len(report["model_md5"]) == 32
    assert sum(report["counts"].values()) == len(table)


def test_a_cone_keeps_only_objects_within_its_radius(tmp_path):
    from skysort.pipeline.registry import run_stage
    from skysort.sources.objects import separation_deg

    params = _untrained_project(tmp_path)
    cone = Predict(**TINY_PREDICT, shape="cone", ra=150.5, dec=1.5, radius_arcmin=20)
    report = run_stage("predict", params.model_copy(update={"predict": cone}))
    table = _parts(params.paths.predicted)
    distance = separation_deg(table["ra"], table["dec"], 150.5, 1.5)
    assert (distance <= 20 / 60 + 1e-9).all() and 0 < report["objects"] < 150


def test_low_confidence_objects_go_to_the_needs_a_spectrum_list(tmp_path):
    from skysort.pipeline.registry import run_stage

    params = _untrained_project(tmp_path)
    sure = Predict(**TINY_PREDICT, min_confidence=0.5)
    report = run_stage("predict", params.model_copy(update={"predict": sure}))
    table = _parts(params.paths.predicted)
    needs = pd.read_parquet(params.paths.needs_spectrum)
    assert set(needs["objid"]) == set(table.loc[table["top_probability"] < 0.5, "objid"])
    assert report["needs_spectrum"] == len(needs)
    assert (table["margin"] >= 0).all() and (table["top_probability"] <= 1).all()


def test_a_file_of_objids_names_objects_of_the_survey_and_lists_the_unknown(tmp_path):
    from skysort.pipeline.registry import run_stage
    from skysort.sources.synthetic import simulate_catalog

    params = _untrained_project(tmp_path)
    survey = simulate_catalog(params.query, params.data, params.source.synthetic, params.seed)
    wanted = [int(i) for i in survey["objid"].iloc[[5, 1, 9]]] + [7]
    listed = tmp_path / "objects.csv"
    listed.write_text("objid\n" + "\n".join(map(str, wanted)) + "\n")
    by_file = Predict(**TINY_PREDICT, objects="file")
    paths = params.paths.model_copy(update={"predict_objects": listed})
    report = run_stage("predict", params.model_copy(update={"predict": by_file, "paths": paths}))
    seen = set(_parts(paths.predicted)["objid"]) | set(pd.read_parquet(paths.unclassified)["objid"])
    assert seen == set(wanted)
    lost = pd.read_parquet(paths.unclassified).set_index("objid")
    assert lost.loc[7, "reason"] == "not_in_survey" and report["objects"] == 4


def assert_predict_reproduces_evaluate(root: Path, run) -> None:
    """``skysort predict`` on the test split's objids gives evaluate's probabilities (1e-6).

    ``run(args)`` runs the skysort command line in ``root``. The outputs go to other
    paths, so the project's DVC-tracked outputs stay as they are.
    """
    expected = pd.read_parquet(root / "reports/predictions.parquet").set_index("objid")
    (root / "data/check").mkdir(parents=True, exist_ok=True)  # not a DVC dep of any stage
    (root / "data/check/test_objids.csv").write_text(
        "objid\n" + "\n".join(str(i) for i in expected.index) + "\n"
    )
    run(["predict", "--set", "predict.objects=file",
         "--set", "paths.predict_objects=data/check/test_objids.csv",
         "--set", "paths.predicted=data/check/predicted",
         "--set", "paths.unclassified=data/check/unclassified.parquet",
         "--set", "paths.needs_spectrum=data/check/needs.parquet",
         "--set", "paths.predict_report=data/check/predict.json"])  # fmt: skip
    got = _parts(root / "data/check/predicted").set_index("objid")
    assert sorted(got.index) == sorted(expected.index)
    columns = [c for c in expected.columns if c.startswith("p_")]
    assert (
        np.abs(got.loc[expected.index, columns].to_numpy() - expected[columns].to_numpy()).max()
        < 1e-6
    )
    decided = [c for c in expected.columns if c == "predicted" or c.startswith("pred_")]
    assert (got.loc[expected.index, decided].to_numpy() == expected[decided].to_numpy()).all()
