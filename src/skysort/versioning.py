"""Record a pipeline run's outputs in DVC, so ``dvc repro`` afterwards has nothing to do.

Runs the ``dvc`` command line of this interpreter in a subprocess: DVC's Python API
is not a stable interface, its command line is.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


class DvcError(RuntimeError):
    """A DVC command failed; the message carries DVC's own output."""


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


def commit_outputs(root: Path | str = ".") -> None:
    """Write ``dvc.lock`` for what is on disk and copy the outputs into the DVC cache."""
    dvc("commit", "--force", "--quiet", cwd=root)
    log.info("recorded the run's outputs in DVC (dvc.lock updated, outputs cached)")


def has_remote(root: Path | str = ".") -> bool:
    return bool(dvc("remote", "list", cwd=root).stdout.strip())


def push_outputs(root: Path | str = ".") -> None:
    dvc("push", "--quiet", cwd=root)
    log.info("pushed the run's outputs to the DVC remote")


def stale_stages(root: Path | str = ".") -> list[str]:
    """Names of stages ``dvc repro`` would run now (empty when the lock agrees with the outputs)."""
    out = dvc("status", "--json", cwd=root).stdout
    import json

    return sorted(json.loads(out or "{}"))
