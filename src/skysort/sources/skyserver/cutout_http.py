"""One ImgCutout GET: a pooled session, the answer read within a deadline and a size cap.

Every request of a run goes to one endpoint, hundreds a second, so what requests
would work out again for each (the environment's proxies, CA bundle and ``.netrc``
credentials; the prepared request's headers and authentication) is worked out once
per run in a :class:`CutoutClient`; each GET copies the prepared request and sets its
query string. What goes over the wire is what ``session.get(url, params=...)`` sends,
except cookies the server sets along the way, which are not sent back (ImgCutout is
a stateless service).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_auth_from_url, get_netrc_auth

from skysort.config import Cutouts
from skysort.data.images import MAX_IMAGE_BYTES

_READ_BYTES = 64 * 1024
_ERROR_BODY_BYTES = 64 * 1024  # enough of an error page to quote it


class Oversized(Exception):
    """The body is larger than an image may be; the message is the manifest's reason."""


class PastDeadline(Exception):
    """The whole answer did not arrive within ``cutouts.deadline_s``."""


@dataclass(frozen=True)
class CutoutClient:
    """One run's HTTP client: a pooled session and the request prepared for its endpoint."""

    session: requests.Session
    template: requests.PreparedRequest
    settings: dict[str, Any]  # proxies, verify, cert: what send() needs besides the request

    def request(self, params: dict[str, str]) -> requests.PreparedRequest:
        """The GET with these query parameters, as ``session.get(url, params=...)`` prepares it."""
        request = self.template.copy()
        request.url = f"{self.template.url}?{urlencode(params)}"
        return request

    def close(self) -> None:
        self.session.close()


def make_client(pool: int, url: str) -> CutoutClient:
    """A client for GETs to ``url`` (the getjpeg endpoint), ``pool`` connections at most."""
    session = make_session(pool, url)
    template = session.prepare_request(requests.Request("GET", url))
    settings = {"proxies": session.proxies, "verify": session.verify, "cert": session.cert}
    return CutoutClient(session, template, settings)


def get_cutout(
    client: CutoutClient, params: dict[str, str], cutouts: Cutouts
) -> tuple[int, bytes, str | None]:
    """One GET: its status, its body and its ``Retry-After`` header.

    The body is read within the deadline (``cutouts.deadline_s``, from sending the
    request to the last byte) and, for a 200, up to :data:`MAX_IMAGE_BYTES`
    (:class:`Oversized` beyond); an error page is cut to its first bytes.
    """
    deadline = time.monotonic() + cutouts.deadline_s
    send = client.session.send
    with send(client.request(params), timeout=cutouts.timeout_s, stream=True,
              allow_redirects=True, **client.settings) as response:  # fmt: skip
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


def make_session(pool: int, url: str | None = None) -> requests.Session:
    """A session whose connection pool holds one connection per worker; no hidden retries.

    With ``url`` (the endpoint every request of the run goes to), what requests would
    otherwise look up in the environment on every request (proxies and ``no_proxy``, a
    CA bundle, ``~/.netrc`` credentials) is looked up once, for that URL: a cutout
    fetch sends hundreds of requests a second to one endpoint.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "skysort (SDSS cutout fetcher; python-requests)"
    if url is not None:
        settings = session.merge_environment_settings(url, {}, True, None, None)
        netrc = None if any(get_auth_from_url(url)) else get_netrc_auth(url)
        session.trust_env = False
        session.proxies = settings["proxies"]
        session.verify = settings["verify"]
        if netrc:
            session.auth = netrc
    return session
