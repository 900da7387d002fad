"""Shards: contiguous slices of catalog rows, and the work folder their parts go to.

A stage that shards (``Stage.shards``) writes one part per shard into a hidden work
folder beside its output and merges the parts, in catalog order, into exactly the
outputs its one-process run writes. Nothing here knows about Prefect or Dask.

Workers exchange files, not arrays, so on a real cluster every worker must see the
project folder at the same path (a shared file system); the callers pass absolute
paths. Parts are written atomically; a part left by a killed run is ignored, since
each run starts from an empty work folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np


class MissingShardError(RuntimeError):
    """A merge found a shard's part missing or not matching the others."""


def shard_bounds(n_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each shard: consecutive slices of at most ``shard_size`` rows."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    return [(a, min(a + shard_size, n_rows)) for a in range(0, n_rows, shard_size)]


def work_dir(output: Path) -> Path:
    """The folder for the parts of ``output``: hidden, beside it (so on the same file system)."""
    output = Path(output)
    return output.parent / f".{output.name}.shards"


def reset_work_dir(output: Path) -> Path:
    """Empty (or create) the work folder of ``output``: a run never merges an older part."""
    folder = work_dir(output)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def remove_work_dir(output: Path) -> None:
    shutil.rmtree(work_dir(output), ignore_errors=True)


def part_path(output: Path, shard: int, suffix: str) -> Path:
    """Where shard ``shard`` of ``output`` writes its part."""
    return work_dir(output) / f"part-{shard:05d}{suffix}"


def check_coverage(positions: np.ndarray, n_rows: int, stage: str) -> None:
    """Every catalog row in exactly one part, or a clear error naming what is wrong."""
    positions = np.asarray(positions, dtype=np.int64)
    counts = np.bincount(positions, minlength=n_rows) if len(positions) else np.zeros(n_rows)
    missing = np.flatnonzero(counts[:n_rows] == 0)
    if len(missing) or len(counts) > n_rows or (counts > 1).any():
        raise MissingShardError(
            f"{stage} shards do not cover the catalog's {n_rows} rows exactly once "
            f"({len(missing)} row(s) missing, first {missing[:5].tolist()}; "
            f"{int((counts > 1).sum())} row(s) twice): rerun the stage"
        )
