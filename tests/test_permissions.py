"""Outputs get the permissions any new file gets (0666 less the umask), not tempfile's 0600."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

from skysort.data import atomic


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


WRITERS = {
    "bytes": lambda p: atomic.write_bytes(p, b"\xff\xd8 a cutout"),
    "json": lambda p: atomic.write_json(p, {"rows": 3}),
    "parquet": lambda p: atomic.write_parquet(p, pd.DataFrame({"objid": [1, 2]})),
    "npy": lambda p: atomic.write_npy(p, np.zeros(3)),
}


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path, kind, mask, mode):
    path = tmp_path / "out" / f"file.{kind}"
    with umask(mask):
        WRITERS[kind](path)
        WRITERS[kind](path)  # replacing an existing output too
    assert _mode(path) == mode
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_threads_writing_at_once_all_get_the_umask_and_distinct_temp_files(tmp_path):
    with umask(0o022):
        threads = [
            threading.Thread(target=atomic.write_bytes, args=(tmp_path / f"{i}.jpg", b"x" * i))
            for i in range(32)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{i}.jpg" for i in range(32))
    assert {_mode(p) for p in tmp_path.iterdir()} == {0o644}


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError), atomic.atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
