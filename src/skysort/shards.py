"""The cutouts and clean stages cut into shards, for a run on several machines.

A shard is a contiguous slice of catalog rows (``runner.shard_size`` of them, never
one object per task). ``*_shard`` processes one slice and writes its part into a
work folder beside the stage's output; ``merge_*`` joins the parts, in catalog order,
into exactly the outputs the one-process stage writes (the same functions finish
both). Nothing here knows about Prefect or Dask: any executor can call these.

Workers exchange files, not arrays, so on a real cluster every worker must see the
project folder at the same path (a shared file system); the callers pass absolute
paths. Parts are written atomically; a part left by a killed run is ignored, since
each run starts from an empty work folder.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort import io
from skysort.config import Clean, Cutouts, Data, Source
from skysort.stages import clean as clean_stage
from skysort.stages import cutouts as cutouts_stage

log = logging.getLogger(__name__)


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


def reset_work_dir(folder: Path) -> Path:
    """Empty (or create) a work folder: a run never merges a part from an earlier run."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _part(folder: Path, shard: int, suffix: str) -> Path:
    return Path(folder) / f"part-{shard:05d}{suffix}"


# ----------------------------------------------------------------------------- cutouts


def prepare_cutouts(catalog_path: Path, cutouts_dir: Path, out_manifest: Path) -> int:
    """Check the catalog, make the folders, remove a killed run's temp files; the row count.

    Temp files are removed here, once, because shards then fetch into the same folder
    at once and must leave each other's in-flight files alone.
    """
    from skysort.fetch import remove_temp_files

    catalog = cutouts_stage.read_catalog(catalog_path)
    Path(cutouts_dir).mkdir(parents=True, exist_ok=True)
    remove_temp_files(Path(cutouts_dir))
    reset_work_dir(work_dir(out_manifest))
    return len(catalog)


def cutouts_shard(
    shard: int,
    start: int,
    stop: int,
    catalog_path: Path,
    cutouts_dir: Path,
    out_manifest: Path,
    *,
    source: Source,
    data: Data,
    cutouts: Cutouts,
    seed: int,
    min_pixel_std: float,
) -> Path:
    """Produce the cutouts of catalog rows ``[start, stop)``; write and return their manifest part."""
    catalog = cutouts_stage.read_catalog(catalog_path)
    part = cutouts_stage.cutout_rows(
        catalog,
        cutouts_dir,
        source=source,
        data=data,
        cutouts=cutouts,
        seed=seed,
        min_pixel_std=min_pixel_std,
        rows=slice(start, stop),
        remove_temp=False,
    )
    if len(part) != stop - start:
        raise RuntimeError(f"cutouts shard {shard}: {len(part)} rows for [{start}, {stop})")
    path = _part(work_dir(out_manifest), shard, ".parquet")
    io.write_parquet(path, part.assign(_position=np.arange(start, stop, dtype=np.int64)))
    log.info("cutouts shard %d: rows [%d, %d) done", shard, start, stop)
    return path


def merge_cutouts(
    parts: list[Path], n_rows: int, out_manifest: Path, cutouts_dir: Path
) -> dict[str, Any]:
    """Join the manifest parts in catalog order and write the manifest; the stage's report."""
    frames = [pd.read_parquet(p) for p in parts]
    manifest = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    positions = manifest["_position"].to_numpy() if len(manifest) else np.array([], dtype=int)
    _check_coverage(positions, n_rows, "cutouts")
    manifest = manifest.iloc[np.argsort(positions, kind="stable")].drop(columns="_position")
    report = cutouts_stage.write_manifest(manifest, out_manifest, cutouts_dir)
    shutil.rmtree(work_dir(out_manifest), ignore_errors=True)
    return report


# ----------------------------------------------------------------------------- clean


def prepare_clean(catalog_path: Path, manifest_path: Path, out_images: Path) -> int:
    """Check the inputs and empty the work folder; the catalog's row count."""
    catalog, _ = clean_stage.read_inputs(catalog_path, manifest_path)
    reset_work_dir(work_dir(out_images))
    return len(catalog)


