"""``record.git_commit``: dvc.lock, and only dvc.lock, goes to git; failures are named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from skysort.pipeline.versioning import GitError, commit_lock


@pytest.fixture
def git_identity(monkeypatch):
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "t")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "t@example.org")


def _git(*args, cwd):
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def test_commits_dvc_lock_alone_and_leaves_other_changes_staged(tmp_path, git_identity):
    _git("init", "-q", cwd=tmp_path)
    (tmp_path / "a.txt").write_text("one\n")
    _git("add", "a.txt", cwd=tmp_path)
    _git("commit", "-qm", "start", cwd=tmp_path)
    (tmp_path / "a.txt").write_text("two\n")
    _git("add", "a.txt", cwd=tmp_path)  # someone's staged work
    (tmp_path / "b.txt").write_text("untracked\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")

    sha = commit_lock(tmp_path, "skysort run pipeline-x: record outputs in dvc.lock")

    assert sha == _git("rev-parse", "HEAD", cwd=tmp_path).strip()
    assert _git("show", "--name-only", "--format=%s", "HEAD", cwd=tmp_path).split() == [
        "skysort",
        "run",
        "pipeline-x:",
        "record",
        "outputs",
        "in",
        "dvc.lock",
        "dvc.lock",
    ]
    assert _git("diff", "--cached", "--name-only", cwd=tmp_path).split() == ["a.txt"]
    assert "?? b.txt" in _git("status", "--porcelain", cwd=tmp_path)
    # unchanged lock: nothing to commit, no empty commit
    assert commit_lock(tmp_path, "again") is None
    assert _git("rev-parse", "HEAD", cwd=tmp_path).strip() == sha


def test_not_a_git_repository_fails_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    with pytest.raises(GitError, match=r"not in a git working tree.*record\.git_commit"):
        commit_lock(tmp_path, "m")


def test_git_missing_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(GitError, match="git is not installed"):
        commit_lock(tmp_path, "m")


def test_missing_lock_and_missing_identity_fail_clearly(tmp_path, monkeypatch):
    _git("init", "-q", cwd=tmp_path)
    with pytest.raises(GitError, match="no dvc.lock"):
        commit_lock(tmp_path, "m")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    # no identity anywhere: git's own reason comes through
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "none"))
    for var in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ):
        monkeypatch.delenv(var, raising=False)
    _git("config", "user.useConfigOnly", "true", cwd=tmp_path)
    with pytest.raises(GitError, match="git commit dvc.lock` failed"):
        commit_lock(tmp_path, "m")


def test_only_outputs_made_from_dvc_params_are_recorded(tmp_path):
    """`skysort run --params other.yaml` must not tie params.yaml's values to its outputs."""
    import shutil

    from skysort.config import load_params
    from skysort.pipeline.versioning import lineage_mismatch

    root = tmp_path
    shutil.copy(Path(__file__).resolve().parents[1] / "params.yaml", root / "params.yaml")
    same = root / "same.yaml"
    shutil.copy(root / "params.yaml", same)
    other = root / "other.yaml"
    other.write_text((root / "params.yaml").read_text().replace("epochs: 40", "epochs: 7"))
    base = load_params(root / "params.yaml")
    assert lineage_mismatch(root, root / "params.yaml", base) is None
    assert lineage_mismatch(root, same, load_params(same)) is None
    assert "other.yaml differs from params.yaml" in lineage_mismatch(
        root, other, load_params(other)
    )
    assert "--set" in lineage_mismatch(root, root / "params.yaml", base, ["train.epochs=7"])
    (root / "params.yaml").unlink()
    assert "does not exist" in lineage_mismatch(root, same, load_params(same))
