"""One stage as its own flow run: what ``skysort stage NAME`` (and so ``dvc repro``) runs."""

from __future__ import annotations

from prefect import flow

from skysort.config import STAGES, load_params
from skysort.flows.sharded import SHARDED_STAGES
from skysort.tasks.monitoring import tag_flow_run
from skysort.tasks.stages import STAGE_TASKS


@flow(name="skysort-stage", flow_run_name="stage-{name}")
def stage(name: str, params_path: str = "params.yaml", overrides: list[str] | None = None) -> dict:
    """Run the stage ``name`` with the parameters from ``params_path``."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    params = load_params(params_path, overrides or [])
    tag_flow_run(params, f"stage:{name}")
    if params.runner.kind == "dask" and name in SHARDED_STAGES:
        return SHARDED_STAGES[name](params)
    return STAGE_TASKS[name](params)
