"""What a person sees of a run in the Prefect UI: run names, run tags, failure messages.

Nothing here may break a run: names fall back to plain ones, tagging only warns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from skysort.config import ConfigError, Params, load_params
from skysort.pipeline import registry
from skysort.tasks.logs import route_library_logs


class StageFailed(RuntimeError):
    """A stage raised: the message names the stage, the error's type and its text.

    It becomes the task run's and the flow run's state message, so the UI's run list
    says which stage failed and why, not just that "a task failed".
    """

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"stage {stage!r} failed: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


@contextmanager
def failures_named(stage: str) -> Iterator[None]:
    """Re-raise any exception inside as :class:`StageFailed` (the original is its cause)."""
    try:
        yield
    except StageFailed:
        raise
    except Exception as exc:
        raise StageFailed(stage, exc) from exc


@contextmanager
def running_stage(stage: str) -> Iterator[None]:
    """What every task doing a stage's work needs: library logs in the run, failures named."""
    route_library_logs()
    with failures_named(stage):
        yield


def stage_run_name(parameters: dict[str, Any]) -> str:
    """``task_run_name`` for the stage tasks: the stage and what it does with these params."""
    from prefect.runtime import task_run

    name = str(task_run.task_name or "stage")
    params = parameters.get("params")
    try:
        stage = registry.get(name)
    except ValueError:
        return name
    return stage.describe(params) if isinstance(params, Params) else name


def pipeline_run_name() -> str:
    """``flow_run_name`` for the pipeline: task, source, sample size and model of this run."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    path = parameters.get("params_path", "params.yaml")
    overrides = list(parameters.get("overrides") or [])
    try:
        p = load_params(path, overrides)
    except ConfigError:
        return f"pipeline: {path} (invalid parameters)"  # the flow body fails with the details
    name = f"pipeline: {p.task}, {p.source.kind}, {p.query.n_objects} objects, {p.train.describe()}"
    if path != "params.yaml":
        name += f", {path}"
    if overrides:
        name += f" (+{len(overrides)} override{'s' if len(overrides) > 1 else ''})"
    return name


def tag_flow_run(params: Params, *extra: str) -> None:
    """Tag the current flow run ``task:TASK``, ``source:KIND``, ``model:MODEL`` and ``extra``.

    Deployment tags are fixed; these follow the parameters of each run, so the UI can
    filter runs by task, source or model.
    """
    from prefect import get_run_logger
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    wanted = [
        f"task:{params.task}",
        f"source:{params.source.kind}",
        f"model:{params.train.model}",
        *extra,
    ]
    tags = list(dict.fromkeys([*ctx.flow_run.tags, *wanted]))
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(ctx.flow_run.id, tags=tags)
    except Exception as exc:  # noqa: BLE001  (tags are a convenience, never a failure)
        get_run_logger().warning("could not tag flow run %s: %s", ctx.flow_run.id, exc)
