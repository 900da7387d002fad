"""Prefect tasks for the sharded cutouts and clean stages (``runner.kind: dask``).

Shard tasks run on the Dask workers and return the path of the part they wrote;
prepare and merge run in the flow's own process and write the stage's outputs.
The logic lives in :mod:`skysort.shards`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from skysort import shards
from skysort.config import Params
from skysort.tasks.artifacts import publish
from skysort.tasks.monitoring import running_stage

_COMMON: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="cutouts-prepare", tags=["stage:cutouts"], **_COMMON)
def prepare_cutouts(params: Params) -> list[tuple[int, int]]:
    """Check the catalog, empty the work folder; the shards' row bounds."""
    p = params.paths
    with running_stage("cutouts"):
        n_rows = shards.prepare_cutouts(p.catalog, p.cutouts_dir, p.manifest)
    return shards.shard_bounds(n_rows, params.runner.shard_size)


@task(
    name="cutouts-shard",
    task_run_name="cutouts-shard-{shard}",
    tags=["stage:cutouts"],
    retries=1,
    retry_delay_seconds=30,
    **_COMMON,
)
def cutouts_shard(params: Params, shard: int, start: int, stop: int) -> Path:
    """Fetch or render one slice of the catalog; a retry resumes, it never refetches."""
    p = params.paths
    with running_stage("cutouts"):
        return shards.cutouts_shard(
            shard,
            start,
            stop,
            p.catalog,
            p.cutouts_dir,
            p.manifest,
            source=params.source,
            data=params.data,
            cutouts=params.cutouts,
            seed=params.seed,
            min_pixel_std=params.clean.min_pixel_std,
        )


@task(name="cutouts-merge", tags=["stage:cutouts"], **_COMMON)
def merge_cutouts(params: Params, parts: list[Path], n_rows: int) -> dict[str, Any]:
    with running_stage("cutouts"):
        report = shards.merge_cutouts(
            parts, n_rows, params.paths.manifest, params.paths.cutouts_dir
        )
        publish("cutouts", report, params)
    return report


@task(name="clean-prepare", tags=["stage:clean"], **_COMMON)
def prepare_clean(params: Params) -> list[tuple[int, int]]:
    p = params.paths
    with running_stage("clean"):
        n_rows = shards.prepare_clean(p.catalog, p.manifest, p.images)
    return shards.shard_bounds(n_rows, params.runner.shard_size)


@task(name="clean-shard", task_run_name="clean-shard-{shard}", tags=["stage:clean"], **_COMMON)
def clean_shard(params: Params, shard: int, start: int, stop: int) -> Path:
    """Check and decode one slice of the cutouts."""
    p = params.paths
    with running_stage("clean"):
        return shards.clean_shard(
            shard,
            start,
            stop,
            p.catalog,
            p.manifest,
            p.cutouts_dir,
            p.images,
            data=params.data,
            clean=params.clean,
        )


@task(name="clean-merge", tags=["stage:clean"], **_COMMON)
def merge_clean(params: Params, parts: list[Path]) -> dict[str, Any]:
    p = params.paths
    with running_stage("clean"):
        report = shards.merge_clean(
            parts,
            p.catalog,
            p.manifest,
            p.dataset,
            p.images,
            p.clean_report,
            data=params.data,
            clean=params.clean,
            seed=params.seed,
        )
        publish("clean", report, params)
    return report
