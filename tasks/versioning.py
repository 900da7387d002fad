"""Record what a pipeline run produced in DVC (and push it when a remote is configured)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from skysort import versioning


@task(name="record-in-dvc", tags=["dvc"], cache_policy=NO_CACHE, persist_result=False)
def record_in_dvc(root: Path, push: bool = True) -> str:
    """``dvc commit`` the outputs (and ``dvc push`` if a remote exists); returns what was done."""
    logger = get_run_logger()
    if not versioning.is_dvc_project(root):
        logger.warning(
            "%s is not a DVC project (no .dvc/ or dvc.yaml): outputs not versioned", root
        )
        return "skipped: not a DVC project"
    versioning.commit_outputs(root)
    if push and versioning.has_remote(root):
        versioning.push_outputs(root)
        return "committed and pushed"
    return "committed"
