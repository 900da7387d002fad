"""Record what a pipeline run produced: DVC cache and lock, DVC remote, and git (``record``)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE

from skysort.config import Record
from skysort.pipeline import versioning


@task(
    name="record-in-dvc",
    task_run_name="record-in-dvc",
    tags=["dvc"],
    cache_policy=NO_CACHE,
    persist_result=False,
)
def record_in_dvc(root: Path, record: Record | None = None) -> str:
    """``dvc commit`` the outputs, ``dvc push`` them and ``git commit`` dvc.lock as ``record`` says.

    Returns what was done. The push comes before the git commit: a commit in git
    then always points at data the remote already holds.
    """
    record = record or Record()
    logger = get_run_logger()
    if not versioning.is_dvc_project(root):
        if record.git_commit:
            raise versioning.GitError(
                f"record.git_commit: true, but {root} is not a DVC project (no .dvc/ or "
                "dvc.yaml), so there is no dvc.lock to commit"
            )
        logger.warning(
            "%s is not a DVC project (no .dvc/ or dvc.yaml): outputs not versioned", root
        )
        return "skipped: not a DVC project"
    versioning.commit_outputs(root)
    done = ["committed to the DVC cache"]
    if not record.push:
        logger.info("record.push: false: not pushing to a DVC remote")
    elif versioning.has_remote(root):
        versioning.push_outputs(root)
        done.append("pushed")
    else:
        logger.info("no DVC remote configured: outputs are in the local cache only")
    if record.git_commit:
        sha = versioning.commit_lock(root, _message())
        done.append(f"dvc.lock committed to git as {sha[:10]}" if sha else "dvc.lock unchanged")
    return ", ".join(done)


def _message() -> str:
    name, run_id = runtime.flow_run.name, runtime.flow_run.id
    return (
        f'skysort: record run "{name}" in dvc.lock\n\n'
        f"Prefect flow run {name} ({run_id}). `dvc pull` after checking out this\n"
        "commit restores the data, model and metrics of that run.\n"
    )
