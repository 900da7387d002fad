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

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort.config import Params
from skysort.data import atomic, cutout_packs
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
    catalog = read_catalog(p.catalog)
    if params.cutouts.pack_size:
        part = _packed_rows(params, catalog, start, stop, progress)
    else:
        part = _make(params, catalog, Path(p.cutouts_dir), slice(start, stop), progress, False)
    if len(part) != stop - start:
        raise RuntimeError(f"cutouts shard {shard}: {len(part)} rows for [{start}, {stop})")
    path = sharding.part_path(p.manifest, shard, ".parquet")
    atomic.write_parquet(path, part.assign(_position=np.arange(start, stop, dtype=np.int64)))
    log.info("cutouts shard %d: rows [%d, %d) done", shard, start, stop)
    return path


def _make(
    params: Params,
    catalog: pd.DataFrame,
    folder: Path,
    rows: slice,
    progress: Progress | None,
    remove_temp: bool,
) -> pd.DataFrame:
    """The source's own writer: one JPEG per object of ``catalog[rows]`` in ``folder``."""
    return cutout_rows(
        catalog,
        folder,
        params.paths.source_images,
        source=params.source,
        data=params.data,
        cutouts=params.cutouts,
        min_pixel_std=params.clean.min_pixel_std,
        seed=params.seed,
        rows=rows,
        progress=progress,
        remove_temp=remove_temp,
    )


def _packed_rows(
    params: Params, catalog: pd.DataFrame, start: int, stop: int, progress: Progress | None
) -> pd.DataFrame:
    """Rows ``[start, stop)`` as packs of ``cutouts.pack_size`` (:mod:`skysort.data.cutout_packs`).

    A block whose pack was made from the same rows and parameters is kept without a
    look at its objects when nothing in it could turn out otherwise now: the simulated
    survey renders the same bytes again, and a SkyServer block with every object
    fetched has nothing to retry. Any other block is (re)made in its staging folder,
    by the source's own writer and its own resume (an old pack is unpacked there
    first, so valid files are not fetched again), then packed.
    """
    cutouts_dir = Path(params.paths.cutouts_dir)
    recipe = _recipe(params)
    frames = []
    for a, b in cutout_packs.block_bounds(start, stop, params.cutouts.pack_size):
        key = cutout_packs.block_key(catalog.iloc[a:b], recipe)
        index = cutout_packs.read_index(cutouts_dir, a, b)
        if index is not None and _still_valid(index, key, b - a, params.source.kind):
            part = cutout_packs.manifest_of(index, list(MANIFEST_COLUMNS))
            log.debug("cutouts rows [%d, %d): pack kept", a, b)
            if progress is not None:
                progress(b - start, stop - start)
        else:
            staging = cutout_packs.staging_dir(cutouts_dir, a, b)
            if index is not None:
                cutout_packs.unpack(cutouts_dir, a, b, index)
            made = _make(
                params,
                catalog,
                staging,
                slice(a, b),
                _offset(progress, a - start, stop - start),
                True,
            )
            part = cutout_packs.manifest_of(
                cutout_packs.write_pack(cutouts_dir, a, b, made, key), list(MANIFEST_COLUMNS)
            )
        frames.append(part.assign(_pack=cutout_packs.block_name(a, b)))
    return pd.concat(frames, ignore_index=True)


def _still_valid(index: pd.DataFrame, key: str, rows: int, kind: str) -> bool:
    if len(index) != rows or not index["key"].eq(key).all():
        return False
    if kind == "synthetic":
        return True
    # a user's folder may have changed under the same catalog: its files are made again
    return kind == "skyserver" and bool(index["status"].eq("ok").all())


def _recipe(params: Params) -> str:
    """The parameters that make a cutout, as text: a pack made under others is checked again."""
    return json.dumps(
        {
            "source": params.source.model_dump(mode="json"),
            "cutouts": params.cutouts.model_dump(mode="json"),
            "image_size": params.data.image_size,
            "seed": params.seed,
            "min_pixel_std": params.clean.min_pixel_std,
        },
        sort_keys=True,
    )


def _offset(progress: Progress | None, done_before: int, total: int) -> Progress | None:
    """``progress`` for one block: its counts shifted by the rows of the blocks before it."""
    if progress is None:
        return None

    def report(done: int, _total: int, /, note: str | None = None) -> None:
        progress(done_before + done, total, note=note)

    return report


def _merge(
    params: Params, parts: list[Path], n_rows: int, outputs: dict[str, Path]
) -> dict[str, Any]:
    """Join the manifest parts in catalog order and write the manifest; the stage's report.

    The cutouts folder is left with one layout: this run's packs (``cutouts.pack_size``)
    and nothing else, or loose files and no packs.
    """
    frames = [pd.read_parquet(p) for p in parts]
    empty = pd.DataFrame(columns=[*MANIFEST_COLUMNS, "_position"])
    manifest = pd.concat(frames, ignore_index=True) if frames else empty
    positions = manifest["_position"].to_numpy() if len(manifest) else np.array([], dtype=int)
    sharding.check_coverage(positions, n_rows, "cutouts")
    manifest = manifest.iloc[np.argsort(positions, kind="stable")].drop(columns="_position")
    blocks = None
    if "_pack" in manifest.columns:
        names = set(manifest.pop("_pack"))
        blocks = [
            b
            for b in cutout_packs.blocks_in(outputs["cutouts_dir"])
            if cutout_packs.block_name(*b) in names
        ]
    if Path(outputs["cutouts_dir"]).is_dir():
        cutout_packs.tidy(outputs["cutouts_dir"], blocks if params.cutouts.pack_size else None)
    report = write_manifest(manifest, outputs["manifest"], outputs["cutouts_dir"])
    if blocks is not None:
        report["packs"] = len(blocks)
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
