"""Stage ``cutouts``: one JPEG per catalog object plus a manifest of what happened to each.

Cutouts are fetched from SkyServer, rendered by the simulated survey, or made from the
user's own images (``source.kind: files``). Tabular-only data (``source.files.images:
none``) has no cutouts: the stage writes an empty manifest and the clean stage packs
an empty-width image array.

The stage works in shards of catalog rows (one shard when it runs in one process):
each fetches or renders its objects and writes their manifest rows as a part; the
merge writes the whole manifest atomically. Files already on disk and valid are
kept, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort.config import Params
from skysort.data import atomic
from skysort.data.schema import MANIFEST_COLUMNS
from skysort.pipeline import sharding
from skysort.pipeline.progress import Progress
from skysort.pipeline.stage import Shards, Stage
from skysort.pipeline.summaries import cutouts_summary
from skysort.sources.cutouts import cutout_rows, read_catalog, write_manifest

log = logging.getLogger(__name__)


def _prepare(params: Params) -> int:
    """Check the catalog, make the folders, remove a killed run's temp files; the row count.

    Temp files are removed here, once, because shards then fetch into the same folder
    at once and must leave each other's in-flight files alone. Tabular-only data has
    no rows to make cutouts of.
    """
    from skysort.sources.skyserver.cutouts import remove_temp_files

    p = params.paths
    catalog = read_catalog(p.catalog)
    Path(p.cutouts_dir).mkdir(parents=True, exist_ok=True)
    remove_temp_files(Path(p.cutouts_dir))
    sharding.reset_work_dir(p.manifest)
    return len(catalog) if params.source.has_images else 0


def _shard(
    params: Params, shard: int, start: int, stop: int, progress: Progress | None = None
) -> Path:
    """Produce the cutouts of catalog rows ``[start, stop)``; write and return their manifest part."""
    p = params.paths
    part = cutout_rows(
        read_catalog(p.catalog),
        p.cutouts_dir,
        p.source_images,
        source=params.source,
        data=params.data,
        cutouts=params.cutouts,
        min_pixel_std=params.clean.min_pixel_std,
        seed=params.seed,
        rows=slice(start, stop),
        progress=progress,
        remove_temp=False,
    )
    if len(part) != stop - start:
        raise RuntimeError(f"cutouts shard {shard}: {len(part)} rows for [{start}, {stop})")
    path = sharding.part_path(p.manifest, shard, ".parquet")
    atomic.write_parquet(path, part.assign(_position=np.arange(start, stop, dtype=np.int64)))
    log.info("cutouts shard %d: rows [%d, %d) done", shard, start, stop)
    return path


def _merge(
    params: Params, parts: list[Path], n_rows: int, outputs: dict[str, Path]
) -> dict[str, Any]:
    """Join the manifest parts in catalog order and write the manifest; the stage's report."""
    frames = [pd.read_parquet(p) for p in parts]
    empty = pd.DataFrame(columns=[*MANIFEST_COLUMNS, "_position"])
    manifest = pd.concat(frames, ignore_index=True) if frames else empty
    positions = manifest["_position"].to_numpy() if len(manifest) else np.array([], dtype=int)
    sharding.check_coverage(positions, n_rows, "cutouts")
    manifest = manifest.iloc[np.argsort(positions, kind="stable")].drop(columns="_position")
    report = write_manifest(manifest, outputs["manifest"], outputs["cutouts_dir"])
    sharding.remove_work_dir(params.paths.manifest)
    return report


STAGE = Stage(
    name="cutouts",
    reads=("catalog", "source_images"),
    writes=("cutouts_dir", "manifest"),
    params=("seed", "source", "cutouts", "data.image_size", "clean.min_pixel_std"),
    describe=lambda p: (
        f"cutouts: {p.data.image_size}px from {p.source.kind}"
        if p.source.has_images
        else "cutouts: none (tabular-only files source)"
    ),
    summarize=cutouts_summary,
    persistent=("cutouts_dir",),
    shards=Shards(_prepare, _shard, _merge),
    progress="cutouts fetched",
    retry_delays_s=(30,),
)
