"""Stage ``clean``: drop unusable rows, fix the train/val/test split, pack images into one array.

Every file is re-checked here whatever the manifest says: a cutout may have been
damaged after it was fetched, and the synthetic survey injects such damage on purpose.
The checks run in shards of catalog rows (one shard in one process), each writing its
rows' drop reasons and decoded images as a part; the merge splits the kept rows and
packs their images. Images are decoded, written and copied a batch at a time, with
plain file I/O (:mod:`skysort.data.packed`), so memory stays flat however many rows.

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
from skysort.data.cleaning import DECODE_BATCH, check_rows, read_inputs, write_outputs
from skysort.data.packed import PackedWriter, open_images
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

    Writes two parts: the rows' images by position (``.npy``, one slot per row, zeros
    where a row is dropped), written as they are decoded, so that memory holds one
    batch of images; and the rows' drop reasons (``.parquet``, null = kept), written
    last, so that it exists only when the shard is complete. Returns its path.
    """
    p, data = params.paths, params.data
    catalog, manifest = read_inputs(p.catalog, p.manifest)
    rows = catalog.iloc[start:stop]
    size = _image_size(params)
    part = sharding.part_path(p.images, shard, ".npy")
    with (
        atomic.atomic_path(part, suffix=".npy") as tmp,
        PackedWriter(tmp, len(rows), (size, size, 3), every_row=False) as images,
    ):
        reasons, _ = check_rows(
            rows,
            manifest if params.source.has_images else None,
            Path(p.cutouts_dir),
            data=data,
            clean=params.clean,
            source=params.source,
            target=targets.get(params.task),
            sink=images.write,
        )
    table = pd.DataFrame(
        {
            "position": np.arange(start, stop, dtype=np.int64),
            "reason": pd.array(reasons.tolist(), dtype="string"),
        }
    )
    path = sharding.part_path(p.images, shard, ".parquet")
    atomic.write_parquet(path, table)
    log.info("clean shard %d: rows [%d, %d), %d kept", shard, start, stop,
             int(reasons.isna().sum()))  # fmt: skip
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
        for k in order:  # read a batch at a time: memory holds one batch, whatever the rows
            images = open_images(parts[k].with_suffix(".npy"))
            kept = tables[k]["reason"].isna().to_numpy()
            if len(images) != len(kept):
                raise sharding.MissingShardError(
                    f"clean shard part {parts[k].name}: {len(images)} images, {len(kept)} expected"
                )
            for start, batch in zip(range(0, len(kept), DECODE_BATCH),
                                    images.batches(DECODE_BATCH)):  # fmt: skip
                yield from batch[kept[start : start + DECODE_BATCH]]
            images.close()

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
