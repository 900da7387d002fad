"""The cutouts and clean stages sharded over a Dask cluster (``runner.kind: dask``).

Each is a subflow whose task runner comes from the ``runner`` params (prefect-dask's
``DaskTaskRunner``): shard tasks run on the cluster, prepare and merge here.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import as_completed

from skysort.config import Params
from skysort.tasks import shards
from skysort.tasks.progress import StageProgress
from skysort.tasks.runners import dask_task_runner, with_absolute_paths


@flow(name="skysort-cutouts-sharded", flow_run_name="cutouts-sharded")
def _cutouts(params: Params) -> dict[str, Any]:
    bounds = shards.prepare_cutouts(params)
    futures = [shards.cutouts_shard.submit(params, i, a, b) for i, (a, b) in enumerate(bounds)]
    total = bounds[-1][1] if bounds else 0
    with StageProgress("cutouts-progress", "cutouts fetched") as progress:
        done = 0
        progress(done, total)
        sizes = {id(f): b - a for f, (a, b) in zip(futures, bounds)}
        for future in as_completed(futures):
            future.result()  # a failed shard fails the stage now, naming its task run
            done += sizes[id(future)]
            progress(done, total)
    return shards.merge_cutouts(params, [f.result() for f in futures], total)


@flow(name="skysort-clean-sharded", flow_run_name="clean-sharded")
def _clean(params: Params) -> dict[str, Any]:
    bounds = shards.prepare_clean(params)
    futures = [shards.clean_shard.submit(params, i, a, b) for i, (a, b) in enumerate(bounds)]
    return shards.merge_clean(params, [f.result() for f in futures])


def cutouts(params: Params) -> dict[str, Any]:
    """The cutouts stage on the Dask cluster the params name."""
    runner = dask_task_runner(params.runner)
    return _cutouts.with_options(task_runner=runner)(with_absolute_paths(params))


def clean(params: Params) -> dict[str, Any]:
    """The clean stage on the Dask cluster the params name."""
    runner = dask_task_runner(params.runner)
    return _clean.with_options(task_runner=runner)(with_absolute_paths(params))


SHARDED_STAGES = {"cutouts": cutouts, "clean": clean}
"""The stages that ``runner.kind: dask`` runs sharded; the others run as usual."""
