"""Stage ``clean``: drop unusable rows, fix the train/val/test split, pack images into one array.

Every file is re-checked here whatever the manifest says: a cutout may have been
damaged after it was fetched, and the synthetic survey injects such damage on purpose.
The checks run in shards of catalog rows (one shard in one process), each writing its
rows' drop reasons and kept images as a part; the merge splits and packs them.

Tabular-only data (``source.files.images: none``) has no cutouts: only the feature
checks run, and ``images.npy`` is an empty-width ``(rows, 0, 0, 3)`` array, so that the
files downstream stages read are the same either way (only tabular models use it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort import targets
from skysort.config import Params
from skysort.data import atomic
from skysort.data.cleaning import check_rows, read_inputs, write_outputs
from skysort.pipeline import sharding
from skysort.pipeline.progress import Progress
from skysort.pipeline.stage import Shards, Stage
from skysort.pipeline.summaries import clean_summary

log = logging.getLogger(__name__)


def _prepare(params: Params) -> int:
    """Check the inputs and empty the work folder; the catalog's row count."""
    catalog, _ = read_inputs(params.paths.catalog, params.paths.manifest)
    sharding.reset_work_dir(params.paths.images)
    return len(catalog)


def _shard(
    params: Params, shard: int, start: int, stop: int, progress: Progress | None = None
) -> Path:
    """Check and decode the cutouts of catalog rows ``[start, stop)``.

    Writes two parts: the rows' drop reasons (``.parquet``, null = kept) and the kept
    rows' images in row order (``.npy``); returns the path of the reasons part, which
    is written last, so that it exists only when the shard is complete.
    """
    p, data = params.paths, params.data
    catalog, manifest = read_inputs(p.catalog, p.manifest)
    rows = catalog.iloc[start:stop]
    reasons, images = check_rows(
        rows,
        manifest if params.source.has_images else None,
        Path(p.cutouts_dir),
        data=data,
        clean=params.clean,
        source=params.source,
        target=targets.get(params.task),
    )
    kept = rows.index[reasons.isna().to_numpy()]
    size = _image_size(params)
    stack = np.empty((len(kept), size, size, 3), dtype=np.uint8)
    for k, i in enumerate(kept if size else ()):
        stack[k] = images[i]
    atomic.write_npy(sharding.part_path(p.images, shard, ".npy"), stack)
    table = pd.DataFrame(
        {
            "position": np.arange(start, stop, dtype=np.int64),
            "reason": pd.array(reasons.tolist(), dtype="string"),
        }
    )
    path = sharding.part_path(p.images, shard, ".parquet")
    atomic.write_parquet(path, table)
    log.info("clean shard %d: rows [%d, %d), %d kept", shard, start, stop, len(kept))
    return path


def _merge(
    params: Params, parts: list[Path], n_rows: int, outputs: dict[str, Path]
) -> dict[str, Any]:
    """Join the shards' reasons and images and write the clean stage's outputs."""
    p = params.paths
    catalog, manifest = read_inputs(p.catalog, p.manifest)
    tables = [pd.read_parquet(part) for part in parts]
    positions = np.concatenate([t["position"].to_numpy() for t in tables]) if tables else []
    sharding.check_coverage(np.asarray(positions), len(catalog), "clean")
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
                raise sharding.MissingShardError(
                    f"clean shard part {parts[k].name}: {len(images)} images, {expected} expected"
                )
            yield from images

    try:
        return write_outputs(
            catalog,
            reasons,
            kept_images(),
            outputs["dataset"],
            outputs["images"],
            outputs["clean_report"],
            data=params.data,
            clean=params.clean,
            seed=params.seed,
            image_size=_image_size(params),
            details=catalog["objid"].map(manifest.set_index("objid")["error"].astype("object")),
            target=targets.get(params.task),
        )
    finally:
        sharding.remove_work_dir(p.images)


def _image_size(params: Params) -> int:
    """The side of the packed images: 0 for tabular-only data."""
    return params.data.image_size if params.source.has_images else 0


STAGE = Stage(
    name="clean",
    reads=("catalog", "manifest", "cutouts_dir"),
    writes=("dataset", "images", "clean_report"),
    params=(
        "seed",
        "task",
        "data.features",
        "data.labels",
        "data.label_classes",
        "data.image_size",
        "clean",
        "source.kind",
        "source.files.images",
    ),
    describe=lambda p: f"clean: test {p.clean.test_fraction:g}, val {p.clean.val_fraction:g}",
    summarize=clean_summary,
    shards=Shards(_prepare, _shard, _merge),
)
