"""Synthetic cutout files: one JPEG per catalog row, rendered in threads, and the manifest.

Each row's fault and neighbour count are planned over the whole catalog up front, so a
shard's files equal a whole run's; a file already holding the right bytes is kept.
Each file and manifest row carries the fingerprint of what fixed its rendering
(:func:`_render_fingerprint`), so a file made under other parameters never matches.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort.config import Cutouts, Data, SyntheticSource
from skysort.data import atomic
from skysort.data.images import cutout_path, encode_jpeg, with_fingerprint
from skysort.data.schema import GALAXY_ZOO_LABELS, MAGNITUDE_COLUMNS, MANIFEST_COLUMNS
from skysort.pipeline.progress import Progress
from skysort.sources.synthetic import render
from skysort.sources.synthetic.catalog import SHAPE_COLUMNS
from skysort.sources.synthetic.faults import blank_frame, plan_cutout_faults, truncate
from skysort.sources.synthetic.galaxyzoo import TRUE_MORPHOLOGY
from skysort.sources.synthetic.seeding import object_stream, stream

log = logging.getLogger(__name__)

JPEG_QUALITY = 75
"""SkyServer ImgCutout's JPEG quality (read off the quantisation tables of real cutouts)."""

_RENDER_CHUNK_MAX = 50
_PLAN_BLOCK = 2000
"""Rows whose jobs exist at once (their catalog values as Python objects)."""
_MAX_WORKERS = 8

_Record = tuple[Any, ...]
"""One manifest row, in :data:`~skysort.data.schema.MANIFEST_COLUMNS` order."""


@dataclass(frozen=True)
class _Job:
    """One catalog row to render: its place in the output, its fault, what the renderer reads."""

    index: int
    objid: int
    fault: str  # "", "missing", "corrupt" or "blank"
    row: dict[str, Any]


def write_synthetic_cutouts(
    catalog: pd.DataFrame,
    cutouts_dir: Path,
    data: Data,
    cutouts: Cutouts,
    synthetic: SyntheticSource,
    seed: int,
    progress: Progress | None = None,
    rows: slice | np.ndarray | None = None,
) -> pd.DataFrame:
    """Render one JPEG per catalog row and return the manifest (catalog order).

    ``rows`` renders only those rows of the catalog (a slice: one shard of a
    distributed run; positions: the objects predict classifies, in that order);
    faults are still planned over the whole catalog, so the files and manifest rows
    are exactly those of a whole run.

    Faults at the configured rates, fixed by the seed: *missing* (no file, status
    ``missing``), *corrupt* (a truncated JPEG that the manifest calls ``ok`` — the
    clean stage must catch it) and *blank* (a flat image, also ``ok``). A file that
    already holds exactly the bytes this run would write is left untouched, so a
    re-run rewrites nothing and a killed run resumes.
    """
    cutouts_dir = Path(cutouts_dir)
    cutouts_dir.mkdir(parents=True, exist_ok=True)
    chosen = np.arange(len(catalog))[rows] if rows is not None else None
    plan = _Plan(catalog, synthetic, seed, field_arcmin2(data.image_size, cutouts.scale), chosen)

    def make(job: _Job) -> _Record:
        return _make_cutout(job, cutouts_dir, data, cutouts, seed)

    manifest = pd.DataFrame(_make_all(plan, make, progress), columns=list(MANIFEST_COLUMNS))
    manifest = manifest.astype(MANIFEST_COLUMNS)
    log.info(
        "synthetic cutouts: %s in %s", manifest["status"].value_counts().to_dict(), cutouts_dir
    )
    return manifest


def field_arcmin2(size: int, scale: float) -> float:
    """A cutout's field in square arcminutes (``size`` pixels of ``scale`` arcsec a side)."""
    return (size * scale / 60.0) ** 2


