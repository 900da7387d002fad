"""Decide whether a cutout is a usable JPEG of the sky, and decode it.

Shared by the fetcher (reject a bad response before it is written) and by the
clean stage (re-check every file on disk, whatever the manifest says). A cutout
comes from outside (a server, a user's folder), so the limits below hold before
a pixel is decoded: a header claiming 60000 x 60000 pixels is refused, not
decompressed.

Each file also carries the fingerprint of the request that made it, in a JPEG
comment segment, so that a file made under other parameters is never mistaken
for this run's (:func:`with_fingerprint`, :func:`read_fingerprint`); a fetched file
also carries a stamp saying which bytes were checked, under which blank limit
(:func:`with_check_stamp`, :func:`has_check_stamp`).
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
MAX_IMAGE_BYTES = 16 * 2**20
"""Largest cutout accepted, as a file or a response body (a 2048² ImgCutout JPEG is 1-2 MB)."""
MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest width x height decoded (four times ImgCutout's largest, 2048²), checked on the header."""
FINGERPRINT_TAG = b"skysort-request "
"""Start of the JPEG comment that holds a file's request fingerprint."""
CHECK_TAG = b"skysort-checked "
"""Start of the JPEG comment that stamps a file as checked (:func:`with_check_stamp`)."""

_COM = 0xFE  # JPEG comment segment
_APP0 = 0xE0  # JFIF header: the standard wants it right after the start marker
_SOS = 0xDA  # start of scan: the header segments end here
_EOI = 0xD9
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


