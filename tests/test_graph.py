"""The task graph a person watches in the Prefect UI is the DAG ``dvc dag`` prints."""

from __future__ import annotations

import re

import pytest

from skysort.pipeline import registry
from tests.project import dvc, make_project

pytestmark = pytest.mark.slow

TINY = {
    "query": {"n_objects": 150},
    "baselines": {"models": ["logreg"]},
    "train": {"epochs": 1, "model": "tabular"},
}


def _dvc_edges(root) -> set[tuple[str, str]]:
    dot = dvc("dag", "--dot", cwd=root).stdout
    return set(re.findall(r'"([\w-]+)"\s*->\s*"([\w-]+)"', dot))


def _task_graph_edges(flow_run_id) -> set[tuple[str, str]]:
    """(upstream stage, stage) for every ``wait_for`` edge the server recorded."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    stage_of = {r.id: _stage(r) for r in runs}
    edges = set()
    for run in runs:
        for inp in run.task_inputs.get("wait_for", []):
            edges.add((stage_of[inp.id], stage_of[run.id]))
    return edges


def _stage(run) -> str:
    (tag,) = [t for t in run.tags if t.startswith("stage:")]
    return tag.removeprefix("stage:")


def test_each_stage_task_waits_for_exactly_the_stages_it_reads_from(
    tmp_path, prefect_server, monkeypatch
):
    root = make_project(tmp_path / "proj", TINY)
    monkeypatch.chdir(root)
    from skysort.flows.pipeline import pipeline

    state = pipeline(params_path="params.yaml", record=False, return_state=True)
    assert state.is_completed(), state.message
    edges = _task_graph_edges(state.state_details.flow_run_id)
    # the same edges as DVC's DAG (between stages), taken from the registry
    dvc_edges = {(a, b) for a, b in _dvc_edges(root) if a in registry.NAMES and b in registry.NAMES}
    assert edges == dvc_edges
    assert ("cutouts", "clean") in edges and ("query", "impute") not in edges
