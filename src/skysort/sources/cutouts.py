"""One cutout per catalog object from the configured source, and the manifest of what happened.

SkyServer's ImgCutout service, the simulated survey's renderer or the user's own image
folder (``source.kind``): each writes one JPEG per object into the cutouts folder and
returns one manifest row per object (status, bytes, sha256, attempts, error).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort.config import Cutouts, Data, Source
from skysort.data import atomic
from skysort.data.schema import MANIFEST_COLUMNS, check_catalog, check_manifest, conform
from skysort.pipeline.progress import Progress

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
    rows: slice | np.ndarray | None = None,
    progress: Progress | None = None,
    remove_temp: bool = True,
) -> pd.DataFrame:
    """Produce the cutouts of ``catalog[rows]`` (all rows by default); their manifest rows.

    ``rows`` is a slice (one shard of a distributed run) or an array of positions (the
    objects predict classifies): the files and manifest rows are the same as those a
    whole run would produce for these objects.
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
