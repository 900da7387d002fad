"""Stage ``cutouts``: one JPEG per catalog object plus a manifest of what happened to each."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from skysort import io
from skysort.config import Cutouts, Data, Source
from skysort.progress import Progress
from skysort.schema import MANIFEST_COLUMNS, check_catalog, check_manifest, conform

log = logging.getLogger(__name__)


def cutouts(
    catalog_path: Path,
    cutouts_dir: Path,
    out_manifest: Path,
    *,
    source: Source,
    data: Data,
    cutouts: Cutouts,
    seed: int,
    min_pixel_std: float,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Render (synthetic) or fetch (SkyServer) every cutout; write the manifest atomically.

    Files already on disk and valid are kept, so a killed run resumes where it stopped.
    """
    catalog = read_catalog(catalog_path)
    manifest = cutout_rows(
        catalog,
        cutouts_dir,
        source=source,
        data=data,
        cutouts=cutouts,
        seed=seed,
        min_pixel_std=min_pixel_std,
        progress=progress,
    )
    return write_manifest(manifest, out_manifest, cutouts_dir)


def read_catalog(catalog_path: Path) -> pd.DataFrame:
    catalog = pd.read_parquet(catalog_path)
    check_catalog(catalog, str(catalog_path))
    return catalog


def cutout_rows(
    catalog: pd.DataFrame,
    cutouts_dir: Path,
    *,
    source: Source,
    data: Data,
    cutouts: Cutouts,
    seed: int,
    min_pixel_std: float,
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
    if source.kind == "synthetic":
        from skysort.synthetic import write_synthetic_cutouts

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
    from skysort.fetch import fetch_cutouts

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
    io.write_parquet(out_manifest, manifest)
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
