"""Small PNG thumbnails of the run's pictures, embedded in Markdown artifacts as data URIs.

Every artifact is a row in the Prefect server's database, kept with the run: the
pictures are shrunk to at most :data:`MAX_SIDE` pixels a side and :data:`MAX_BYTES`
bytes each, so a run's artifacts stay a few hundred kilobytes.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

from PIL import Image

log = logging.getLogger("skysort.tasks.thumbnails")

MAX_SIDE = 480
"""Largest width and height of a thumbnail, in pixels."""
MAX_BYTES = 60_000
"""Largest PNG file of a thumbnail (its data URI is a third longer)."""
_SMALLEST_SIDE = 32  # below this a picture shows nothing: give up rather than embed it


def thumbnail_png(path: Path, max_side: int = MAX_SIDE, max_bytes: int = MAX_BYTES) -> bytes | None:
    """``path`` as a PNG no larger than ``max_side`` a side and ``max_bytes``; None if unreadable.

    Shrinks to fit the box, then, while too big: 256 colours (plots lose nothing
    visible), then 3/4 of the size, again and again.
    """
    try:
        with Image.open(path) as src:
            picture = _on_white(src)
    except (OSError, Image.DecompressionBombError) as exc:
        log.warning("no thumbnail of %s: %s", path, exc)
        return None
    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    data = _png(picture)
    while len(data) > max_bytes:
        data = _png(picture.quantize(colors=256))
        if len(data) <= max_bytes:
            break
        width, height = picture.size
        if min(width, height) * 3 // 4 < _SMALLEST_SIDE:
            log.warning(
                "no thumbnail of %s: still over %d bytes at %s", path, max_bytes, picture.size
            )
            return None
        picture = picture.resize((width * 3 // 4, height * 3 // 4), Image.Resampling.LANCZOS)
        data = _png(picture)
    return data


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of ``png``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _on_white(src: Image.Image) -> Image.Image:
    """An RGB copy of ``src``, transparent parts on white (as they look on the page)."""
    rgba = src.convert("RGBA")
    page = Image.new("RGB", rgba.size, "white")
    page.paste(rgba, mask=rgba.getchannel("A"))
    return page


def _png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return out.getvalue()
