"""The whole DAG as one Prefect flow: ``skysort run`` or ``python -m skysort.flows.pipeline``."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import State

from skysort import targets
from skysort.config import Params, load_params
from skysort.flows.deployment import FLOW_NAME, check_deployment_run
from skysort.flows.stage import run_in_flow
from skysort.pipeline import registry
from skysort.pipeline.run_summary import RunFacts, run_summary
from skysort.pipeline.versioning import git_revision, lineage_mismatch
from skysort.tasks.artifacts import current_run_folder, publish_artifacts
from skysort.tasks.edges import after, unlinked
from skysort.tasks.monitoring import pipeline_run_name, tag_flow_run
from skysort.tasks.versioning import record_in_dvc


@flow(name=FLOW_NAME, flow_run_name=pipeline_run_name, log_prints=True)
def pipeline(
    params_path: str = "params.yaml", overrides: list[str] | None = None, record: bool = True
) -> dict[str, Any]:
    """Run every stage in DAG order, each waiting for the stages it reads from; then record.

    With ``overrides``, or a ``params_path`` whose values differ from the project's
    ``params.yaml``, the outputs are not what ``dvc.yaml`` would produce, so they are
    not recorded in DVC (``dvc repro`` would rightly want to rerun). The flow run ends
    with its summary artifact (``TASK-run-summary``), a failed run's too.
    """
    check_deployment_run(params_path, overrides or [])
    params = load_params(params_path, overrides or [])
    tag_flow_run(params)
    states: dict[str, State] = {}
    reports: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    facts = RunFacts(params_path, list(overrides or []), seconds,
                     pictures=current_run_folder(params.ui))  # fmt: skip
    try:
        for stage in registry.STAGES:
            upstream = [states[u] for u in registry.upstream(stage.name) if u in states]
            started = time.perf_counter()
            reports[stage.name], states[stage.name] = run_in_flow(
                stage.name, params, wait_for=upstream
            )
            seconds[stage.name] = time.perf_counter() - started
        recorded = "not recorded (`record: false`)"
        if record:
            recorded = _record(params_path, params, overrides or [], states)
    except Exception as exc:
        _publish_summary(params, reports, replace(facts, failed=str(exc)))
        raise
    revision = git_revision(Path.cwd())
    _publish_summary(params, reports, replace(facts, recorded=recorded, revision=revision))
    return targets.get(params.task).headline(reports["evaluate"])


def _record(
    params_path: str, params: Params, overrides: list[str], states: dict[str, State]
) -> str:
    """Record the outputs in DVC, after the stages nothing reads from; what was done.

    Not when they are not what ``dvc.yaml`` would produce (``lineage_mismatch``).
    """
    root = Path.cwd()  # the project: dvc.yaml and its params.yaml
    mismatch = lineage_mismatch(root, params_path, params, overrides)
    if mismatch:
        get_run_logger().warning("not recording in DVC: %s", mismatch)
        return f"not recorded: {mismatch}"
    read = {u for name in states for u in registry.upstream(name)}
    last = [state for name, state in states.items() if name not in read]
    return record_in_dvc(unlinked(root), unlinked(params.record), wait_for=after(last))


def _publish_summary(params: Params, reports: dict[str, dict[str, Any]], facts: RunFacts) -> None:
    """The run's summary as a flow-run artifact; a summary that fails only warns."""
    try:
        publish_artifacts([run_summary(params, reports, facts)], params.task)
    except Exception as exc:  # noqa: BLE001  (the summary never fails a run)
        get_run_logger().warning("no run summary: %s: %s", type(exc).__name__, exc)


if __name__ == "__main__":
    from skysort.flows.cli import start_tied_temporary_server, turn_analytics_off

    turn_analytics_off()  # before the first flow run starts a server (Prefect reads them late)
    start_tied_temporary_server()()
    pipeline(params_path=sys.argv[1] if len(sys.argv) > 1 else "params.yaml")
