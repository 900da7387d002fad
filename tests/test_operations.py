"""Operations against a real Prefect server: scheduled deployments, triggered runs, failures.

The served deployment (``skysort serve``) and the prefect.yaml deployment (``skysort
deploy`` + a process worker) each run in a throw-away project; every subprocess is
killed at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import pytest

from skysort.pipeline.registry import NAMES as STAGES
from tests.project import make_project, tool_env
from tests.waiting import holds_throughout, wait_for

pytestmark = pytest.mark.slow

# Smaller than TINY_OVERRIDES: the point is the orchestration, not the model.
SMALL = {
    "query": {"n_objects": 200},
    "train": {"epochs": 2},
    # a rare cron, so no scheduled run falls due during the test; and a non-default zone
    "schedule": {"cron": "17 4 29 2 *", "timezone": "Europe/Paris"},
}
# every key names the task; the last one is the flow run's own summary
STAGE_ARTIFACTS = {f"multiclass-{key}" for key in {
    "query-class-mix", "cutouts-status", "cutouts-progress", "clean-dropped", "clean-splits",
    "impute-report", "balance-class-counts", "baselines-metrics", "train-summary",
    "evaluate-metrics", "evaluate-plots",
    "train-progress", "run-summary",
}}  # fmt: skip


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _tail(log: Path) -> Callable[[], str]:
    """A ``context`` for wait_for: the end of a subprocess's log."""
    return lambda: f"--- {log.name}\n{log.read_text()[-3000:]}" if log.exists() else ""


