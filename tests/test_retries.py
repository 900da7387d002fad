"""Prefect retries a stage only on transient failures: a server down, not a bad request."""

from __future__ import annotations

from pathlib import Path

import pytest

from skysort.config import load_params
from skysort.pipeline.transient import is_transient
from skysort.sources.skyserver.sql_errors import SkyServerError, SkyServerUnavailable
from skysort.sources.skyserver.sql_response import parse_response
from tests.fakesky import FakeSkyServer, make_sky_catalog

ROOT = Path(__file__).resolve().parents[1]


def test_transient_errors_are_found_through_the_chain_of_causes():
    try:
        try:
            raise ConnectionResetError("reset by peer")
        except OSError as exc:
            raise RuntimeError("stage 'query' failed") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert is_transient(SkyServerUnavailable("HTTP 503"))
    for permanent in (ValueError("bad"), FileNotFoundError("x.sql"), SkyServerError("syntax")):
        assert not is_transient(permanent)


@pytest.mark.parametrize(("status", "transient"), [(503, True), (429, True), (404, False)])
def test_http_errors_are_transient_only_when_the_server_is_overloaded_or_down(status, transient):
    with pytest.raises(SkyServerError) as caught:
        parse_response(status, "<html>busy</html>", "http://127.0.0.1/x")
    assert is_transient(caught.value) is transient


def _query_attempts(tmp_path, monkeypatch, overrides: list[str]) -> tuple[int, str]:
    """Run the query task (zero retry delay) in a flow; its run count and final message."""
    from prefect import flow

    from skysort.tasks.stages import STAGE_TASKS

    monkeypatch.chdir(tmp_path)
    params = load_params(ROOT / "params.yaml", ["source.kind=skyserver", *overrides])
    query = STAGE_TASKS["query"].with_options(retry_delay_seconds=0)

    states = []

    @flow
    def one_stage() -> None:
        states.append(query(params, return_state=True))

    one_stage()
    (state,) = states
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_task_run(state.state_details.task_run_id)
    return run.run_count, str(state.message)


@pytest.mark.slow
def test_a_rejected_query_fails_at_once_and_an_unreachable_server_is_retried(
    tmp_path, monkeypatch, prefect_server
):
    with FakeSkyServer(catalog=make_sky_catalog(10)) as sky:
        # an SQL error cannot succeed on a retry
        sky.sql_error_trigger = "SELECT"
        runs, message = _query_attempts(
            tmp_path, monkeypatch, [f"source.skyserver.base_url={sky.url}",
                                    "source.skyserver.min_query_interval_s=0"],
        )  # fmt: skip
        assert runs == 1 and "rejected the SQL" in message
        # a server answering 503 may come back: the stage's two retries are used
        sky.sql_error_trigger = ""
        sky.sql_status = 503
        runs, message = _query_attempts(
            tmp_path, monkeypatch, [f"source.skyserver.base_url={sky.url}",
                                    "source.skyserver.min_query_interval_s=0"],
        )  # fmt: skip
        assert runs == 3 and "HTTP 503" in message
