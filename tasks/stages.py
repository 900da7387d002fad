"""One Prefect task per stage, built from the registry; the logic lives in ``skysort.stages``.

Here: retries, logs, progress and artifacts. Tasks take the validated
:class:`Params` and return the stage's small report dict; data moves between stages
through files, never through task results. Callers pass the parameters through
:func:`skysort.tasks.edges.unlinked`, so that the task graph has only the edges given
in ``wait_for``.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from skysort.config import Params
from skysort.pipeline import registry
from skysort.pipeline.stage import Stage
from skysort.pipeline.transient import is_transient
from skysort.tasks.artifacts import publish
from skysort.tasks.monitoring import running_stage, stage_run_name
from skysort.tasks.progress import StageProgress, progress_key

TASK_OPTIONS: dict[str, Any] = {
    # DVC decides what is stale; Prefect caching would be a second, disagreeing cache.
    "cache_policy": NO_CACHE,
    "persist_result": False,
}


def retry_options(stage: Stage) -> dict[str, Any]:
    """Prefect retry options for a stage that does network I/O (none for the others).

    Only a transient failure (network, timeout, a server's 429 or 5xx) is retried: an
    error that cannot succeed, such as a bad parameter or a missing file, fails at once.
    """
    if not stage.retry_delays_s:
        return {}
    return {
        "retries": len(stage.retry_delays_s),
        "retry_delay_seconds": list(stage.retry_delays_s),
        "retry_condition_fn": retry_if_transient,
    }


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's ``retry_condition_fn``: retry only when the run failed on a transient error."""
    error = state.data if isinstance(state.data, BaseException) else None
    return is_transient(error)


def progress_for(stage: Stage, params: Params) -> StageProgress | nullcontext[None]:
    """The stage's progress bar and UI progress artifact, if it reports progress."""
    if stage.progress is None:
        return nullcontext()
    return StageProgress(progress_key(stage.name, params), stage.progress)


def _stage_task(stage: Stage) -> Task[[Params], dict[str, Any]]:
    def run(params: Params) -> dict[str, Any]:
        with running_stage(stage.name), progress_for(stage, params) as progress:
            report = stage.run(params, progress)
            publish(stage, report, params)
        return report

    doc = (registry.module_doc(stage) or f"Stage {stage.name}.").strip()
    run.__doc__ = doc
    run.__name__ = run.__qualname__ = stage.name
    return task(
        run,
        name=stage.name,
        description=doc.splitlines()[0],
        tags=[f"stage:{stage.name}"],
        task_run_name=stage_run_name,
        **retry_options(stage),
        **TASK_OPTIONS,
    )


STAGE_TASKS: dict[str, Task[[Params], dict[str, Any]]] = {
    s.name: _stage_task(s) for s in registry.STAGES
}
"""The Prefect task of each stage, in DAG order."""
