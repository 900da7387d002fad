"""Decide whether a cutout is a usable JPEG of the sky, and decode it.

Shared by the fetcher (reject a bad response before it is written) and by the
clean stage (re-check every file on disk, whatever the manifest says).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"


class BadImage(ValueError):
    """A cutout that is not a usable image; ``reason`` is one of the clean report's reasons."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_jpeg(data: bytes, size: int | None = None, *, min_pixel_std: float) -> np.ndarray:
    """Decode JPEG bytes into a uint8 H×W×3 array, resized to ``size`` if given.

    Raises :class:`BadImage` with reason ``not_jpeg`` (an HTML error page, say),
    ``unreadable_image`` (truncated or corrupt) or ``blank_image`` (pixel standard
    deviation below ``min_pixel_std``, i.e. ``clean.min_pixel_std``: empty sky or
    outside the survey footprint).
    """
    if not data.startswith(JPEG_MAGIC):
        head = data[:60].decode("latin-1", errors="replace").strip().replace("\n", " ")
        raise BadImage("not_jpeg", f"body does not start with the JPEG marker ({head!r})")
    if not data.rstrip(b"\x00").endswith(JPEG_END):
        raise BadImage("unreadable_image", f"JPEG has no end marker ({len(data)} bytes; truncated)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise BadImage("unreadable_image", f"cannot decode JPEG: {exc}") from None
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(rgb, dtype=np.uint8)
    std = float(array.std())
    if std < min_pixel_std:
        raise BadImage("blank_image", f"pixel standard deviation {std:.2f} < {min_pixel_std}")
    return array


def read_cutout(path: Path, size: int | None, min_pixel_std: float) -> np.ndarray:
    """Read and validate one cutout file; a missing file is :class:`BadImage` ``missing_image``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadImage("missing_image", f"{path} does not exist") from None
    if not data:
        raise BadImage("unreadable_image", f"{path} is empty")
    return decode_jpeg(data, size=size, min_pixel_std=min_pixel_std)


def encode_jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    """Encode a uint8 H×W×3 array as JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode="RGB").save(
        buf, format="JPEG", quality=quality
    )
    return buf.getvalue()


def cutout_path(cutouts_dir: Path, objid: int) -> Path:
    """Where the cutout of ``objid`` lives: one JPEG per object, named by its 64-bit id."""
    return Path(cutouts_dir) / f"{int(objid)}.jpg"
