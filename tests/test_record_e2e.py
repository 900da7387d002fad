"""A pipeline run is versioned: pushed to a DVC remote, dvc.lock in git, and a fresh clone
pulls back the same data and model, which score the same metrics."""

from __future__ import annotations

import math
import re

import pytest

from skysort.config import load_params
from skysort.data.atomic import read_json
from skysort.pipeline.registry import run_stage
from tests.project import dvc, git, make_project

pytestmark = pytest.mark.slow

SMALL = {
    "record": {"git_commit": True, "push": True},
    "baselines": {"models": ["logreg"], "cv_folds": 2},
    "impute": {"n_estimators": 20, "max_iter": 2},
    "train": {"epochs": 2},
}
SAME = 1e-6  # the tolerance on re-evaluated metrics: same model, same data, same CPU kernels


def _assert_same_metrics(a: dict, b: dict, path: str = "") -> None:
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same_metrics(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_metrics(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=0, abs_tol=SAME), f"{path}: {a} != {b}"
    else:
        assert a == b, path


def test_run_is_pushed_committed_and_a_fresh_clone_pulls_the_same_results(
    tmp_path, prefect_server, monkeypatch
):
    root = make_project(tmp_path / "proj", SMALL)
    remote = tmp_path / "dvc-remote"
    dvc("remote", "add", "-d", "store", str(remote), cwd=root)
    git("add", ".dvc/config", cwd=root)
    git("commit", "-qm", "DVC remote: a local folder", cwd=root)
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "t")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "t@example.org")
    monkeypatch.chdir(root)
    from skysort.flows.pipeline import pipeline

    pipeline(params_path="params.yaml")

    # dvc.lock, and nothing else, went to git, in a commit naming the run
    subject, _, body = git("log", "-1", "--format=%s%n%b", cwd=root).partition("\n")
    assert re.fullmatch(r'skysort: record run "pipeline[^"]+" in dvc\.lock', subject), subject
    assert re.search(r"Prefect flow run .+ \([0-9a-f-]{36}\)", body), body
    assert git("show", "--name-only", "--format=", "HEAD", cwd=root).split() == ["dvc.lock"]
    assert git("status", "--porcelain", cwd=root).strip() == ""
    assert any(remote.rglob("*")), "dvc push left the remote empty"
    assert dvc("status", "--cloud", "--json", cwd=root).stdout.strip() in ("{}", "")
    # the run's own copies of its pictures (ui.runs_dir) leave DVC with nothing to do
    (run_folder,) = (root / "reports/runs").iterdir()
    assert {p.name for p in (run_folder / "evaluate-plots").iterdir()} >= {"confusion.png"}
    assert dvc("status", "--json", cwd=root).stdout.strip() in ("{}", "")
    assert "Running stage" not in dvc("repro", cwd=root).stdout

    clone = tmp_path / "clone"
    git("clone", "-q", str(root), str(clone), cwd=tmp_path)
    assert not (clone / "models/model.keras").exists()
    dvc("pull", cwd=clone)
    assert dvc("status", "--json", cwd=clone).stdout.strip() in ("{}", "")
    assert "Running stage" not in dvc("repro", cwd=clone).stdout
    assert (clone / "models/model.keras").read_bytes() == (root / "models/model.keras").read_bytes()
    assert read_json(clone / "reports/metrics.json") == read_json(root / "reports/metrics.json")

    # the pulled model, evaluated again in the clone, scores the same
    (clone / "reports/metrics.json").unlink()
    params = load_params(clone / "params.yaml")
    run_stage("evaluate", params.model_copy(update={"paths": params.paths.under(clone)}))
    _assert_same_metrics(
        read_json(root / "reports/metrics.json"), read_json(clone / "reports/metrics.json")
    )
