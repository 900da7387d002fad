"""The user's own images (``source.kind: files``) made into the cutout contract.

Each catalog row names its image (``image_source``, relative to
``paths.source_images``). Any size, aspect ratio and format Pillow reads become a
``data.image_size`` square RGB JPEG ``<objid>.jpg`` by ``source.files.resize``; a JPEG
that is already that square is copied byte for byte. A file that is not there, or
that does not decode, gets its manifest row (``missing`` / ``error``) with the
reason, and the clean stage drops the row.

Every file is made again on each run (local work is cheap), so an edited image is
never hidden behind an older cutout of it.
"""

from __future__ import annotations

import hashlib
import io as bytes_io
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from skysort.data import atomic
from skysort.data.images import cutout_path
from skysort.data.schema import MANIFEST_COLUMNS, conform
from skysort.pipeline.progress import Progress
from skysort.sources.files.catalog import IMAGE_SOURCE

log = logging.getLogger(__name__)

JPEG_QUALITY = 95
_MAX_WORKERS = 4
_Record = tuple[int, str, int, str, int, str, str]


def fit_square(image: Image.Image, size: int, resize: str) -> Image.Image:
    """``image`` as a ``size`` square: ``pad`` (all of it, black borders), ``crop`` (centre), ``stretch``."""
    width, height = image.size
    if resize == "stretch":
        return image.resize((size, size), Image.Resampling.BICUBIC)
    if resize == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return image.resize(
            (size, size), Image.Resampling.BICUBIC, (left, top, left + side, top + side)
        )
    if resize != "pad":
        raise ValueError(f"unknown resize policy {resize!r}")
    scale = size / max(width, height)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = Image.new("RGB", (size, size))
    canvas.paste(image.resize(inner, Image.Resampling.BICUBIC),
                 ((size - inner[0]) // 2, (size - inner[1]) // 2))  # fmt: skip
    return canvas


def square_jpeg(data: bytes, size: int, resize: str) -> bytes:
    """Image bytes of any format as a ``size`` square RGB JPEG (unchanged if already one)."""
    with Image.open(bytes_io.BytesIO(data)) as image:
        image.load()
        if image.format == "JPEG" and image.mode == "RGB" and image.size == (size, size):
            return data
        rgb = image.convert("RGB")
    out = bytes_io.BytesIO()
    fit_square(rgb, size, resize).save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def copy_images(
    catalog: pd.DataFrame,
    source_dir: Path,
    cutouts_dir: Path,
    *,
    size: int,
    resize: str,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Make the cutout of every row of ``catalog``; their manifest rows, in catalog order."""
    source_dir, cutouts_dir = Path(source_dir), Path(cutouts_dir)
    cutouts_dir.mkdir(parents=True, exist_ok=True)
    pairs = list(zip(catalog["objid"].tolist(), catalog[IMAGE_SOURCE].tolist(), strict=True))
    done = [0]

    def one(pair: tuple[int, object]) -> _Record:
        record = _one(pair[0], pair[1], source_dir, cutouts_dir, size, resize)
        done[0] += 1
        if progress is not None and (done[0] % 100 == 0 or done[0] == len(pairs)):
            progress(done[0], len(pairs))
        return record

    with ThreadPoolExecutor(max_workers=_MAX_WORKERS) as pool:
        records = list(pool.map(one, pairs))
    manifest = pd.DataFrame(records, columns=list(MANIFEST_COLUMNS))
    bad = manifest[manifest["status"] != "ok"]
    for status, error in zip(bad["status"].head(5), bad["error"].head(5), strict=True):
        log.warning("image %s: %s", status, error)
    if len(bad) > 5:
        log.warning("... and %d more images missing or unreadable (see the manifest)", len(bad) - 5)
    return conform(manifest, MANIFEST_COLUMNS)


def _one(
    objid: int, name: object, source_dir: Path, cutouts_dir: Path, size: int, resize: str
) -> _Record:
    # every file is made again on each run, so the fingerprint only records what made it
    made = f"files size={size} resize={resize} image={name}"
    if not isinstance(name, str) or not name:
        return (objid, "missing", 0, "", 1, "no image listed for this row", made)
    source = source_dir / name
    try:
        data = source.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return (objid, "missing", 0, "", 1, f"no such file: {source}", made)
    try:
        jpeg = square_jpeg(data, size, resize)
    except UnidentifiedImageError:
        return (objid, "error", 0, "", 1, f"unreadable image {source}: not an image format", made)
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        return (objid, "error", 0, "", 1, f"unreadable image {source}: {exc}", made)
    atomic.write_bytes(cutout_path(cutouts_dir, objid), jpeg)
    return (objid, "ok", len(jpeg), hashlib.sha256(jpeg).hexdigest(), 1, "", made)
