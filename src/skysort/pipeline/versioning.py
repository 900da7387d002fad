"""Record a pipeline run's outputs in DVC, so ``dvc repro`` afterwards has nothing to do.

Runs the ``dvc`` command line of this interpreter in a subprocess: DVC's Python API
is not a stable interface, its command line is. :func:`commit_lock` then puts the
updated ``dvc.lock`` into git, so that the run can be checked out again
(``git checkout <commit> && dvc pull``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from skysort.config import Params, load_params

log = logging.getLogger(__name__)


class DvcError(RuntimeError):
    """A DVC command failed; the message carries DVC's own output."""


class GitError(RuntimeError):
    """git is missing, the project is not in a git repository, or a git command failed."""


def dvc(*args: str, cwd: Path | str = ".", check: bool = True) -> subprocess.CompletedProcess:
    """Run ``dvc ARGS`` in ``cwd`` with analytics off; raise :class:`DvcError` on failure."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise DvcError(
            f"`dvc {' '.join(args)}` failed in {cwd} (exit {proc.returncode}):\n"
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def is_dvc_project(root: Path | str = ".") -> bool:
    root = Path(root)
    return (root / ".dvc").is_dir() and (root / "dvc.yaml").is_file()


DVC_PARAMS_FILE = "params.yaml"
"""The parameter file ``dvc.yaml``'s stages read (DVC's default)."""


def lineage_mismatch(
    root: Path | str, params_path: Path | str, params: Params, overrides: Sequence[str] = ()
) -> str | None:
    """Why this run's outputs are not what ``dvc.yaml`` would produce, or None if they are.

    ``dvc commit`` ties the outputs to the values in ``root/params.yaml``; recording
    outputs made from other values (``--set`` overrides, or ``--params other.yaml``
    that differs) would make DVC's lineage lie.
    """
    if overrides:
        return f"--set overrides differ from {DVC_PARAMS_FILE}"
    dvc_params = Path(root) / DVC_PARAMS_FILE
    if Path(params_path).resolve() == dvc_params.resolve():
        return None
    if not dvc_params.is_file():
        return f"{dvc_params} (which dvc.yaml reads) does not exist"
    if load_params(dvc_params) != params:
        return f"{params_path} differs from {DVC_PARAMS_FILE}, which dvc.yaml reads"
    return None


def commit_outputs(root: Path | str = ".") -> None:
    """Write ``dvc.lock`` for what is on disk and copy the outputs into the DVC cache."""
    dvc("commit", "--force", "--quiet", cwd=root)
    log.info("recorded the run's outputs in DVC (dvc.lock updated, outputs cached)")


def has_remote(root: Path | str = ".") -> bool:
    return bool(dvc("remote", "list", cwd=root).stdout.strip())


def push_outputs(root: Path | str = ".") -> None:
    dvc("push", "--quiet", cwd=root)
    log.info("pushed the run's outputs to the DVC remote")


LOCK_FILE = "dvc.lock"


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )


def commit_lock(root: Path | str, message: str) -> str | None:
    """Commit ``dvc.lock`` to git, and nothing else; the new commit's hash.

    Other changes, staged or not, stay as they are. Returns None when ``dvc.lock``
    has not changed since the last commit. Raises :class:`GitError` naming the
    problem when git is not installed, ``root`` is not in a git repository, there is
    no ``dvc.lock``, or git refuses (no user identity, a failing hook).
    """
    root = Path(root)
    hint = "(record.git_commit: true needs it; set record.git_commit: false to skip)"
    if shutil.which("git") is None:
        raise GitError(f"git is not installed or not on PATH {hint}")
    inside = _git("rev-parse", "--is-inside-work-tree", cwd=root)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise GitError(
            f"{root} is not in a git working tree {hint}: {inside.stderr.strip() or 'git init'}"
        )
    if not (root / LOCK_FILE).is_file():
        raise GitError(f"no {LOCK_FILE} in {root} to commit: record the run in DVC first")
    changed = _git("status", "--porcelain", "--", LOCK_FILE, cwd=root)
    if changed.returncode != 0:
        raise GitError(f"git status failed in {root}: {changed.stderr.strip()}")
    if not changed.stdout.strip():
        log.info("%s unchanged since the last commit: nothing to commit to git", LOCK_FILE)
        return None
    for args in (
        ("add", "--", LOCK_FILE),
        # --only: commit this path alone, whatever else is staged
        ("commit", "--only", "--quiet", "-m", message, "--", LOCK_FILE),
    ):
        proc = _git(*args, cwd=root)
        if proc.returncode != 0:
            raise GitError(
                f"`git {args[0]} {LOCK_FILE}` failed in {root} (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()}"
            )
    sha = _git("rev-parse", "HEAD", cwd=root).stdout.strip()
    log.info("committed %s to git as %s: %s", LOCK_FILE, sha[:10], message.splitlines()[0])
    return sha


def git_revision(root: Path | str = ".") -> str | None:
    """The short hash of ``root``'s git HEAD, ``+`` when the tree has changes; None outside git."""
    if shutil.which("git") is None:
        return None
    head = _git("rev-parse", "--short", "HEAD", cwd=Path(root))
    if head.returncode != 0:
        return None
    dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=Path(root))
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")
