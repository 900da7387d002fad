"""One Prefect task per stage. Logic lives in ``skysort.stages``; here: retries, logs, artifacts.

Tasks take the validated :class:`Params` and return the stage's small report dict;
data moves between stages through files, never through task results.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from skysort.config import Params
from skysort.stages import run_stage
from skysort.tasks.artifacts import publish
from skysort.tasks.monitoring import running_stage, stage_run_name
from skysort.tasks.progress import StageProgress

# DVC decides what is stale; Prefect caching would be a second, disagreeing cache.
_COMMON: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "persist_result": False,
    "task_run_name": stage_run_name,
}


def _run(stage: str, params: Params, progress: StageProgress | None = None) -> dict[str, Any]:
    with running_stage(stage):
        report = run_stage(stage, params, progress=progress)
        publish(stage, report, params)
    return report


@task(name="query", tags=["stage:query"], retries=2, retry_delay_seconds=[10, 60], **_COMMON)
def query(params: Params) -> dict[str, Any]:
    """Write the catalog (network I/O for SkyServer: retried)."""
    return _run("query", params)


@task(name="cutouts", tags=["stage:cutouts"], retries=1, retry_delay_seconds=30, **_COMMON)
def cutouts(params: Params) -> dict[str, Any]:
    """Fetch or render every cutout, with live progress; a retry resumes, it never refetches."""
    with StageProgress("cutouts-progress", "cutouts fetched") as progress:
        return _run("cutouts", params, progress)


@task(name="clean", tags=["stage:clean"], **_COMMON)
def clean(params: Params) -> dict[str, Any]:
    return _run("clean", params)


@task(name="impute", tags=["stage:impute"], **_COMMON)
def impute(params: Params) -> dict[str, Any]:
    return _run("impute", params)


@task(name="balance", tags=["stage:balance"], **_COMMON)
def balance(params: Params) -> dict[str, Any]:
    return _run("balance", params)


@task(name="baselines", tags=["stage:baselines"], **_COMMON)
def baselines(params: Params) -> dict[str, Any]:
    return _run("baselines", params)


@task(name="train", tags=["stage:train"], **_COMMON)
def train(params: Params) -> dict[str, Any]:
    return _run("train", params)


@task(name="evaluate", tags=["stage:evaluate"], **_COMMON)
def evaluate(params: Params) -> dict[str, Any]:
    return _run("evaluate", params)


STAGE_TASKS = {
    "query": query,
    "cutouts": cutouts,
    "clean": clean,
    "impute": impute,
    "balance": balance,
    "baselines": baselines,
    "train": train,
    "evaluate": evaluate,
}
