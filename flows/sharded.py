"""A stage that shards, run over a Dask cluster (``runner.kind: dask``).

Each run is a subflow whose task runner comes from the ``runner`` params (prefect-dask's
``DaskTaskRunner``): shard tasks run on the cluster, prepare and merge here.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from prefect import flow
from prefect.futures import as_completed

from skysort.config import Params
from skysort.pipeline import registry
from skysort.tasks.progress import StageProgress
from skysort.tasks.runners import dask_task_runner, with_absolute_paths
from skysort.tasks.shards import SHARD_TASKS


@flow(name="skysort-sharded")
def _sharded(name: str, params: Params) -> dict[str, Any]:
    stage, tasks = registry.get(name), SHARD_TASKS[name]
    bounds = tasks.prepare(params)
    futures = [tasks.shard.submit(params, i, a, b) for i, (a, b) in enumerate(bounds)]
    total = bounds[-1][1] if bounds else 0
    bar = StageProgress(f"{name}-progress", stage.progress) if stage.progress else nullcontext()
    with bar as progress:
        done = 0
        sizes = {id(f): b - a for f, (a, b) in zip(futures, bounds)}
        for future in as_completed(futures):
            future.result()  # a failed shard fails the stage now, naming its task run
            done += sizes[id(future)]
            if progress is not None:
                progress(done, total)
    return tasks.merge(params, [f.result() for f in futures], total)


def run_sharded(name: str, params: Params) -> dict[str, Any]:
    """Stage ``name`` sharded over the Dask cluster the params name."""
    runner = dask_task_runner(params.runner)
    return _sharded.with_options(
        name=f"skysort-{name}-sharded", flow_run_name=f"{name}-sharded", task_runner=runner
    )(name, with_absolute_paths(params))


def is_sharded(name: str, params: Params) -> bool:
    """Whether stage ``name`` runs sharded with these params: the one place that decides."""
    return params.runner.kind == "dask" and name in SHARD_TASKS
