"""Sharded cutouts + clean (``runner.kind: dask``) write exactly what the one-process stages write."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from skysort.config import load_params, validate_params
from skysort.data.atomic import read_json
from skysort.pipeline import registry, sharding
from skysort.pipeline.registry import run_stage

pytestmark = pytest.mark.slow  # a Prefect server and a Dask cluster

N_OBJECTS = 150
SHARD_SIZE = 40  # 4 shards, the last one short


def _params(root: Path, **runner):
    raw = {"query": {"n_objects": N_OBJECTS}, "runner": {"shard_size": SHARD_SIZE, **runner}}
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return load_params(root / "params.yaml")


def _local_run(root: Path) -> None:
    params = validate_params({"query": {"n_objects": N_OBJECTS}})
    params = params.model_copy(update={"paths": params.paths.under(root)})
    for name in ("query", "cutouts", "clean"):
        run_stage(name, params)


@pytest.fixture(scope="module")
def local_outputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("local")
    _local_run(root)
    return root


def _assert_same_outputs(a: Path, b: Path) -> None:
    for rel in ("data/raw/cutouts.parquet", "data/interim/dataset.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / rel), pd.read_parquet(b / rel))
    assert read_json(a / "reports/clean.json") == read_json(b / "reports/clean.json")
    images_a = np.load(a / "data/interim/images.npy")
    images_b = np.load(b / "data/interim/images.npy")
    assert images_a.shape == images_b.shape and np.array_equal(images_a, images_b)
    files_a = sorted(p.name for p in (a / "data/raw/cutouts").iterdir())
    files_b = sorted(p.name for p in (b / "data/raw/cutouts").iterdir())
    assert files_a == files_b
    for name in files_a[::7]:
        assert (a / "data/raw/cutouts" / name).read_bytes() == (
            b / "data/raw/cutouts" / name
        ).read_bytes()
    # the work folders are gone once merged
    assert not list((b / "data").rglob("*.shards"))


def test_shard_bounds_cover_every_row_once():
    assert sharding.shard_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert sharding.shard_bounds(0, 4) == []
    with pytest.raises(ValueError, match="shard_size"):
        sharding.shard_bounds(10, 0)


def test_stage_shards_in_any_order_equal_the_local_stages(tmp_path, local_outputs):
    root = tmp_path / "sharded"
    root.mkdir()
    params = _params(root)
    params = params.model_copy(update={"paths": params.paths.under(root)})
    run_stage("query", params)
    cutouts, clean = registry.get("cutouts"), registry.get("clean")
    n = cutouts.shards.prepare(params)
    bounds = sharding.shard_bounds(n, SHARD_SIZE)
    assert len(bounds) == 4
    parts = {i: cutouts.shards.shard(params, i, a, b)
             for i, (a, b) in reversed(list(enumerate(bounds)))}  # fmt: skip
    cutouts.merge(params, [parts[i] for i in sorted(parts, reverse=True)], n)
    assert clean.shards.prepare(params) == n
    clean_parts = [clean.shards.shard(params, i, a, b) for i, (a, b) in enumerate(bounds)]
    # a lost part is named, never silently merged into a shorter dataset
    with pytest.raises(sharding.MissingShardError, match="1 row|40 row"):
        clean.merge(params, clean_parts[1:], n)
    clean.merge(params, clean_parts, n)
    _assert_same_outputs(local_outputs, root)


def test_stage_flows_on_a_dask_cluster_equal_the_local_stages(
    tmp_path, local_outputs, prefect_server, monkeypatch
):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("prefect_dask")
    root = tmp_path / "dask"
    root.mkdir()
    _params(root, kind="dask", n_workers=2, processes=False)
    shutil.copytree(
        local_outputs / "data/raw",
        root / "data/raw",
        ignore=shutil.ignore_patterns("cutouts", "cutouts.parquet"),
    )
    monkeypatch.chdir(root)
    workers: list[str] = []
    clean = registry.get("clean").shards
    real_shard = clean.shard

    def spy(*args, **kwargs):
        workers.append(distributed.get_worker().address)  # raises unless on a Dask worker
        return real_shard(*args, **kwargs)

    from skysort.flows.stage import stage

    object.__setattr__(clean, "shard", spy)  # Shards is frozen; the tasks look it up per call
    try:
        cut = stage(name="cutouts", params_path="params.yaml")
        report = stage(name="clean", params_path="params.yaml")
    finally:
        object.__setattr__(clean, "shard", real_shard)

    assert cut["objects"] == N_OBJECTS
    assert report == read_json(local_outputs / "reports/clean.json")
    assert len(workers) == 4  # one task per shard, not per image
    _assert_same_outputs(local_outputs, root)
