"""Cleaning the catalog: each row's drop reason, the split of the kept rows, the packed images.

Every file is re-checked whatever the manifest says: a cutout may have been damaged
after it was fetched. The checks are per row, so a shard of the catalog is checked
alone; :func:`write_outputs` then splits the kept rows and packs their images, given
in catalog order, into one memory-mappable array.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from skysort.config import Clean, Data, Source
from skysort.data import atomic
from skysort.data.cutout_packs import CutoutReader
from skysort.data.images import BadImage, decode_jpeg
from skysort.data.packed import PackedWriter
from skysort.data.schema import check_catalog, check_manifest

if TYPE_CHECKING:
    from skysort.targets.base import Target

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DECODE_BATCH = 512
"""Cutouts decoded (and images packed) per batch: what memory holds at once."""
ImageSink = Callable[[int, np.ndarray], None]
"""Where :func:`check_rows` sends each kept row's image: ``sink(position, image)``."""


class NoUsableRowsError(ValueError):
    """Cleaning left nothing to train on."""


BY_DESIGN = frozenset({"not_a_label_class"})
"""Drop reasons that are a choice, not a fault: they do not count against the drop budget."""


class TooManyDroppedError(ValueError):
    """Cleaning would drop more rows than ``clean.max_drop_fraction``: something upstream broke."""