def clean_shard(
    shard: int,
    start: int,
    stop: int,
    catalog_path: Path,
    manifest_path: Path,
    cutouts_dir: Path,
    out_images: Path,
    *,
    data: Data,
    clean: Clean,
) -> Path:
    """Check and decode the cutouts of catalog rows ``[start, stop)``.

    Writes two parts: the rows' drop reasons (``.parquet``, null = kept) and the kept
    rows' images in row order (``.npy``); returns the path of the reasons part, which
    is written last, so that it exists only when the shard is complete.
    """
    catalog, manifest = clean_stage.read_inputs(catalog_path, manifest_path)
    rows = catalog.iloc[start:stop]
    reasons, images = clean_stage.check_rows(
        rows, manifest, Path(cutouts_dir), data=data, clean=clean
    )
    kept = rows.index[reasons.isna().to_numpy()]
    size = data.image_size
    stack = np.empty((len(kept), size, size, 3), dtype=np.uint8)
    for k, i in enumerate(kept):
        stack[k] = images[i]
    folder = work_dir(out_images)
    io.write_npy(_part(folder, shard, ".npy"), stack)
    table = pd.DataFrame(
        {
            "position": np.arange(start, stop, dtype=np.int64),
            "reason": pd.array(reasons.tolist(), dtype="string"),
        }
    )
    path = _part(folder, shard, ".parquet")
    io.write_parquet(path, table)
    log.info("clean shard %d: rows [%d, %d), %d kept", shard, start, stop, len(kept))
    return path


def merge_clean(
    parts: list[Path],
    catalog_path: Path,
    manifest_path: Path,
    out_dataset: Path,
    out_images: Path,
    out_report: Path,
    *,
    data: Data,
    clean: Clean,
    seed: int,
) -> dict[str, Any]:
    """Join the shards' reasons and images and write the clean stage's outputs."""
    catalog, _ = clean_stage.read_inputs(catalog_path, manifest_path)
    tables = [pd.read_parquet(p) for p in parts]
    positions = np.concatenate([t["position"].to_numpy() for t in tables]) if tables else []
    _check_coverage(np.asarray(positions, dtype=np.int64), len(catalog), "clean")
    order = sorted(range(len(parts)), key=lambda k: int(tables[k]["position"].iloc[0]))
    reasons = pd.Series(np.nan, index=catalog.index, dtype="object")
    for t in tables:
        values = t["reason"].astype("object").where(t["reason"].notna(), np.nan)
        reasons.iloc[t["position"].to_numpy()] = values.to_numpy()

    def kept_images() -> Iterator[np.ndarray]:
        for k in order:
            images = np.load(parts[k].with_suffix(".npy"), mmap_mode="r")
            expected = int(tables[k]["reason"].isna().sum())
            if len(images) != expected:
                raise MissingShardError(
                    f"clean shard part {parts[k].name}: {len(images)} images, {expected} expected"
                )
            yield from images

    report = clean_stage.write_outputs(
        catalog,
        reasons,
        kept_images(),
        out_dataset,
        out_images,
        out_report,
        data=data,
        clean=clean,
        seed=seed,
    )
    shutil.rmtree(work_dir(out_images), ignore_errors=True)
    return report


def _check_coverage(positions: np.ndarray, n_rows: int, stage: str) -> None:
    """Every catalog row in exactly one part, or a clear error naming what is wrong."""
    counts = np.bincount(positions, minlength=n_rows) if len(positions) else np.zeros(n_rows)
    missing = np.flatnonzero(counts[:n_rows] == 0)
    if len(missing) or len(counts) > n_rows or (counts > 1).any():
        raise MissingShardError(
            f"{stage} shards do not cover the catalog's {n_rows} rows exactly once "
            f"({len(missing)} row(s) missing, first {missing[:5].tolist()}; "
            f"{int((counts > 1).sum())} row(s) twice): rerun the stage"
        )
