import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from skysort.flows.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_bad_parameter_fails_fast_with_the_dotted_key():
    result = runner.invoke(app, ["run", "--params", str(ROOT / "params.yaml"), "--set",
                                 "train.epochs=-2"])
    assert result.exit_code == 2
    assert "train.epochs" in result.output and "greater than or equal to 1" in result.output


def test_unknown_stage_is_rejected():
    result = runner.invoke(app, ["stage", "fetch"])
    assert result.exit_code != 0
    assert "query" in result.output  # the error lists the valid stage names


def test_params_command_prints_validated_values_with_overrides():
    result = runner.invoke(app, ["params", "--params", str(ROOT / "params.yaml"), "-s",
                                 "query.n_objects=123"])
    assert result.exit_code == 0, result.output
    assert "n_objects: 123" in result.output


def test_console_script_and_module_entry_points_exist():
    out = subprocess.run([sys.executable, "-m", "skysort.flows.cli", "stages"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["query", "cutouts", "clean", "impute", "balance", "baselines",
                                  "train", "evaluate"]
