"""Atomic file writes: every output is written to a temp file beside it, then renamed.

A killed run therefore leaves either the previous complete file or the new complete
file, never half of one. The file gets the permissions any new file gets (0666 less the
umask, usually 0644): other users and workers under another account can read the data.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path in ``path``'s folder; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temp_file(path, suffix)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _new_temp_file(path: Path, suffix: str) -> Path:
    """Create an empty, unique temp file beside ``path`` with the umask's permissions.

    Not ``tempfile.mkstemp``: it creates 0600 files, and the rename would hand that
    private mode to the output. ``os.open`` with 0666 lets the kernel apply the umask,
    as for any new file, without touching the process-wide umask (threads write too).
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temp file name beside {path}")


def remove_temp_files_of(path: Path | str) -> None:
    """Remove the temp files a killed :func:`atomic_path` write of ``path`` left beside it."""
    path = Path(path)
    if path.parent.is_dir():
        for leftover in path.parent.glob(f".{path.name}.*.tmp*"):
            leftover.unlink(missing_ok=True)


def write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to a new temp file beside ``path`` and rename it (one open, one write).

    What :func:`atomic_path` does, in fewer system calls: the fetcher writes a file
    per cutout, hundreds a second.
    """
    path = Path(path)
    for _ in range(100):
        tmp = f"{path.parent}/.{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return
    raise FileExistsError(f"no free temp file name beside {path}")


def write_json(path: Path | str, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: Path | str) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(path: Path | str, df: pd.DataFrame) -> None:
    with atomic_path(path, suffix=".parquet") as tmp:
        df.to_parquet(tmp, index=False)


def write_npy(path: Path | str, array: np.ndarray) -> None:
    # np.save appends ".npy" to names without it, so the temp name must end in .npy.
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