class BadImage(ValueError):
    """A cutout that is not a usable image; ``reason`` is one of the clean report's reasons."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_jpeg(
    data: bytes, size: int | None = None, *, min_pixel_std: float, exact_size: int | None = None
) -> np.ndarray:
    """Decode JPEG bytes into a uint8 H×W×3 array, resized to ``size`` if given.

    Raises :class:`BadImage` with reason ``not_jpeg`` (an HTML error page, say),
    ``oversized_image`` (more than :data:`MAX_IMAGE_BYTES` bytes or a header claiming
    more than :data:`MAX_IMAGE_PIXELS` pixels), ``wrong_size`` (not ``exact_size``
    pixels square, when given), ``unreadable_image`` (truncated or corrupt) or
    ``blank_image`` (pixel standard deviation below ``min_pixel_std`` in every colour
    channel, i.e. ``clean.min_pixel_std``: empty sky, outside the survey footprint, or
    one flat colour).
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise BadImage(
            "oversized_image", f"{len(data)} bytes, more than {MAX_IMAGE_BYTES} (MAX_IMAGE_BYTES)"
        )
    if not data.startswith(JPEG_MAGIC):
        head = data[:60].decode("latin-1", errors="replace").strip().replace("\n", " ")
        raise BadImage("not_jpeg", f"body does not start with the JPEG marker ({head!r})")
    if not data.rstrip(b"\x00").endswith(JPEG_END):
        raise BadImage("unreadable_image", f"JPEG has no end marker ({len(data)} bytes; truncated)")
    dimensions = _frame_size(data)
    if dimensions is not None:  # refused before Pillow allocates anything
        _check_header(dimensions, exact_size)
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as img:
            _check_header(img.size, exact_size)
            img.load()
            rgb = img.convert("RGB")
    except BadImage:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own, far higher, limit
        raise BadImage("oversized_image", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - hostile bytes make Pillow raise many types
        raise BadImage("unreadable_image", f"cannot decode JPEG: {exc}") from None
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(rgb, dtype=np.uint8)
    # per channel: a flat colour is blank too, though its channels differ from each other
    if _clearly_not_blank(array, min_pixel_std):
        return array
    spread = array.reshape(-1, 3).std(axis=0)
    if float(spread.max()) < min_pixel_std:
        raise BadImage(
            "blank_image",
            f"pixel standard deviation {float(spread.max()):.2f} < {min_pixel_std} in every "
            f"channel (R {spread[0]:.2f}, G {spread[1]:.2f}, B {spread[2]:.2f})",
        )
    return array


_LEVELS = np.arange(256, dtype=np.int64)


def _clearly_not_blank(array: np.ndarray, min_pixel_std: float) -> bool:
    """True if some channel's pixel standard deviation is clearly at least ``min_pixel_std``.

    Exact integer sums from each channel's histogram, several times faster than
    ``std``; an image within a hair of the limit (or blank) is left to ``numpy.std``,
    so that the decision and the message are exactly those of ``std`` alone.
    """
    flat = array.reshape(-1, 3)
    n = len(flat)
    if n == 0:
        return False
    best = 0
    for channel in range(3):
        counts = np.bincount(flat[:, channel], minlength=256)
        total, squares = int(counts @ _LEVELS), int(counts @ (_LEVELS * _LEVELS))
        best = max(best, n * squares - total * total)  # n² × variance, exactly
    return best**0.5 / n > min_pixel_std * (1 + 1e-9) + 1e-9


def _check_header(dimensions: tuple[int, int], exact_size: int | None) -> None:
    width, height = dimensions
    if width * height > MAX_IMAGE_PIXELS:
        raise BadImage(
            "oversized_image",
            f"header claims {width}x{height} pixels, more than {MAX_IMAGE_PIXELS} "
            "(MAX_IMAGE_PIXELS)",
        )
    if exact_size is not None and (width, height) != (exact_size, exact_size):
        raise BadImage(
            "wrong_size", f"{width}x{height} pixels, {exact_size}x{exact_size} requested"
        )


def read_cutout_bytes(path: Path) -> bytes:
    """The bytes of one cutout file, refused (:class:`BadImage`) if missing, oversized or empty."""
    try:
        nbytes = path.stat().st_size
    except FileNotFoundError:
        raise BadImage("missing_image", f"{path} does not exist") from None
    if nbytes > MAX_IMAGE_BYTES:  # not even read into memory
        raise BadImage("oversized_image", f"{path} has {nbytes} bytes, more than {MAX_IMAGE_BYTES}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadImage("missing_image", f"{path} does not exist") from None
    if not data:
        raise BadImage("unreadable_image", f"{path} is empty")
    return data


def read_cutout(path: Path, size: int | None, min_pixel_std: float) -> np.ndarray:
    """Read and validate one cutout file; a missing file is :class:`BadImage` ``missing_image``."""
    return decode_jpeg(read_cutout_bytes(path), size=size, min_pixel_std=min_pixel_std)


def encode_jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    """Encode a uint8 H×W×3 array as JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode="RGB").save(
        buf, format="JPEG", quality=quality
    )
    return buf.getvalue()


def with_fingerprint(data: bytes, fingerprint: str) -> bytes:
    """JPEG bytes with ``fingerprint`` in a comment segment near the start; pixels unchanged.

    The segment goes after the JFIF header when there is one (where the standard
    allows it), else right after the start marker. Bytes that are not a JPEG are
    returned as they are.
    """
    return _with_comment(data, FINGERPRINT_TAG + fingerprint.encode("utf-8"))


def read_fingerprint(data: bytes) -> str | None:
    """The fingerprint :func:`with_fingerprint` stored in JPEG bytes, or None.

    Only the header segments are walked (no decoding), so this is cheap and safe on
    any bytes.
    """
    for marker, body in _header_segments(data):
        if marker == _COM and body.startswith(FINGERPRINT_TAG):
            return body[len(FINGERPRINT_TAG) :].decode("utf-8", errors="replace")
    return None


def with_check_stamp(data: bytes, min_pixel_std: float) -> bytes:
    """JPEG bytes that :func:`decode_jpeg` accepted, stamped as such in a comment segment.

    The stamp holds the SHA-256 of the bytes without it and the blank limit
    (``min_pixel_std``) they passed. :func:`has_check_stamp` later proves, with one
    hash and no decoding, that a file is still exactly what was checked, so a resumed
    run need not decode every file again.
    """
    digest = hashlib.sha256(data).hexdigest()
    return _with_comment(data, CHECK_TAG + _stamp(digest, min_pixel_std))


def has_check_stamp(data: bytes, min_pixel_std: float) -> bool:
    """True if ``data`` carries a :func:`with_check_stamp` stamp for ``min_pixel_std``
    and, without the stamp, is byte for byte what was checked (its SHA-256 matches).

    False for anything else (no stamp, another blank limit, one changed byte): the
    caller then decodes the bytes as usual.
    """
    for marker, start, end in _header_spans(data):
        body = data[start + 4 : end]
        if marker == _COM and body.startswith(CHECK_TAG):
            digest = body[len(CHECK_TAG) :].split(b" ", 1)[0].removeprefix(b"sha256=")
            if body[len(CHECK_TAG) :] != _stamp(digest.decode("ascii", "replace"), min_pixel_std):
                return False
            rest = hashlib.sha256(data[:start])
            rest.update(data[end:])
            return rest.hexdigest().encode("ascii") == digest
    return False


def _stamp(digest: str, min_pixel_std: float) -> bytes:
    return f"sha256={digest} min_pixel_std={float(min_pixel_std)!r}".encode("ascii")


def _with_comment(data: bytes, payload: bytes) -> bytes:
    """``data`` with a comment segment holding ``payload`` after the JFIF header, if a JPEG."""
    if len(payload) > 0xFFFF - 2:
        raise ValueError(f"comment too long for a JPEG segment ({len(payload)} bytes)")
    if not data.startswith(JPEG_MAGIC):
        return data
    at = 2
    if len(data) >= 6 and data[3] == _APP0:
        at = 4 + int.from_bytes(data[4:6], "big")
    segment = bytes((0xFF, _COM)) + struct.pack(">H", len(payload) + 2) + payload
    return data[:at] + segment + data[at:]


def _frame_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the JPEG frame header, or None if there is none to read."""
    for marker, body in _header_segments(data):
        if marker in _SOF and len(body) >= 5:
            return int.from_bytes(body[3:5], "big"), int.from_bytes(body[1:3], "big")
    return None


def _header_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(marker, body)`` of each JPEG segment before the image data; stops at anything odd."""
    for marker, start, end in _header_spans(data):
        yield marker, data[start + 4 : end]


def _header_spans(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(marker, start, end)`` of each JPEG segment before the image data (``data[start:end]``
    is the whole segment, marker included); stops at anything odd."""
    if not data.startswith(JPEG_MAGIC):
        return
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (_SOS, _EOI):
            return
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if length < 2:
            return
        yield marker, at, at + 2 + length
        at += 2 + length


def cutout_path(cutouts_dir: Path, objid: int) -> Path:
    """Where the cutout of ``objid`` lives: one JPEG per object, named by its 64-bit id."""
    return Path(cutouts_dir) / f"{int(objid)}.jpg"
