"""The DAG against a loopback SkyServer, switched on by parameters only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysort.config import load_params
from skysort.data.atomic import read_json
from skysort.data.images import encode_jpeg
from skysort.data.labels import observed
from skysort.pipeline.registry import run_stage
from skysort.sources.skyserver.sql_errors import SkyServerError
from skysort.sources.synthetic import render_cutout, simulate_catalog
from tests.fakesky import FIRST_SPECOBJID, FakeSkyServer
from tests.project import ROOT, make_project


def sky_from_simulation(n: int, size: int = 64, seed: int = 5) -> tuple[pd.DataFrame, dict]:
    """A server-side table and its cutouts, from the simulated survey (so classes are learnable)."""
    params = load_params(ROOT / "params.yaml", [f"query.n_objects={n}", f"seed={seed}"])
    catalog = simulate_catalog(params.query, params.data, params.source.synthetic, seed)
    unknown = catalog["class"].isna()
    # On the server every spectrum has a class; unreliable ones carry zWarning != 0.
    catalog.loc[unknown, "class"] = "GALAXY"
    catalog.loc[unknown, "zWarning"] = 4
    catalog = catalog.dropna(subset=["u", "g", "r", "i", "z", "fiberMag_g"])
    catalog["specobjid"] = [FIRST_SPECOBJID + i for i in range(len(catalog))]
    rng = np.random.default_rng(seed)
    images = {
        (float(row["ra"]), float(row["dec"])): encode_jpeg(render_cutout(row, size, 0.396127, rng))
        for _, row in catalog.iterrows()
    }
    return catalog.reset_index(drop=True), images


@pytest.mark.slow
def test_pipeline_runs_against_a_local_skyserver(tmp_path, prefect_server, monkeypatch):
    catalog, images = sky_from_simulation(260)
    # a few objects fail the way the real service does
    objids = catalog["objid"].tolist()
    faults = {
        objids[0]: ["404"],
        objids[1]: ["500", "500"],
        objids[2]: ["html200"] * 10,
        objids[3]: ["blank"],
        objids[4]: ["429"],
    }
    with FakeSkyServer(
        catalog=catalog, images=images, object_faults=faults, retry_after="0"
    ) as sky:
        root = make_project(
            tmp_path / "proj",
            {
                "source": {
                    "kind": "skyserver",
                    "skyserver": {
                        "base_url": sky.url,
                        "data_release": 17,
                        "timeout_s": 20,
                        "max_rows_per_request": 100,
                        "min_query_interval_s": 0,
                    },
                },
                "query": {"n_objects": 1000},  # more than the server has: all of it
                "cutouts": {"backoff_s": 0.01, "retries": 3, "concurrency": 4},
            },
        )
        monkeypatch.chdir(root)
        from skysort.flows.pipeline import pipeline

        result = pipeline(params_path="params.yaml")
        # ~255 rows in pages of 100, then predict's one query for photometric objects
        sql = [r.query["cmd"] for r in sky.sql_requests()]
        assert len(sql) == 4 and all("JOIN SpecObj" in s for s in sql[:3])
        assert "JOIN SpecObj" not in sql[3] and "p.clean = 1" in sql[3]
    got = pd.read_parquet(root / "data/raw/catalog.parquet")
    assert sorted(got["objid"]) == sorted(catalog["objid"])  # every object, exact 64-bit ids
    assert got["provenance"].iloc[0].startswith("skyserver DR17")
    manifest = pd.read_parquet(root / "data/raw/cutouts.parquet").set_index("objid")
    assert set(manifest["status"]) <= {"ok", "missing", "error"}
    assert manifest.loc[objids[0], "status"] == "missing"
    assert manifest.loc[objids[1], "status"] == "ok" and manifest.loc[objids[1], "attempts"] == 3
    assert manifest.loc[objids[2], "status"] == "error"  # an HTML page is never a cutout
    assert manifest.loc[objids[3], "status"] == "error"  # blank: out of the footprint
    assert manifest.loc[objids[4], "status"] == "ok"  # 429: slowed down, then fetched
    assert (manifest["status"] == "ok").sum() == len(manifest) - 3
    dropped = read_json(root / "reports/clean.json")["dropped_by_reason"]
    assert dropped["missing_image"] == 1 and dropped["fetch_error"] == 2
    # scored on every observed test label, and the flow returns what evaluate wrote
    metrics = read_json(root / "reports/metrics.json")
    labels = pd.read_parquet(root / "data/processed/labels.parquet")
    assert metrics["n"] == observed(labels, "test").sum() > 0
    assert result == {"accuracy": metrics["accuracy"], "f1_macro": metrics["f1_macro"]}


def test_empty_query_result_is_a_clear_error_and_writes_no_catalog(tmp_path, monkeypatch):
    catalog, _ = sky_from_simulation(20)
    with FakeSkyServer(catalog=catalog) as sky:
        monkeypatch.chdir(tmp_path)
        params = load_params(
            ROOT / "params.yaml",
            [
                "source.kind=skyserver",
                f"source.skyserver.base_url={sky.url}",
                "query.r_min=14.0",
                "query.r_max=14.001",
                "source.skyserver.min_query_interval_s=0",
            ],
        )
        with pytest.raises(SkyServerError, match="returned no rows; widen query"):
            run_stage("query", params)
    assert not (tmp_path / "data/raw/catalog.parquet").exists()
