"""Prefect tasks for a stage that shards (``Stage.shards``), built from the registry.

Shard tasks run on the Dask workers and return the path of the part they wrote;
prepare and merge run in the flow's own process and write the stage's outputs.
The logic lives in the stage's own module. Their graph in the UI: prepare, then
every shard, then merge (``skysort.flows.sharded``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Task, task

from skysort.config import Params
from skysort.pipeline import registry, sharding
from skysort.pipeline.stage import Shards, Stage
from skysort.tasks.artifacts import publish
from skysort.tasks.monitoring import running_stage
from skysort.tasks.stages import TASK_OPTIONS, retry_options


@dataclass(frozen=True)
class ShardTasks:
    prepare: Task[[Params], list[tuple[int, int]]]
    shard: Task[[Params, int, tuple[int, int]], Path]
    merge: Task[[Params, list[Path], int], dict[str, Any]]


def _shards(name: str) -> Shards:
    # Looked up when the task runs: Dask sends the task to its workers by pickling it,
    # and a worker then imports the stage module rather than receiving a copy.
    shards = registry.get(name).shards
    assert shards is not None
    return shards


def _shard_tasks(stage: Stage) -> ShardTasks:
    tags = [f"stage:{stage.name}"]
    name = stage.name

    def prepare(params: Params) -> list[tuple[int, int]]:
        """Check the inputs, empty the work folder; the shards' row bounds."""
        with running_stage(name):
            n_rows = _shards(name).prepare(params)
        return sharding.shard_bounds(n_rows, params.runner.shard_size)

    def shard(params: Params, shard: int, rows: tuple[int, int]) -> Path:
        """Process rows ``[start, stop)`` of the catalog; the path of the part it wrote.

        ``rows`` is one of prepare's bounds as it returned them: Prefect draws the edge
        from prepare through it.
        """
        start, stop = rows
        with running_stage(name):
            return _shards(name).shard(params, shard, start, stop)

    def merge(params: Params, parts: list[Path], n_rows: int) -> dict[str, Any]:
        """Join the parts into the stage's outputs; its report."""
        with running_stage(name):
            report = registry.get(name).merge(params, parts, n_rows)
            publish(registry.get(name), report, params)
        return report

    return ShardTasks(
        prepare=task(
            prepare,
            name=f"{stage.name}-prepare",
            task_run_name=f"{stage.name}-prepare",
            tags=tags,
            **TASK_OPTIONS,
        ),
        shard=task(
            shard,
            name=f"{stage.name}-shard",
            task_run_name=f"{stage.name}-shard-{{shard}}",
            tags=tags,
            **retry_options(stage),
            **TASK_OPTIONS,
        ),
        merge=task(
            merge,
            name=f"{stage.name}-merge",
            task_run_name=f"{stage.name}-merge",
            tags=tags,
            **TASK_OPTIONS,
        ),
    )


SHARD_TASKS: dict[str, ShardTasks] = {
    s.name: _shard_tasks(s) for s in registry.STAGES if s.shards is not None
}
"""The prepare, shard and merge tasks of each stage that shards."""
