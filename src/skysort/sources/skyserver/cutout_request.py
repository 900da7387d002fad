"""ImgCutout's request: the getjpeg endpoint, its query parameters, its limits, its fingerprint."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from skysort.config import Cutouts, Data, SkyServerSource

# ImgCutout's documented limits (getjpeg): outside them the service errors or clips.
SIZE_LIMITS = (64, 2048)
SCALE_LIMITS = (0.015, 60.0)
RA_LIMITS = (0.0, 360.0)
DEC_LIMITS = (-90.0, 90.0)


@dataclass(frozen=True)
class CutoutRequest:
    """What every cutout request of one run shares: endpoint, fingerprint, size, blank limit."""

    url: str
    fingerprint: str
    size: int
    min_pixel_std: float


def cutout_url(skyserver: SkyServerSource) -> str:
    """The getjpeg endpoint of the configured server and data release."""
    base = skyserver.base_url.rstrip("/")
    return f"{base}/dr{skyserver.data_release}/SkyServerWS/ImgCutout/getjpeg"


def request_fingerprint(data: Data, cutouts: Cutouts, skyserver: SkyServerSource) -> str:
    """What a cutout is fetched under: server (no scheme, no credentials), release, size, scale, opt.

    Recorded in the manifest and inside each file; a file on disk made under another
    fingerprint is fetched again rather than reused.
    """
    parts = urlsplit(skyserver.base_url)
    server = parts.netloc.rpartition("@")[2].lower() + parts.path.rstrip("/")
    return (
        f"skyserver server={server} dr={skyserver.data_release} size={data.image_size} "
        f"scale={float(cutouts.scale)!r} opt={cutouts.opt}"
    )


def cutout_params(ra: float, dec: float, data: Data, cutouts: Cutouts) -> dict[str, str]:
    """Query parameters of one cutout (numbers as ``repr`` of floats: reproducible URLs)."""
    return {
        "ra": repr(float(ra)),
        "dec": repr(float(dec)),
        "scale": repr(float(cutouts.scale)),
        "width": str(int(data.image_size)),
        "height": str(int(data.image_size)),
        "opt": cutouts.opt,
    }


def service_problem(data: Data, cutouts: Cutouts) -> str | None:
    """Why the image size or scale is outside ImgCutout's limits, or None."""
    size, scale = data.image_size, cutouts.scale
    if not SIZE_LIMITS[0] <= size <= SIZE_LIMITS[1]:
        return (
            f"out_of_range: data.image_size {size} outside ImgCutout's width/height "
            f"limits {list(SIZE_LIMITS)}"
        )
    if not (math.isfinite(scale) and SCALE_LIMITS[0] <= scale <= SCALE_LIMITS[1]):
        return (
            f"out_of_range: cutouts.scale {scale} outside ImgCutout's limits {list(SCALE_LIMITS)}"
        )
    if not re.fullmatch(r"[A-Z]*", cutouts.opt):
        return f"out_of_range: cutouts.opt {cutouts.opt!r} must be upper-case option letters"
    return None


def position_problem(ra: float, dec: float) -> str | None:
    """Why a position is outside ImgCutout's limits, or None."""
    if not (math.isfinite(ra) and RA_LIMITS[0] <= ra <= RA_LIMITS[1]):
        return f"out_of_range: ra {ra} outside ImgCutout's limits {list(RA_LIMITS)}"
    if not (math.isfinite(dec) and DEC_LIMITS[0] <= dec <= DEC_LIMITS[1]):
        return f"out_of_range: dec {dec} outside ImgCutout's limits {list(DEC_LIMITS)}"
    return None
