"""Make a throw-away copy of the project (a real git + DVC repo) for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY_OVERRIDES: dict[str, dict] = {
    "query": {"n_objects": 300},
    "impute": {"n_estimators": 40, "max_iter": 3},
    "baselines": {"cv_folds": 2, "models": ["logreg", "tree", "gboost"]},
    "train": {
        "epochs": 3,
        "batch_size": 32,
        "conv_filters": [8, 16],
        "dense_units": [16],
        "patience": 2,
        "learning_rate": 0.005,
    },
    "predict": {"max_objects": 120, "batch_size": 60},
}


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def tool_env() -> dict[str, str]:
    """The environment for subprocesses: this interpreter's bin dir (``skysort``) on PATH."""
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def make_project(dest: Path, overrides: dict[str, dict] | None = None) -> Path:
    """Copy the tracked files of this repo into ``dest``, shrink params, commit as a new repo."""
    files = git("ls-files", cwd=ROOT).split("\n")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    for section, values in {**TINY_OVERRIDES, **(overrides or {})}.items():
        merge(params.setdefault(section, {}), values)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git("init", "-q", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-qm", "project under test", cwd=dest)
    return dest


def merge(into: dict, values: dict) -> None:
    """Set every key of ``values`` in ``into``, descending into sections present in both."""
    for k, v in values.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = v


def skysort_in(root: Path):
    """A function that runs the ``skysort`` command line with ``args`` in ``root``."""

    def run(args: list[str]) -> str:
        done = subprocess.run([sys.executable, "-m", "skysort.flows.cli", *args], cwd=root,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, f"skysort {' '.join(args)} failed:\n{done.stderr[-3000:]}"
        return done.stdout

    return run
