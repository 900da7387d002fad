"""The schedule: params.yaml is the one source of prefect.yaml and of ``skysort serve``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from skysort.config import ConfigError, check_cron, load_params
from skysort.flows.cli import app
from skysort.flows.deployment import (
    ENTRYPOINT,
    FLOW_NAME,
    PREDICT_ENTRYPOINT,
    DeploymentRunError,
    prefect_yaml_drift,
    refuse_disallowed,
    render_prefect_yaml,
    sync_prefect_yaml,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_committed_prefect_yaml_agrees_with_params_yaml():
    params = load_params(ROOT / "params.yaml")
    assert prefect_yaml_drift(ROOT, params) is None, "run `skysort deploy` and commit prefect.yaml"
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    dep, predict = doc["deployments"]
    assert dep["schedules"] == [
        {"cron": params.schedule.cron, "timezone": params.schedule.timezone, "active": True}
    ]
    assert dep["name"] == params.schedule.deployment
    assert dep["work_pool"]["name"] == params.schedule.work_pool
    assert dep["parameters"]["params_path"] == "params.yaml"
    # the second deployment classifies the configured objects on its own schedule
    assert predict["name"] == params.predict.deployment
    assert predict["entrypoint"] == PREDICT_ENTRYPOINT
    assert predict["schedules"] == [
        {"cron": params.predict.cron, "timezone": params.schedule.timezone, "active": True}
    ]
    assert predict["work_pool"]["name"] == params.schedule.work_pool


def test_entrypoint_is_the_pipeline_flow():
    from skysort.flows.pipeline import pipeline

    path, func = ENTRYPOINT.split(":")
    assert (ROOT / path).is_file() and func == pipeline.fn.__name__ == "pipeline"
    assert pipeline.name == FLOW_NAME


def test_predict_entrypoint_is_the_predict_flow():
    from skysort.flows.predict import PREDICT_FLOW_NAME, predict

    path, func = PREDICT_ENTRYPOINT.split(":")
    assert (ROOT / path).is_file() and func == predict.fn.__name__ == "predict"
    assert predict.name == PREDICT_FLOW_NAME


def _project(tmp_path: Path, cron: str, tz: str) -> Path:
    for name in ("params.yaml", "prefect.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["schedule"].update(cron=cron, timezone=tz)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return tmp_path


def test_check_names_both_crons_when_they_disagree_and_sync_repairs(tmp_path):
    root = _project(tmp_path, "30 5 * * mon-fri", "Europe/Paris")
    result = runner.invoke(app, ["deploy", "--check", "--params", str(root / "params.yaml")])
    assert result.exit_code == 1
    assert "'0 3 * * *'" in result.output and "'30 5 * * mon-fri'" in result.output
    params = load_params(root / "params.yaml")
    assert sync_prefect_yaml(root, params) is True
    assert sync_prefect_yaml(root, params) is False  # idempotent
    dep = yaml.safe_load((root / "prefect.yaml").read_text())["deployments"][0]
    assert dep["schedules"][0]["cron"] == "30 5 * * mon-fri"
    assert dep["schedules"][0]["timezone"] == "Europe/Paris"
    ok = runner.invoke(app, ["deploy", "--check", "--params", str(root / "params.yaml")])
    assert ok.exit_code == 0, ok.output
    assert not list(root.glob(".prefect.yaml.*"))  # the atomic write left no temp file


def test_rendered_schedule_is_accepted_by_prefect():
    from prefect.client.schemas.schedules import CronSchedule

    params = load_params(ROOT / "params.yaml", ["schedule.timezone=America/New_York"])
    sched = yaml.safe_load(render_prefect_yaml(params))["deployments"][0]["schedules"][0]
    assert CronSchedule(cron=sched["cron"], timezone=sched["timezone"]).timezone == (
        "America/New_York"
    )


@pytest.mark.parametrize(
    "cron",
    ["0 3 * * *", "*/15 * * * *", "0 0 1 1 *", "5 4 * * sun", "0 22 * * 1-5",
     "0 0,12 1-15/2 jan-jun mon", "59 23 31 12 7"],
)  # fmt: skip
def test_valid_cron_expressions_pass_here_and_in_prefect(cron):
    from prefect.client.schemas.schedules import CronSchedule

    check_cron(cron)
    CronSchedule(cron=cron)


@pytest.mark.parametrize(
    "cron",
    ["0 3 * *", "60 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8",
     "*/0 * * * *", "0 5-3 * * *", "a b c d e", "0 3 * * * *"],
)  # fmt: skip
def test_invalid_cron_fails_at_load_time_naming_the_key(cron):
    with pytest.raises(ConfigError, match=r"schedule\.cron: .*\(got '"):
        load_params(ROOT / "params.yaml", [f"schedule.cron='{cron}'"])


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("schedule.timezone=Mars/Olympus", "schedule.timezone: not an IANA time zone"),
        ("schedule.deployment='Nightly Run'", "schedule.deployment"),
        ("schedule.work_pool=''", "schedule.work_pool"),
        ("schedule.cronn='0 3 * * *'", "schedule.cronn: unknown key"),
    ],
)
def test_bad_schedule_values_name_the_dotted_key(override, needle):
    with pytest.raises(ConfigError, match=needle):
        load_params(ROOT / "params.yaml", [override])


@pytest.mark.parametrize("command", ["serve", "deploy"])
def test_serve_and_deploy_refuse_a_bad_schedule_before_contacting_prefect(tmp_path, command):
    root = _project(tmp_path, "0 25 * * *", "UTC")
    result = runner.invoke(app, [command, "--params", str(root / "params.yaml")])
    assert result.exit_code == 2
    assert "schedule.cron: bad hour" in result.output
    assert "0 3 * * *" in (root / "prefect.yaml").read_text()  # left as it was


def _params_in(tmp_path: Path, monkeypatch) -> Path:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_deployment_run_accepts_the_allowed_overrides(tmp_path, monkeypatch):
    _params_in(tmp_path, monkeypatch)
    refuse_disallowed("params.yaml", ["query.n_objects=50", "train.epochs=2"], "params.yaml")
    refuse_disallowed("./params.yaml", [], "params.yaml")


@pytest.mark.parametrize(
    ("params_path", "overrides", "needle"),
    [
        ("params.yaml", ["query.sql_file=/etc/passwd"], "not allowed in a deployment run: "
         "query.sql_file; allowed: query.n_objects, train.epochs"),
        ("params.yaml", ["train.epochs=2", "source.skyserver.base_url=http://evil.example",
                         "paths.catalog=/tmp/x"], "source.skyserver.base_url, paths.catalog;"),
        ("params.yaml", ["train={epochs: 2}"], "deployment run: train;"),
        ("/tmp/mine.yaml", [], "params_path='/tmp/mine.yaml' is not allowed in a deployment run"),
    ],
)  # fmt: skip
def test_a_deployment_run_refuses_other_parameters_naming_them(
    tmp_path, monkeypatch, params_path, overrides, needle
):
    _params_in(tmp_path, monkeypatch)
    with pytest.raises(DeploymentRunError) as info:
        refuse_disallowed(params_path, overrides, "params.yaml")
    assert needle in str(info.value)


def test_the_allow_list_is_params_yamls_own(tmp_path, monkeypatch):
    root = _params_in(tmp_path, monkeypatch)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["schedule"]["allowed_overrides"] = ["seed"]
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    refuse_disallowed("params.yaml", ["seed=7"], "params.yaml")
    with pytest.raises(DeploymentRunError, match="train.epochs; allowed: seed "):
        refuse_disallowed("params.yaml", ["train.epochs=2"], "params.yaml")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_run_of_a_registered_deployment_with_a_disallowed_override_fails_naming_it(
    tmp_path, monkeypatch, prefect_server
):
    from skysort.flows.pipeline import pipeline
    from tests.project import TINY_OVERRIDES

    root = _params_in(tmp_path, monkeypatch)
    # tiny, so that if the check ever let the run through it would end soon, and fail
    raw = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in TINY_OVERRIDES.items():
        raw[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    deployment = pipeline.to_deployment(
        name="allow-list-test", parameters={"params_path": "params.yaml", "overrides": []}
    )
    # what Prefect's runtime reports inside a run started from that deployment
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", str(deployment.apply()))

    state = pipeline(overrides=["query.sql_file=/etc/passwd"], record=False, return_state=True)

    assert state.is_failed()
    assert "DeploymentRunError" in state.message and "query.sql_file" in state.message
    assert not (tmp_path / "data").exists()  # no stage ran
