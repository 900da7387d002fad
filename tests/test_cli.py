import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from skysort.flows.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_bad_parameter_fails_fast_with_the_dotted_key():
    result = runner.invoke(
        app, ["run", "--params", str(ROOT / "params.yaml"), "--set", "train.epochs=-2"]
    )
    assert result.exit_code == 2
    assert "train.epochs" in result.output and "greater than or equal to 1" in result.output


def test_unknown_stage_is_rejected():
    result = runner.invoke(app, ["stage", "fetch"])
    assert result.exit_code != 0
    assert "query" in result.output  # the error lists the valid stage names


def test_params_command_prints_validated_values_with_overrides():
    result = runner.invoke(
        app, ["params", "--params", str(ROOT / "params.yaml"), "-s", "query.n_objects=123"]
    )
    assert result.exit_code == 0, result.output
    assert "n_objects: 123" in result.output


def test_console_script_and_module_entry_points_exist():
    out = subprocess.run(
        [sys.executable, "-m", "skysort.flows.cli", "stages"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == [
        "query",
        "cutouts",
        "clean",
        "impute",
        "balance",
        "baselines",
        "train",
        "evaluate",
        "predict",
    ]


ANALYTICS = ("PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK", "DVC_NO_ANALYTICS")
# Runs the console script's own object (`skysort = skysort.flows.cli:app`) in a fresh
# interpreter, then reports what Prefect and a child process see.
PROBE = """
import json, subprocess, sys
from skysort.flows.cli import app
imported_before = "prefect" in sys.modules
app(["stages"], standalone_mode=False)
from prefect.settings import get_current_settings
from prefect._internal.analytics.enabled import is_telemetry_enabled
child = subprocess.run([sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
                       capture_output=True, text=True, check=True)
print(json.dumps({
    "prefect_imported_before_the_command": imported_before,
    "server_analytics": get_current_settings().server.analytics_enabled,
    "client_telemetry": is_telemetry_enabled(),
    "child_env": {k: v for k, v in json.loads(child.stdout).items() if k in sys.argv[1:]},
}))
"""


def _probe(tmp_path, **extra) -> dict:
    from prefect._internal.analytics.ci_detection import CI_ENV_VARS  # CI turns telemetry off too

    drop = {*ANALYTICS, *CI_ENV_VARS, "SKYSORT_ANALYTICS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PREFECT_HOME=str(tmp_path), **extra)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *ANALYTICS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_skysort_commands_turn_prefect_and_dvc_analytics_off(tmp_path):
    seen = _probe(tmp_path)
    assert seen["prefect_imported_before_the_command"] is False
    assert seen["server_analytics"] is False and seen["client_telemetry"] is False
    assert seen["child_env"] == {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
    }


def test_skysort_analytics_1_opts_back_in(tmp_path):
    seen = _probe(tmp_path, SKYSORT_ANALYTICS="1")
    assert seen["server_analytics"] is True and seen["client_telemetry"] is True
    assert seen["child_env"] == {}


def test_params_command_never_prints_a_password(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(
        app, ["params", "--set", "source.skyserver.base_url=https://me:s3cret@mirror.example.org"]
    )
    assert result.exit_code == 0, result.output
    assert "base_url: https://***@mirror.example.org" in result.output
    assert "s3cret" not in result.output


def test_errors_never_print_a_password(tmp_path):
    bad = "source.skyserver.base_url=https://me:s3cret@mirror.example.org/?x=1"
    result = runner.invoke(app, ["params", "--params", str(ROOT / "params.yaml"), "--set", bad])
    assert result.exit_code == 2 and "base_url" in result.output
    assert "s3cret" not in result.output and "https://***@mirror.example.org" in result.output
