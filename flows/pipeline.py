"""The whole DAG as one Prefect flow: ``skysort run`` or ``python -m skysort.flows.pipeline``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import State

from skysort import targets
from skysort.config import load_params
from skysort.flows.deployment import FLOW_NAME, check_deployment_run
from skysort.flows.stage import run_in_flow
from skysort.pipeline import registry
from skysort.pipeline.versioning import lineage_mismatch
from skysort.tasks.monitoring import pipeline_run_name, tag_flow_run
from skysort.tasks.versioning import record_in_dvc


@flow(name=FLOW_NAME, flow_run_name=pipeline_run_name, log_prints=True)
def pipeline(
    params_path: str = "params.yaml", overrides: list[str] | None = None, record: bool = True
) -> dict[str, Any]:
    """Run every stage in DAG order, each waiting for the stages it reads from; then record.

    With ``overrides``, or a ``params_path`` whose values differ from the project's
    ``params.yaml``, the outputs are not what ``dvc.yaml`` would produce, so they are
    not recorded in DVC (``dvc repro`` would rightly want to rerun).
    """
    check_deployment_run(params_path, overrides or [])
    params = load_params(params_path, overrides or [])
    tag_flow_run(params)
    states: dict[str, State] = {}
    reports: dict[str, dict[str, Any]] = {}
    for stage in registry.STAGES:
        upstream = [states[u] for u in registry.upstream(stage.name) if u in states]
        reports[stage.name], state = run_in_flow(stage.name, params, wait_for=upstream)
        if state is not None:
            states[stage.name] = state
    if record:
        root = Path.cwd()  # the project: dvc.yaml and its params.yaml
        mismatch = lineage_mismatch(root, params_path, params, overrides or [])
        if mismatch:
            get_run_logger().warning("not recording in DVC: %s", mismatch)
        else:
            record_in_dvc(root, params.record)
    return targets.get(params.task).headline(reports["evaluate"])


if __name__ == "__main__":
    from skysort.flows.cli import turn_analytics_off

    turn_analytics_off()  # before the first flow run starts a server (Prefect reads them late)
    pipeline(params_path=sys.argv[1] if len(sys.argv) > 1 else "params.yaml")
