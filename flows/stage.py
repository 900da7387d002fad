"""One stage as its own flow run: what ``skysort stage NAME`` (and so ``dvc repro``) runs."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import State

from skysort.config import Params, load_params
from skysort.flows.sharded import is_sharded, run_sharded
from skysort.pipeline import registry
from skysort.tasks.edges import after, unlinked
from skysort.tasks.monitoring import tag_flow_run
from skysort.tasks.stages import STAGE_TASKS


def run_in_flow(
    name: str, params: Params, wait_for: list[State] | None = None
) -> tuple[dict[str, Any], State]:
    """Run stage ``name`` inside the current flow, locally or sharded as ``runner`` says.

    Returns the stage's report and its run's final state; raises the
    stage's error. ``wait_for`` are the states of the stages whose outputs it reads:
    they, and nothing else, become the stage's edges in the Prefect UI's task graph
    (:mod:`skysort.tasks.edges`). A sharded stage is a subflow, drawn as one node with
    the same edges.
    """
    if is_sharded(name, params):
        return run_sharded(name, params, wait_for)
    state = STAGE_TASKS[name](unlinked(params), wait_for=after(wait_for or []), return_state=True)
    return state.result(), state


@flow(name="skysort-stage", flow_run_name="stage-{name}")
def stage(
    name: str, params_path: str = "params.yaml", overrides: list[str] | None = None
) -> dict[str, Any]:
    """Run the stage ``name`` with the parameters from ``params_path``."""
    registry.get(name)  # an unknown name fails before anything runs
    params = load_params(params_path, overrides or [])
    tag_flow_run(params, f"stage:{name}")
    return run_in_flow(name, params)[0]