def read_inputs(catalog_path: Path, manifest_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    catalog = pd.read_parquet(catalog_path)
    check_catalog(catalog, str(catalog_path))
    manifest = pd.read_parquet(manifest_path)
    check_manifest(manifest, str(manifest_path))
    return catalog, manifest


def check_rows(
    catalog: pd.DataFrame,
    manifest: pd.DataFrame | None,
    cutouts_dir: Path,
    *,
    data: Data,
    clean: Clean,
    source: Source | None = None,
    target: Target,
    sink: ImageSink | None = None,
) -> tuple[pd.Series, dict[Any, np.ndarray]]:
    """Each row's drop reason (NaN = kept) and the decoded image of every kept row.

    ``catalog`` may be a slice of the whole catalog (one shard): every check is per row.
    Without a cutout ``manifest`` (tabular-only data, or a model that reads no image)
    only the features are checked. The task may drop rows it cannot use (multilabel:
    ``not_a_label_class``). With a ``sink``, each kept row's image goes to
    ``sink(position, image)`` (its position in ``catalog``) as soon as it is decoded,
    and the returned dict is empty: only a batch of images is ever in memory.
    """
    reasons = target.drop_reasons(catalog, data, _feature_reasons(catalog, data.features))
    if manifest is None:
        return reasons, {}
    # A user's image that would not decode is unreadable; a SkyServer one failed to download.
    error_reason = "unreadable_image" if source is not None and source.kind == "files" else None
    reasons = reasons.combine_first(_manifest_reasons(catalog, manifest, error_reason))
    candidates = catalog.index[reasons.isna()]
    objids = catalog.loc[candidates, "objid"]
    sha256 = objids.map(manifest.set_index("objid")["sha256"]).astype("object")
    positions = catalog.index.get_indexer(candidates)
    images: dict[Any, np.ndarray] = {}

    def keep(k: int, image: np.ndarray) -> None:
        if sink is None:
            images[candidates[k]] = image
        else:
            sink(int(positions[k]), image)

    image_reasons = _load_images(
        objids, Path(cutouts_dir), data.image_size, clean, sha256.where(sha256.notna()), keep
    )
    reasons = reasons.combine_first(pd.Series(image_reasons, index=candidates, dtype="object"))
    return reasons, images


def write_outputs(
    catalog: pd.DataFrame,
    reasons: pd.Series,
    kept_images: Iterable[np.ndarray],
    out_dataset: Path,
    out_images: Path,
    out_report: Path,
    *,
    data: Data,
    clean: Clean,
    seed: int,
    image_size: int | None = None,
    details: pd.Series | None = None,
    target: Target,
) -> dict[str, Any]:
    """Split the kept rows, pack their images (given in catalog order), write the report.

    ``image_size``: the packed images' side (default ``data.image_size``; 0 without
    images). ``details``: per row, what the cutout manifest says went wrong, added to
    each dropped row in the report.
    """
    keep = reasons.isna().to_numpy()
    kept = catalog.loc[keep].copy()
    counts = {str(k): int(v) for k, v in reasons.value_counts().items()}
    if kept.empty:
        raise NoUsableRowsError(f"no usable rows remain out of {len(catalog)} (dropped: {counts})")
    # Rows left out by design (stars in a galaxy-morphology task) are not lost data.
    eligible = int((~reasons.isin(BY_DESIGN)).sum())
    dropped_fraction = 1 - len(kept) / max(eligible, 1)
    if dropped_fraction > clean.max_drop_fraction:
        raise TooManyDroppedError(
            f"clean would drop {eligible - len(kept)} of {eligible} rows "
            f"({dropped_fraction:.0%}, more than clean.max_drop_fraction "
            f"{clean.max_drop_fraction:.0%}): {counts}; fix the inputs (rerun cutouts?) or "
            "raise clean.max_drop_fraction"
        )
    kept["split"] = target.split(kept, data, clean, seed)
    size = data.image_size if image_size is None else image_size
    _write_images(out_images, kept_images, len(kept), size)
    kept = kept.reset_index(drop=True)
    kept["row"] = np.arange(len(kept), dtype=np.int64)
    atomic.write_parquet(out_dataset, kept)

    dropped = catalog.loc[reasons.notna(), ["objid"]].assign(reason=reasons[reasons.notna()])
    report = {
        "task": target.name,
        "input_rows": len(catalog),
        "kept_rows": len(kept),
        "dropped_rows": len(dropped),
        "dropped_by_reason": {str(k): int(v) for k, v in dropped["reason"].value_counts().items()},
        "split_counts": {s: int((kept["split"] == s).sum()) for s in SPLITS},
        "class_counts_by_split": {
            s: {
                str(k): int(v)
                for k, v in kept.loc[kept["split"] == s, "class"]
                .fillna("unknown")
                .value_counts()
                .items()
            }
            for s in SPLITS
        },
        "dropped": [
            {"objid": int(o), "reason": str(r)} for o, r in zip(dropped["objid"], dropped["reason"])
        ],
    }
    if details is not None:
        for row, index in zip(report["dropped"], dropped.index):
            detail = details.get(index)
            if isinstance(detail, str) and detail:
                row["detail"] = detail
    report.update(target.split_counts(kept, data, SPLITS))
    atomic.write_json(out_report, report)
    log.info(
        "clean: kept %d of %d rows; dropped %s",
        len(kept),
        len(catalog),
        report["dropped_by_reason"],
    )
    return report


def _feature_reasons(catalog: pd.DataFrame, features: tuple[str, ...]) -> pd.Series:
    missing = catalog[list(features)].isna().any(axis=1)
    out = pd.Series(np.nan, index=catalog.index, dtype="object")
    out[missing] = "missing_features"
    return out


def _manifest_reasons(
    catalog: pd.DataFrame, manifest: pd.DataFrame, error_reason: str | None = None
) -> pd.Series:
    status = catalog["objid"].map(manifest.set_index("objid")["status"])
    out = pd.Series(np.nan, index=catalog.index, dtype="object")
    out[status.isna().to_numpy()] = "not_in_manifest"
    out[(status == "missing").fillna(False).to_numpy()] = "missing_image"
    out[(status == "error").fillna(False).to_numpy()] = error_reason or "fetch_error"
    return out


def _load_images(
    objids: pd.Series,
    cutouts_dir: Path,
    size: int,
    clean: Clean,
    sha256: pd.Series,
    keep: Callable[[int, np.ndarray], None],
) -> list[str | None]:
    """Decode and validate each candidate's cutout (threads: PIL releases the GIL).

    Each decoded image goes to ``keep(k, image)`` (``k``: the candidate's place in
    ``objids``) in order, a batch at a time, so that memory holds one batch of images
    whatever the number of rows. Returns per candidate a drop reason or None.
    A file the manifest lists as fetched but that is gone is ``file_deleted`` (not a
    server's ``missing_image``); a decodable file whose bytes no longer match the
    manifest's sha256 is ``changed_on_disk``.
    """

    reader = CutoutReader(cutouts_dir)  # loose files or packs (``cutouts.pack_size``)

    def one(objid: int, expected: Any) -> np.ndarray | str:
        try:  # one read: the same bytes are decoded and hashed
            data = reader.read(objid)
            if data is None:
                return "file_deleted"
            image = decode_jpeg(data, size=size, min_pixel_std=clean.min_pixel_std)
        except BadImage as exc:
            return exc.reason
        if isinstance(expected, str) and hashlib.sha256(data).hexdigest() != expected:
            return "changed_on_disk"
        return image

    ids, digests = objids.tolist(), sha256.tolist()
    reasons: list[str | None] = []
    with reader, ThreadPoolExecutor(max_workers=4) as pool:
        for start in range(0, len(ids), DECODE_BATCH):
            stop = start + DECODE_BATCH
            for k, result in enumerate(pool.map(one, ids[start:stop], digests[start:stop]), start):
                if isinstance(result, str):
                    reasons.append(result)
                else:
                    keep(k, result)
                    reasons.append(None)
    return reasons


def _write_images(path: Path, images: Iterable[np.ndarray], n: int, size: int) -> None:
    """Pack ``n`` images into one uint8 N×H×W×3 ``.npy`` (memory-mappable), written atomically.

    Written a block at a time with plain file I/O (:mod:`skysort.data.packed`): only
    one block is ever in memory.
    """
    block = np.empty((DECODE_BATCH, size, size, 3), dtype=np.uint8)
    with (
        atomic.atomic_path(path, suffix=".npy") as tmp,
        PackedWriter(tmp, n, (size, size, 3)) as out,
    ):
        count = filled = 0
        for img in images:
            if count >= n:
                raise ValueError(f"more than the {n} images expected for {path}")
            block[filled] = img
            count, filled = count + 1, filled + 1
            if filled == len(block):
                out.write(count - filled, block)
                filled = 0
        if count != n:
            raise ValueError(f"{count} images for {path}, {n} expected")
        out.write(count - filled, block[:filled])
