"""One ImgCutout GET: a pooled session, the answer read within a deadline and a size cap."""

from __future__ import annotations

import re
import time

import requests
from requests.adapters import HTTPAdapter

from skysort.config import Cutouts
from skysort.data.images import MAX_IMAGE_BYTES

_READ_BYTES = 64 * 1024
_ERROR_BODY_BYTES = 64 * 1024  # enough of an error page to quote it


class Oversized(Exception):
    """The body is larger than an image may be; the message is the manifest's reason."""


class PastDeadline(Exception):
    """The whole answer did not arrive within ``cutouts.deadline_s``."""


def get_cutout(
    session: requests.Session, url: str, params: dict[str, str], cutouts: Cutouts
) -> tuple[int, bytes, str | None]:
    """One GET: its status, its body and its ``Retry-After`` header.

    The body is read within the deadline (``cutouts.deadline_s``, from sending the
    request to the last byte) and, for a 200, up to :data:`MAX_IMAGE_BYTES`
    (:class:`Oversized` beyond); an error page is cut to its first bytes.
    """
    deadline = time.monotonic() + cutouts.deadline_s
    with session.get(url, params=params, timeout=cutouts.timeout_s, stream=True) as response:
        status = response.status_code
        limit = MAX_IMAGE_BYTES if status == 200 else _ERROR_BODY_BYTES
        declared = response.headers.get("Content-Length", "")
        if status == 200 and re.fullmatch(r"[0-9]+", declared) and int(declared) > limit:
            raise Oversized(
                f"oversized_image: response body of {declared} bytes, more than {limit} "
                "(images.MAX_IMAGE_BYTES)"
            )
        # read1 returns what one read of the socket brings (each waits at most timeout_s),
        # so the deadline is checked between reads however slowly the body trickles in.
        read = getattr(response.raw, "read1", None) or response.raw.read
        body = bytearray()
        while True:
            if time.monotonic() > deadline:
                raise PastDeadline
            chunk = read(_READ_BYTES, decode_content=True)
            if not chunk:
                break
            body += chunk
            if len(body) > limit:
                if status == 200:
                    raise Oversized(
                        f"oversized_image: response body over {limit} bytes "
                        "(images.MAX_IMAGE_BYTES)"
                    )
                del body[limit:]
                break
        return status, bytes(body), response.headers.get("Retry-After")


def make_session(pool: int) -> requests.Session:
    """A session whose connection pool holds one connection per worker; no hidden retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "skysort (SDSS cutout fetcher; python-requests)"
    return session
