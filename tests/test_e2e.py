"""The whole DAG on a tiny simulated survey, both ways: one Prefect flow, and ``dvc repro``."""

from __future__ import annotations

import asyncio
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from skysort.io import read_json
from tests.project import dvc, make_project

pytestmark = pytest.mark.slow

OUTPUTS = [
    "data/raw/catalog.parquet", "data/raw/cutouts.parquet", "data/interim/dataset.parquet",
    "data/interim/images.npy", "data/processed/labels.parquet", "data/processed/train_index.npy",
    "models/model.keras", "reports/clean.json", "reports/impute.json", "reports/balance.json",
    "reports/baselines.json", "reports/train.json", "reports/metrics.json",
    "reports/predictions.parquet", "reports/plots/confusion.png", "reports/plots/gallery.png",
    "dvclive/metrics.json",
]


def _assert_outputs(root):
    missing = [p for p in OUTPUTS if not (root / p).exists()]
    assert missing == []
    metrics = read_json(root / "reports/metrics.json")
    assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["f1_macro"] <= 1.0
    # a few epochs on 300 objects: the ranking of classes is already better than chance
    assert metrics["roc_auc_macro"] > 0.6
    preds = pd.read_parquet(root / "reports/predictions.parquet")
    # the test split holds observed labels only, and never appears in the train index
    labels = pd.read_parquet(root / "data/processed/labels.parquet")
    test_rows = set(labels.loc[labels["split"] == "test", "row"])
    assert not test_rows & set(np.load(root / "data/processed/train_index.npy").tolist())
    assert len(preds) == ((labels["split"] == "test") & (labels["label_source"] == "observed")).sum()
    clean = read_json(root / "reports/clean.json")
    assert clean["dropped_rows"] > 0  # the simulated survey's faults were caught
    assert np.load(root / "data/interim/images.npy", mmap_mode="r").shape[0] == clean["kept_rows"]


def _flow_run_names(api_url: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    async def names():
        async with get_client() as client:
            runs = await client.read_flow_runs(limit=200, sort=FlowRunSort.START_TIME_DESC)
            return [r.name for r in runs]

    return asyncio.run(names())


def _artifact_keys(api_url: str) -> set[str]:
    import httpx

    body = {"limit": 200, "offset": 0, "sort": "CREATED_DESC"}
    resp = httpx.post(f"{api_url}/artifacts/filter", json=body, timeout=30)
    resp.raise_for_status()
    return {a["key"] for a in resp.json() if a.get("key")}


def test_pipeline_flow_then_dvc_repro_has_nothing_to_do(tmp_path, prefect_server, monkeypatch):
    root = make_project(tmp_path / "proj")
    monkeypatch.chdir(root)
    from skysort.flows.pipeline import pipeline

    result = pipeline(params_path="params.yaml")
    assert set(result) == {"accuracy", "f1_macro"}
    _assert_outputs(root)
    # the flow recorded its outputs in DVC: the lock agrees, nothing is stale
    assert (root / "dvc.lock").exists()
    status = dvc("status", "--json", cwd=root).stdout.strip()
    assert status in ("{}", "")
    repro = dvc("repro", cwd=root)
    assert "Running stage" not in repro.stdout
    assert "pipeline: synthetic, 300 objects, fusion/small_cnn" in _flow_run_names(prefect_server)
    # every stage published what a person wants to see in the UI
    assert {"query-class-mix", "cutouts-status", "cutouts-progress", "clean-dropped",
            "clean-splits", "impute-report", "balance-class-counts", "baselines-metrics",
            "train-summary", "evaluate-metrics", "evaluate-plots"} <= _artifact_keys(prefect_server)


def test_dvc_repro_runs_every_stage_as_a_flow_run_then_is_a_noop(tmp_path, prefect_server):
    root = make_project(tmp_path / "proj")
    first = dvc("repro", cwd=root)
    for stage in ("query", "cutouts", "clean", "impute", "balance", "baselines", "train",
                  "evaluate"):
        assert f"Running stage '{stage}'" in first.stdout
    _assert_outputs(root)
    names = _flow_run_names(prefect_server)
    assert {f"stage-{s}" for s in ("query", "train", "evaluate")} <= set(names)
    second = dvc("repro", cwd=root)
    assert "Running stage" not in second.stdout
    # changing one training parameter reruns only train and evaluate
    subprocess.run(["sed", "-i", "s/epochs: 3/epochs: 2/", "params.yaml"], cwd=root, check=True)
    third = dvc("repro", cwd=root)
    ran = [s for s in ("query", "cutouts", "clean", "impute", "balance", "baselines", "train",
                       "evaluate") if f"Running stage '{s}'" in third.stdout]
    assert ran == ["train", "evaluate"]
    assert os.environ["PREFECT_API_URL"] == prefect_server
