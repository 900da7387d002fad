"""``train.model: ensemble`` end to end: ``skysort run``, then ``dvc repro`` has nothing to do."""

from __future__ import annotations

import json
import subprocess

import pytest

from skysort.data.atomic import read_json
from tests.project import dvc, make_project, skysort_in, tool_env
from tests.test_predict import assert_predict_reproduces_evaluate

pytestmark = pytest.mark.slow


def test_an_ensemble_run_is_one_model_folder_dvc_repro_is_a_noop_and_predict_agrees(
    tmp_path, prefect_server
):
    root = make_project(tmp_path / "proj", {"query": {"n_objects": 200},
                                            "train": {"model": "ensemble", "epochs": 2}})  # fmt: skip
    done = subprocess.run(["skysort", "run"], cwd=root, env=tool_env(), capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, f"skysort run failed:\n{done.stderr[-4000:]}"
    folder = root / "models/model.keras"  # paths.model: a folder for a model with trees
    meta = json.loads((folder / "model.json").read_text())
    assert meta["kind"] == "ensemble" and meta["net"]["kind"] == "fusion"
    train = read_json(root / "reports/train.json")
    assert train["ensemble"]["weight_net"] == meta["weight_net"]
    assert read_json(root / "reports/metrics.json")["model"] == "ensemble"
    assert (root / "reports/plots/importance.png").exists()
    # the run recorded its outputs in DVC: nothing is stale, dvc repro has nothing to do
    assert dvc("status", "--json", cwd=root).stdout.strip() in ("{}", "")
    assert "Running stage" not in dvc("repro", cwd=root).stdout
    assert_predict_reproduces_evaluate(root, skysort_in(root))
    assert dvc("status", "--json", cwd=root).stdout.strip() in ("{}", "")
