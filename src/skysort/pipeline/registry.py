"""The stages of the DAG, in order: the one list everything else iterates.

``dvc.yaml`` has one entry per stage here (a test checks that its deps, params and
outs agree with each stage's wiring); the CLI, the Prefect tasks and flows and the
Dask path are built from this list.
"""

from __future__ import annotations

from skysort.config import Params
from skysort.pipeline.progress import Progress
from skysort.pipeline.stage import Report, Stage
from skysort.stages import (
    balance,
    baselines,
    clean,
    cutouts,
    evaluate,
    impute,
    predict,
    query,
    train,
)

STAGES: tuple[Stage, ...] = (
    query.STAGE,
    cutouts.STAGE,
    clean.STAGE,
    impute.STAGE,
    balance.STAGE,
    baselines.STAGE,
    train.STAGE,
    evaluate.STAGE,
    predict.STAGE,
)

NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
"""Stage names, in DAG order."""


def get(name: str) -> Stage:
    """The stage called ``name``, or a ``ValueError`` listing the stages."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ValueError(f"unknown stage {name!r}; stages are {', '.join(NAMES)}")


def upstream(name: str) -> tuple[str, ...]:
    """The stages whose outputs stage ``name`` reads (its edges in the DAG)."""
    return get(name).upstream(STAGES)


def module_doc(stage: Stage) -> str | None:
    """The docstring of the module that defines ``stage`` (what the stage does)."""
    import sys

    return sys.modules[stage.module].__doc__


def run_stage(name: str, params: Params, progress: Progress | None = None) -> Report:
    """Run one stage by name in this process; returns its report."""
    return get(name).run(params, progress)
