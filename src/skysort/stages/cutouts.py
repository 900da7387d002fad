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

from skysort.config import Cutouts, Data, Params, Source
from skysort.data import atomic
from skysort.data.schema import MANIFEST_COLUMNS, check_catalog, check_manifest, conform
from skysort.pipeline import sharding
from skysort.pipeline.progress import Progress
from skysort.pipeline.stage import Shards, Stage
from skysort.pipeline.summaries import cutouts_summary

log = logging.getLogger(__name__)


def read_catalog(catalog_path: Path) -> pd.DataFrame:
    catalog = pd.read_parquet(catalog_path)
    check_catalog(catalog, str(catalog_path))
    return catalog


def cutout_rows(
    catalog: pd.DataFrame,
    cutouts_dir: Path,
    source_images: Path,
    *,
    source: Source,
    data: Data,
    cutouts: Cutouts,
    min_pixel_std: float,
    seed: int,
    rows: slice | None = None,
    progress: Progress | None = None,
    remove_temp: bool = True,
) -> pd.DataFrame:
    """Produce the cutouts of ``catalog[rows]`` (all rows by default); their manifest rows.

    A slice is one shard of a distributed run: its files and manifest rows are the
    same as those a whole run would produce for these objects.
    """
    cutouts_dir = Path(cutouts_dir)
    cutouts_dir.mkdir(parents=True, exist_ok=True)
    if source.kind == "files":
        from skysort.sources.files.images import copy_images

        return copy_images(
            catalog if rows is None else catalog.iloc[rows],
            source_images,
            cutouts_dir,
            size=data.image_size,
            resize=source.files.resize,
            progress=progress,
        )
    if source.kind == "synthetic":
        from skysort.sources.synthetic import write_synthetic_cutouts

        return write_synthetic_cutouts(
            catalog,
            cutouts_dir,
            data,
            cutouts,
            source.synthetic,
            seed,
            progress=progress,
            rows=rows,
        )
    from skysort.sources.skyserver.cutouts import fetch_cutouts

    return fetch_cutouts(
        catalog if rows is None else catalog.iloc[rows],
        cutouts_dir,
        data=data,
        cutouts=cutouts,
        skyserver=source.skyserver,
        min_pixel_std=min_pixel_std,
        progress=progress,
        remove_temp=remove_temp,
    )


def write_manifest(manifest: pd.DataFrame, out_manifest: Path, cutouts_dir: Path) -> dict[str, Any]:
    """Check and write the whole manifest atomically; the stage's report."""
    manifest = conform(manifest.reset_index(drop=True), MANIFEST_COLUMNS)
    check_manifest(manifest, "cutout manifest")
    atomic.write_parquet(out_manifest, manifest)
    status = manifest["status"].value_counts()
    report = {
        "objects": len(manifest),
        "status_counts": {str(k): int(v) for k, v in status.items()},
        "bytes": int(manifest["bytes"].sum()),
    }
    errors = manifest.loc[manifest["status"] != "ok", "error"].fillna("").value_counts().head(10)
    report["top_errors"] = {str(k): int(v) for k, v in errors.items()}
    log.info("cutouts: %s in %s", report["status_counts"], cutouts_dir)
    return report


# ----------------------------------------------------------------------------- wiring


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
