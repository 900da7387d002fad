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

import numpy as np
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


def eight_bit(image: Image.Image) -> Image.Image:
    """``image`` with pixels in 0-255, as RGB conversion wants them (it clips the rest).

    16-bit grey (``I;16*``, and 32-bit integer pixels within 0-65535) is scaled
    linearly, 65535 to 255; integer or float pixels within 0-255 are kept; wider values
    are refused (``ValueError``), not clipped to white.
    """
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    pixels = np.asarray(image, dtype=np.float64)
    low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    if image.mode in ("I", "F") and low >= 0 and high <= 255:
        return image
    if image.mode != "F" and low >= 0 and high <= 65535:
        return Image.fromarray(np.round(pixels / 257).astype(np.uint8), mode="L")
    raise ValueError(
        f"{'float' if image.mode == 'F' else 'integer'} pixels from {_number(low)} to "
        f"{_number(high)} fit neither 8 bits (0-255) "
        "nor 16 bits (0-65535): save the image with 8 or 16 bits per channel"
    )


def _number(value: float) -> str:
    return f"{value:.0f}" if value.is_integer() else f"{value:.6g}"


def square_jpeg(data: bytes, size: int, resize: str) -> bytes:
    """Image bytes of any format as a ``size`` square RGB JPEG (unchanged if already one)."""
    with Image.open(bytes_io.BytesIO(data)) as image:
        image.load()
        if image.format == "JPEG" and image.mode == "RGB" and image.size == (size, size):
            return data
        rgb = eight_bit(image).convert("RGB")
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
        data = _read_inside(source, source_dir)
    except FileNotFoundError:
        return (objid, "missing", 0, "", 1, f"no such file: {_shown(source)}", made)
    except _Unusable as exc:
        return (objid, "error", 0, "", 1, str(exc), made)
    try:
        jpeg = square_jpeg(data, size, resize)
    except UnidentifiedImageError:
        return (objid, "error", 0, "", 1, f"unreadable image {_shown(source)}: not an image format",
                made)  # fmt: skip
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        return (objid, "error", 0, "", 1, f"unreadable image {_shown(source)}: {exc}", made)
    atomic.write_bytes(cutout_path(cutouts_dir, objid), jpeg)
    return (objid, "ok", len(jpeg), hashlib.sha256(jpeg).hexdigest(), 1, "", made)


class _Unusable(ValueError):
    """An image path that is no file to read: its row's error, whatever the reason."""


SHOWN_PATH = 160
"""Longest image path a manifest error quotes whole (a longer one is cut in the middle)."""


def _shown(path: Path | str) -> str:
    text = str(path)
    if len(text) <= SHOWN_PATH:
        return text
    half = SHOWN_PATH // 2
    return f"{text[:half]}…{text[-half:]} ({len(text)} characters)"


def _read_inside(source: Path, folder: Path) -> bytes:
    """The bytes of ``source``, which must resolve (links followed) inside ``folder``.

    Raises ``FileNotFoundError`` when nothing is there, and :class:`_Unusable` for a
    path that cannot name a file (a NUL byte, too long), a folder, or a link that
    leads out of ``paths.source_images``: the file it leads to is never opened.
    """
    if "\x00" in str(source):
        raise _Unusable(f"unusable image path {_shown(source)!r}: it holds a null byte (\\x00)")
    try:
        resolved = source.resolve()
        inside = resolved.is_relative_to(folder.resolve())
        if resolved.is_dir():
            raise _Unusable(f"image path {_shown(source)} is a folder, not an image file")
    except OSError as exc:  # too long a name, a loop of links, no permission
        raise _Unusable(f"unusable image path {_shown(source)}: {exc.strerror}") from None
    if not inside:
        raise _Unusable(
            f"image path {_shown(source)} leads outside paths.source_images ({folder}), through "
            f"a link to {_shown(resolved)}: it is not read"
        )
    try:
        return resolved.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(source) from None
    except OSError as exc:
        raise _Unusable(f"unusable image path {_shown(source)}: {exc.strerror}") from None
