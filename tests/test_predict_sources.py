"""Predict's inputs and outputs at the edges: positions, empty regions, a broken model, the picture."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skysort.config import Cutouts, Params, Predict, SkyServerSource, Source
from skysort.model.contract import ModelFileError
from skysort.pipeline.registry import run_stage
from skysort.pipeline.stage import Images
from skysort.pipeline.summaries import predict_summary
from skysort.sources.objects import separation_deg
from skysort.sources.skyserver.sql_match import build_match_sql
from tests.fakesky import FakeSkyServer, make_sky_catalog
from tests.test_predict import _parts, _untrained_project

ARCSEC = 1 / 3600


def _on_sky(params: Params, sky: FakeSkyServer, **predict: object) -> Params:
    """``params`` against the loopback SkyServer, with these ``predict:`` settings."""
    source = Source(kind="skyserver", skyserver=SkyServerSource(
        base_url=sky.url, min_query_interval_s=0, max_rows_per_request=2, timeout_s=20))  # fmt: skip
    return params.model_copy(update={
        "source": source, "cutouts": Cutouts(backoff_s=0.01, retries=1),
        "predict": params.predict.model_copy(update=predict)})  # fmt: skip


def _write_positions(path: Path, ra: list[float], dec: list[float]) -> Path:
    pd.DataFrame({"RA": ra, "Dec": dec}).to_csv(path, index=False)
    return path


def _with_objects_file(params: Params, path: Path) -> Params:
    return params.model_copy(update={"paths": params.paths.model_copy(
        update={"predict_objects": path})})  # fmt: skip


# -- positions -------------------------------------------------------------------------------


def test_match_sql_numbers_each_position_and_refuses_what_is_not_a_position():
    sql = build_match_sql(Predict(match_arcsec=1.5), [10.0, 359.5], [-5.0, 89.0], first=7)
    assert "(VALUES (7, 10.0, -5.0), (8, 359.5, 89.0)) AS w (k, ra, dec)" in sql
    assert "fGetNearbyObjEq(w.ra, w.dec, 0.025)" in sql  # 1.5 arcsec in arcminutes
    assert "p.type IN (3, 6) AND p.clean = 1" in sql and "TOP 1" in sql
    with pytest.raises(ValueError, match="position 0: ra nan / dec 0.0 outside"):
        build_match_sql(Predict(), [float("nan")], [0.0], first=0)
    with pytest.raises(ValueError, match="position 0: ra 10.0 / dec 95.0 outside"):
        build_match_sql(Predict(), [10.0], [95.0], first=0)


def test_positions_are_matched_on_skyserver_by_sql_in_batches(tmp_path):
    catalog = make_sky_catalog(12, seed=4)
    catalog["type"] = np.where(np.arange(12) % 2, 3, 6)
    catalog["clean"] = 1
    catalog.loc[3, "clean"] = 0  # at a listed position, but not clean photometry
    ra, dec = catalog["ra"].to_numpy(), catalog["dec"].to_numpy()
    offset = 0.5 * ARCSEC / np.cos(np.radians(dec[2]))  # half an arcsecond east of object 2
    wanted_ra = [ra[0], ra[1], ra[2] + offset, ra[3], ra[1], ra[4], ra[5] + 0.01]
    wanted_dec = [dec[0], dec[1], dec[2], dec[3], dec[1], dec[4], dec[5]]
    listed = _write_positions(tmp_path / "positions.csv", wanted_ra, wanted_dec)
    params = _untrained_project(tmp_path / "proj", model="fusion")
    with FakeSkyServer(catalog=catalog) as sky:
        report = run_stage(
            "predict", _with_objects_file(_on_sky(params, sky, objects="file"), listed)
        )
        sql = [r.query["cmd"] for r in sky.sql_requests()]
        fetched = sky.fetched_objids()
    # 7 positions, at most 2 per statement (source.skyserver.max_rows_per_request)
    assert len(sql) == 4 and all("CROSS APPLY" in s and "PhotoObj" in s for s in sql)
    assert [s.count("), (") + 1 for s in sql] == [2, 2, 2, 1]
    table = _parts(params.paths.predicted)
    objids = catalog["objid"].to_numpy()
    # the nearest clean object of each position, each once, exact 64-bit ids
    assert table["objid"].tolist() == [objids[0], objids[1], objids[2], objids[4]]
    assert sorted(fetched) == sorted(table["objid"])  # cutouts of the matched objects only
    lost = pd.read_parquet(params.paths.unclassified)
    assert lost["reason"].tolist() == ["no_match", "no_match"] and lost["objid"].isna().all()
    assert np.allclose(lost[["ra", "dec"]].to_numpy(), [[ra[3], dec[3]], [ra[5] + 0.01, dec[5]]])
    assert report["objects"] == 6 and report["classified"] == 4
    assert "nearest to 7 positions" in report["described"]


def test_positions_are_matched_to_the_simulated_survey(tmp_path):
    from skysort.sources.synthetic import simulate_catalog

    params = _untrained_project(tmp_path)
    survey = simulate_catalog(params.query, params.data, params.source.synthetic, params.seed)
    near = survey.iloc[[4, 8]]
    listed = _write_positions(
        tmp_path / "positions.csv",
        [*(near["ra"] + ARCSEC / np.cos(np.radians(near["dec"]))), 300.0], [*near["dec"], -60.0],
    )  # fmt: skip
    report = run_stage("predict", _with_objects_file(
        params.model_copy(update={"predict": Predict(objects="file")}), listed))  # fmt: skip
    seen = set(_parts(params.paths.predicted)["objid"])
    lost = pd.read_parquet(params.paths.unclassified)
    assert set(near["objid"]) == seen | set(lost["objid"].dropna())  # classified, or an image fault
    assert (lost["reason"] == "no_match").sum() == 1 and report["objects"] == 3


# -- an empty region -------------------------------------------------------------------------


def _assert_empty(params: Params, report: dict, caplog: pytest.LogCaptureFixture) -> None:
    assert report["objects"] == report["classified"] == report["unclassified"] == 0
    assert report["note"].startswith("no objects to classify")
    assert "no objects to classify" in caplog.text and "the result is empty" in caplog.text
    assert len(pd.read_parquet(params.paths.unclassified)) == 0
    assert len(pd.read_parquet(params.paths.needs_spectrum)) == 0
    counts = predict_summary(report, params)[0]
    assert counts.description == report["note"] and counts.rows[0]["count"] == 0


def test_an_empty_region_of_the_simulated_sky_is_an_empty_result(tmp_path, caplog):
    params = _untrained_project(tmp_path)
    # 3.6" x 3.6" at 20,000 objects per square degree: 0.02 objects expected
    tiny = Predict(ra_min=150.0, ra_max=150.001, dec_min=1.0, dec_max=1.001)
    with caplog.at_level(logging.INFO):
        report = run_stage("predict", params.model_copy(update={"predict": tiny}))
    _assert_empty(params, report, caplog)
    assert "simulated sky, box ra 150.0..150.001" in report["note"]


def test_the_simulated_sky_holds_objects_in_proportion_to_the_area(tmp_path):
    from skysort.sources.objects import objects_to_classify

    params = _untrained_project(tmp_path)
    box = Predict(ra_min=150.0, ra_max=150.1, dec_min=1.0, dec_max=1.1, max_objects=5000)
    got = objects_to_classify(box, params.source, params.query, params.data, 1, tmp_path)
    assert 170 <= len(got.rows) <= 230  # 0.01 square degrees at 20,000 per square degree
    assert got.catalog["ra"].between(150.0, 150.1).all()


def test_an_empty_region_on_skyserver_is_an_empty_result(tmp_path, caplog):
    params = _untrained_project(tmp_path)
    with FakeSkyServer(catalog=make_sky_catalog(20)) as sky, caplog.at_level(logging.INFO):
        # the fake sky lies within ra 120..240: nothing at ra 10..11
        box = _on_sky(params, sky, ra_min=10.0, ra_max=11.0)
        report = run_stage("predict", box)
        assert len(sky.sql_requests()) == 1 and not sky.cutout_requests()
    _assert_empty(params, report, caplog)
    assert "SkyServer: no photometric objects match" in caplog.text


def test_a_cone_on_skyserver_keeps_the_objects_within_its_radius(tmp_path):
    catalog = make_sky_catalog(20)
    centre = catalog.iloc[0]
    catalog.loc[1, ["ra", "dec"]] = [centre["ra"] + 0.05, centre["dec"]]  # ~1.8' away
    catalog.loc[2, ["ra", "dec"]] = [centre["ra"], centre["dec"] + 0.2]  # 12' away
    params = _untrained_project(tmp_path)
    with FakeSkyServer(catalog=catalog) as sky:
        cone = _on_sky(params, sky, shape="cone", ra=float(centre["ra"]),
                       dec=float(centre["dec"]), radius_arcmin=5.0)  # fmt: skip
        run_stage("predict", cone)
    table = _parts(params.paths.predicted)
    assert set(table["objid"]) == set(catalog["objid"].iloc[[0, 1]])
    assert (separation_deg(table["ra"], table["dec"], centre["ra"], centre["dec"]) <= 5 / 60).all()


# -- the model file --------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_model_file_is_refused_naming_it(tmp_path, damage):
    params = _untrained_project(tmp_path)
    model = params.paths.model
    body = model.read_bytes()
    model.write_bytes(body[: len(body) // 2] if damage == "truncated" else b"\x00garbage" * 64)
    with pytest.raises(ModelFileError, match=rf"the model file {model} \(\d+ bytes\) is not a "
                       r"\.keras archive .*truncated or corrupt"):  # fmt: skip
        run_stage("predict", params)
    assert not params.paths.predict_report.exists()


def test_a_missing_model_file_is_refused_naming_it(tmp_path):
    params = _untrained_project(tmp_path)
    params.paths.model.unlink()
    with pytest.raises(ModelFileError, match=rf"the model file {params.paths.model} is missing"):
        run_stage("predict", params)


# -- what it writes and shows ---------------------------------------------------------------


def test_the_summary_shows_the_confidence_histogram_as_a_small_embedded_picture(tmp_path):
    from PIL import Image

    from skysort.tasks.artifacts import images_markdown
    from skysort.tasks.thumbnails import MAX_BYTES

    params = _untrained_project(tmp_path)
    report = run_stage("predict", params)
    picture = Path(report["confidence_histogram"]["picture"])
    assert picture.parent == params.paths.predicted and picture.name.startswith("_")
    with Image.open(picture) as png:
        assert png.format == "PNG" and max(png.size) <= 480
    (plot,) = [a for a in predict_summary(report, params) if isinstance(a, Images)]
    assert plot.key == "predict-confidence-plot" and plot.pictures[0].path == picture
    markdown = images_markdown(plot)
    assert "![Objects per top probability](data:image/png;base64," in markdown
    assert len(markdown) < MAX_BYTES * 4 / 3 + 2000
    # the parts folder reads as one Parquet dataset: bookkeeping and picture are skipped
    dataset = pd.read_parquet(params.paths.predicted)
    assert len(dataset) == report["classified"] and "reason" not in dataset.columns


def test_a_file_of_objids_on_skyserver_gives_exactly_those_objects(tmp_path):
    catalog = make_sky_catalog(9)
    objids = catalog["objid"].tolist()
    listed = tmp_path / "objids.csv"
    listed.write_text("objid\n" + "\n".join(map(str, [objids[6], objids[0], objids[2], 5])) + "\n")
    params = _untrained_project(tmp_path / "proj")
    with FakeSkyServer(catalog=catalog) as sky:
        report = run_stage(
            "predict", _with_objects_file(_on_sky(params, sky, objects="file"), listed)
        )
        sql = [r.query["cmd"] for r in sky.sql_requests()]
    assert len(sql) == 2 and all("p.objid IN (" in s for s in sql)  # 2 ids per statement
    assert _parts(params.paths.predicted)["objid"].tolist() == [objids[6], objids[0], objids[2]]
    lost = pd.read_parquet(params.paths.unclassified)
    assert lost["objid"].tolist() == [5] and lost["reason"].tolist() == ["not_in_survey"]
    assert report["objects"] == 4