def _default_sigint() -> None:
    # Tests started in the background by a script (`pytest ... &`) inherit SIGINT ignored, and
    # an ignored signal survives exec: `serve` would never see the SIGINT that stops it, and
    # killed 20 s later it never pauses its deployment.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def _background(cmd: list[str], cwd: Path, log: Path, env: dict[str, str]) -> Iterator[None]:
    """Run ``cmd`` in its own process group; interrupt, then kill that group on exit."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_default_sigint)  # fmt: skip
        try:
            yield
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def _deployment(name: str):
    from prefect.exceptions import ObjectNotFound

    with _client() as client:
        try:
            return client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None


def _trigger(deployment_id: UUID) -> UUID:
    with _client() as client:
        return client.create_flow_run_from_deployment(deployment_id).id


def _finished(run_id: UUID):
    with _client() as client:
        run = client.read_flow_run(run_id)
    return run if run.state is not None and run.state.is_final() else None


def _task_runs(run_id: UUID) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    with _client() as client:  # the sync client sends null sort/limit unless given
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )


def _stage_of(task_run) -> str:
    return task_run.name.split(":")[0]


def _stage_runs(run_id: UUID, stages) -> dict:
    """The run's stage task runs by stage, once every one of ``stages`` has a final state.

    Task runs are recorded from events the flow's process sends: they lag the flow run.
    """

    def settled(tasks: list) -> bool:
        final = {_stage_of(t) for t in tasks if t.state is not None and t.state.is_final()}
        return set(stages) <= final

    tasks = wait_for(lambda: _task_runs(run_id), settled, what=f"final task runs of {stages}")
    return {_stage_of(t): t for t in tasks}


def _artifact_keys(run_id: UUID) -> set[str]:
    import httpx

    # the sync client's read_artifacts sends nulls the server rejects: ask the API directly
    body = {"artifacts": {"flow_run_id": {"any_": [str(run_id)]}}, "limit": 200, "offset": 0,
            "sort": "CREATED_DESC"}  # fmt: skip
    resp = httpx.post(f"{os.environ['PREFECT_API_URL']}/artifacts/filter", json=body, timeout=30)
    resp.raise_for_status()
    return {a["key"] for a in resp.json() if a.get("key")}


def _logs(run_id: UUID, min_level: int = 0) -> list:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
    from prefect.client.schemas.sorting import LogSort

    with _client() as client:
        return client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[run_id]), level=LogFilterLevel(ge_=min_level)
            ),
            limit=200,
            offset=0,
            sort=LogSort.TIMESTAMP_ASC,
        )


def _env(**extra: str) -> dict[str, str]:
    return {**tool_env(), "PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5", **extra}  # fmt: skip


def test_served_deployment_runs_the_whole_pipeline_when_triggered(tmp_path, prefect_server):
    from prefect.client.schemas.schedules import CronSchedule

    root = make_project(tmp_path / "proj", SMALL)
    log = tmp_path / "serve.log"
    with _background(["skysort", "serve"], root, log, _env()):
        dep = wait_for(lambda: _deployment("skysort-pipeline/scheduled-serve"), timeout=120,
                       what="the served deployment", context=_tail(log))  # fmt: skip
        (sched,) = dep.schedules
        assert isinstance(sched.schedule, CronSchedule) and sched.active
        assert (sched.schedule.cron, sched.schedule.timezone) == ("17 4 29 2 *", "Europe/Paris")
        assert {"skysort", "scheduled", "served"} <= set(dep.tags)
        run_id = _trigger(dep.id)
        run = wait_for(lambda: _finished(run_id), timeout=420, what="the triggered run",
                       context=_tail(log))  # fmt: skip
        assert run.state.is_completed(), f"{run.state.message}\n{log.read_text()[-4000:]}"
        # read what the run sent while `serve` (and the run's process) still lives
        by_stage = _stage_runs(run_id, STAGES)
        keys = wait_for(lambda: _artifact_keys(run_id), lambda k: k >= STAGE_ARTIFACTS,
                        what=f"artifacts {sorted(STAGE_ARTIFACTS)}")  # fmt: skip

    assert run.name == "pipeline: multiclass, synthetic, 200 objects, fusion/small_cnn"
    assert {"task:multiclass", "source:synthetic", "model:fusion", "skysort", "served"} <= set(
        run.tags
    )
    # one task run per stage, all Completed, with names that say what they did
    tasks = [t for t in _task_runs(run_id) if _stage_of(t) in STAGES]
    assert sorted(_stage_of(t) for t in tasks) == sorted(STAGES)
    assert all(t.state.is_completed() for t in by_stage.values())
    names = {t.name for t in tasks}
    assert {"query: 200 objects from synthetic", "train: fusion/small_cnn, 2 epochs"} <= names
    assert keys >= STAGE_ARTIFACTS
    # the run happened in the project, and recorded its outputs in DVC
    for out in (
        "models/model.keras",
        "reports/metrics.json",
        "reports/plots/confusion.png",
        "dvc.lock",
    ):
        assert (root / out).is_file(), out
    # stopping `serve` pauses the deployment: nothing is left to run it
    assert not dep.paused
    wait_for(lambda: _deployment("skysort-pipeline/scheduled-serve"), lambda d: d.paused,
             what="the served deployment to be paused", context=_tail(log))  # fmt: skip


def test_prefect_yaml_deployment_runs_on_a_worker_and_a_failing_stage_says_why(
    tmp_path, prefect_server
):
    from prefect.client.schemas.schedules import CronSchedule

    root = make_project(tmp_path / "proj", SMALL)
    env = _env()
    deploy = subprocess.run(["skysort", "deploy"], cwd=root, env=env, capture_output=True,
                            text=True)  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert "rewrote prefect.yaml" in deploy.stdout  # the cron changed in params.yaml
    assert "17 4 29 2 *" in (root / "prefect.yaml").read_text()
    dep = _deployment("skysort-pipeline/scheduled")
    (sched,) = dep.schedules
    assert isinstance(sched.schedule, CronSchedule)
    assert (sched.schedule.cron, sched.schedule.timezone) == ("17 4 29 2 *", "Europe/Paris")
    assert dep.work_pool_name == "skysort-process"
    with _client() as client:
        assert client.read_work_pool("skysort-process").type == "process"
    # the worker runs the flow in the project directory, where params.yaml is
    (step,) = dep.pull_steps
    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == str(root)
    assert dep.parameters == {"params_path": "params.yaml", "overrides": [], "record": True}

    # a broken workspace: where the cutouts go there is a file, not a folder
    (root / "data/raw").mkdir(parents=True)
    (root / "data/raw/cutouts").write_text("not a folder")
    run_id = _trigger(dep.id)
    log = tmp_path / "worker.log"
    worker = ["prefect", "worker", "start", "--pool", "skysort-process", "--type", "process"]
    with _background(worker, root, log, env):
        run = wait_for(lambda: _finished(run_id), timeout=240, what="the worker's run",
                       context=_tail(log))  # fmt: skip
        # the run's process may still be sending its last log batch and task-run events:
        # poll for them before the worker (and its process group) is stopped
        by_stage = _stage_runs(run_id, ["query", "cutouts"])
        # the run's logs hold the traceback of the cause, at ERROR level
        wait_for(
            lambda: [rec.message for rec in _logs(run_id, min_level=40)],
            lambda errors: any("FileExistsError" in m and "Traceback" in m for m in errors),
            what="an ERROR log with the FileExistsError traceback",
            context=_tail(log),
        )

    assert run.state.is_failed()
    message = run.state.message or ""
    assert "stage 'cutouts' failed: FileExistsError" in message, message
    assert "data/raw/cutouts" in message
    assert by_stage["query"].state.is_completed()
    assert by_stage["cutouts"].state.is_failed()
    assert "stage 'cutouts' failed" in (by_stage["cutouts"].state.message or "")
    assert "clean" not in by_stage  # nothing ran after the failure


def test_corrupt_input_file_fails_its_stage_with_the_cause(tmp_path, prefect_server, monkeypatch):
    from skysort.flows.stage import stage

    root = make_project(tmp_path / "proj", SMALL)
    monkeypatch.chdir(root)
    (root / "data/raw").mkdir(parents=True)
    (root / "data/raw/catalog.parquet").write_bytes(b"PAR1 this is not a parquet file")
    (root / "data/raw/cutouts.parquet").write_bytes(b"nor is this")

    state = stage(name="clean", return_state=True)

    assert state.is_failed()
    assert "stage 'clean' failed:" in state.message and "parquet" in state.message.lower()
    run_id = state.state_details.flow_run_id
    with _client() as client:
        run = client.read_flow_run(run_id)
    assert run.name == "stage-clean" and run.state.is_failed()
    assert {"stage:clean", "task:multiclass", "source:synthetic"} <= set(run.tags)
    task = _stage_runs(run_id, ["clean"])["clean"]
    assert task.name.startswith("clean:") and task.state.is_failed()
    assert len(_task_runs(run_id)) == 1
    assert not (root / "data/interim/dataset.parquet").exists()


def test_bad_parameter_fails_the_flow_run_naming_the_key(tmp_path, prefect_server, monkeypatch):
    from skysort.flows.pipeline import pipeline

    root = make_project(tmp_path / "proj", SMALL)
    monkeypatch.chdir(root)
    state = pipeline(overrides=["train.epochs=0"], return_state=True)

    assert state.is_failed()
    assert "ConfigError" in state.message and "train.epochs" in state.message
    run_id = state.state_details.flow_run_id
    with _client() as client:
        assert client.read_flow_run(run_id).name == "pipeline: params.yaml (invalid parameters)"
    # it failed before any stage started: no task run arrives (one read could not tell)
    holds_throughout(lambda: _task_runs(run_id), lambda tasks: tasks == [], seconds=3)