class _Plan:
    """Each row's fault and neighbour count, decided up front, deterministically from the seed.

    Field objects fall at random on the sky (Poisson, ``synthetic.neighbour_density`` per
    square arcminute), so a wider ``field`` (arcmin²) holds more of them. Faults and
    counts are drawn for the whole catalog (arrays: a few bytes a row); jobs are made
    for the ``chosen`` rows only (all by default), numbered in that order, a block at a
    time (:meth:`jobs`), so that memory holds one block's rows, not the catalog's.
    """

    def __init__(
        self,
        catalog: pd.DataFrame,
        synthetic: SyntheticSource,
        seed: int,
        field: float,
        chosen: np.ndarray | None = None,
    ) -> None:
        n = len(catalog)
        self.catalog = catalog
        self.faults = plan_cutout_faults(n, synthetic, seed)
        self.n_neighbours = stream(seed, "neighbours").poisson(
            synthetic.neighbour_density * field, n
        )
        self.chosen = np.arange(n) if chosen is None else np.asarray(chosen, dtype=np.int64)
        # The true morphology where the catalog has it (never the votes), else the flags.
        truth = tuple(TRUE_MORPHOLOGY.values())
        morphology = truth if truth[0] in catalog.columns else GALAXY_ZOO_LABELS
        self.columns = [
            c
            for c in (*MAGNITUDE_COLUMNS, "class", *SHAPE_COLUMNS, *morphology)
            if c in catalog.columns
        ]
        self.objids = catalog["objid"].to_numpy(dtype=np.int64)

    def __len__(self) -> int:
        return len(self.chosen)

    def jobs(self, start: int, stop: int) -> list[_Job]:
        """The jobs numbered ``start`` to ``stop - 1``."""
        chosen = self.chosen[start:stop]
        records = self.catalog[self.columns].iloc[chosen].astype(object).to_dict("records")
        return [
            _Job(start + k, int(self.objids[i]), str(self.faults[i]),
                 {**records[k], "n_neighbours": int(self.n_neighbours[i])})
            for k, i in enumerate(chosen.tolist())
        ]  # fmt: skip


def _make_all(
    plan: _Plan, make: Callable[[_Job], _Record], progress: Progress | None
) -> list[_Record]:
    """Run ``make`` on every job in a thread pool, a block at a time; the records in order."""
    total = len(plan)
    records: list[_Record] = []
    # About a hundred chunks: progress moves in ~1 % steps without a call per cutout.
    chunk = max(1, min(_RENDER_CHUNK_MAX, math.ceil(total / 100)))

    def work(part: list[_Job]) -> list[_Record]:
        return [make(job) for job in part]

    workers = min(_MAX_WORKERS, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render") as pool:
        for start in range(0, total, _PLAN_BLOCK):
            jobs = plan.jobs(start, min(total, start + _PLAN_BLOCK))
            for part in pool.map(work, [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]):
                records.extend(part)
                if progress is not None:
                    progress(len(records), total)
    if progress is not None and total == 0:
        progress(0, 0)
    return records


def _make_cutout(job: _Job, cutouts_dir: Path, data: Data, cutouts: Cutouts, seed: int) -> _Record:
    """Produce one manifest record, writing the file unless it already holds these bytes."""
    path = cutout_path(cutouts_dir, job.objid)
    fingerprint = _render_fingerprint(job, data.image_size, cutouts.scale, seed)
    if job.fault == "missing":
        path.unlink(missing_ok=True)  # a stale file from another run would contradict us
        return (job.objid, "missing", 0, "", 1, "no cutout from the service", fingerprint)
    rng = object_stream(seed, "render", job.objid)
    payload = _cutout_bytes(job, data.image_size, cutouts.scale, rng, fingerprint)
    digest = hashlib.sha256(payload).hexdigest()
    if not _same_file(path, digest):
        atomic.write_bytes(path, payload)
    return (job.objid, "ok", len(payload), digest, 1, "", fingerprint)


def _render_fingerprint(job: _Job, size: int, scale: float, seed: int) -> str:
    """What fixes one object's file: renderer version, seed, size, scale and the row's inputs.

    The row's inputs (magnitudes, class, shape, morphology flags, neighbour count and
    planned fault) enter as a digest, so the fingerprint stays short.
    """
    inputs = "\n".join(f"{key}={_canonical(job.row[key])}" for key in sorted(job.row))
    digest = hashlib.sha256(f"{job.objid}\nfault={job.fault}\n{inputs}".encode()).hexdigest()
    return (
        f"synthetic renderer={render.RENDERER_VERSION} seed={seed} size={size} "
        f"scale={float(scale)!r} row={digest[:16]}"
    )


def _canonical(value: Any) -> str:
    """One text per value, whatever numpy or pandas type carries it (NaN and NA alike)."""
    if value is None or value is pd.NA:
        return "NA"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "NA" if math.isnan(value) else repr(float(value))
    return str(value)


def _cutout_bytes(
    job: _Job, size: int, scale: float, rng: np.random.Generator, fingerprint: str
) -> bytes:
    if job.fault == "blank":
        return with_fingerprint(encode_jpeg(blank_frame(size), quality=JPEG_QUALITY), fingerprint)
    image = render.render_cutout(job.row, size, scale, rng)
    payload = with_fingerprint(encode_jpeg(image, quality=JPEG_QUALITY), fingerprint)
    if job.fault == "corrupt":
        return truncate(payload, rng)
    return payload


def _same_file(path: Path, digest: str) -> bool:
    try:
        existing = path.read_bytes()
    except FileNotFoundError:
        return False
    return hashlib.sha256(existing).hexdigest() == digest
