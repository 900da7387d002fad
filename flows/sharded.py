"""A stage that shards, run over a Dask cluster (``runner.kind: dask``).

Each run is a subflow whose task runner comes from the ``runner`` params (prefect-dask's
``DaskTaskRunner``): shard tasks run on the cluster, prepare and merge here.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from prefect import flow, tags
from prefect.futures import as_completed
from prefect.states import State

from skysort.config import Params
from skysort.pipeline import registry
from skysort.tasks.edges import after, unlinked
from skysort.tasks.progress import StageProgress, progress_key
from skysort.tasks.runners import dask_task_runner, with_absolute_paths
from skysort.tasks.shards import SHARD_TASKS


@flow(name="skysort-sharded")
def _sharded(name: str, params: Params) -> dict[str, Any]:
    # The graph inside: prepare -> every shard (through the bounds it returned, each
    # shard's rows) -> merge, and no edge the parameters draw. The shards get ``params``
    # as it is: Dask would unpack ``unlinked``'s wrapper, a tuple, on the way to its
    # workers, and nothing run in this subflow returns a part of it.
    stage, tasks = registry.get(name), SHARD_TASKS[name]
    bounds = tasks.prepare(unlinked(params))
    futures = [tasks.shard.submit(params, i, rows) for i, rows in enumerate(bounds)]
    total = bounds[-1][1] if bounds else 0
    bar = (
        StageProgress(progress_key(name, params), stage.progress)
        if stage.progress
        else nullcontext()
    )
    with bar as progress:
        done = 0
        sizes = {id(f): b - a for f, (a, b) in zip(futures, bounds)}
        for future in as_completed(futures):
            future.result()  # a failed shard fails the stage now, naming its task run
            done += sizes[id(future)]
            if progress is not None:
                progress(done, total)
    parts = [f.result() for f in futures]
    return tasks.merge(unlinked(params), unlinked(parts), total, wait_for=after(futures))


def run_sharded(
    name: str, params: Params, wait_for: list[State] | None = None
) -> tuple[dict[str, Any], State]:
    """Stage ``name`` sharded over the Dask cluster the params name; its report and state.

    The subflow is one node of the parent's task graph, tagged with the stage, with an
    edge from each of ``wait_for``.
    """
    runner = dask_task_runner(params.runner)
    subflow = _sharded.with_options(
        name=f"skysort-{name}-sharded", flow_run_name=f"{name}-sharded", task_runner=runner
    )
    with tags(f"stage:{name}"):
        state = subflow(
            name,
            unlinked(with_absolute_paths(params)),
            wait_for=after(wait_for or []),
            return_state=True,
        )
    return state.result(), state


def is_sharded(name: str, params: Params) -> bool:
    """Whether stage ``name`` runs sharded with these params: the one place that decides."""
    return params.runner.kind == "dask" and name in SHARD_TASKS
