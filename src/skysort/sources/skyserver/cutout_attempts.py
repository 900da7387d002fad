"""One object's attempts: GET, validate, write atomically, retry until a final :class:`Outcome`."""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path

import requests
import urllib3

from skysort.config import Cutouts
from skysort.data import atomic
from skysort.data.images import BadImage, decode_jpeg, with_check_stamp, with_fingerprint
from skysort.sources.skyserver.cutout_http import (
    CutoutClient,
    Oversized,
    PastDeadline,
    get_cutout,
)
from skysort.sources.skyserver.cutout_manifest import Outcome
from skysort.sources.skyserver.cutout_request import CutoutRequest
from skysort.sources.skyserver.cutout_retry import (
    RETRY_STATUSES,
    SLOW_DOWN_STATUSES,
    Stopped,
    Throttle,
    backoff,
    slow_down_s,
)
from skysort.sources.urls import redact_text as redact

FINAL_IMAGE_REASONS = frozenset({"blank_image", "wrong_size", "oversized_image"})
"""What a retry would only repeat: the object ends with ``error`` after one attempt."""


def fetch_one(
    client: CutoutClient,
    request: CutoutRequest,
    params: dict[str, str],
    path: Path,
    cutouts: Cutouts,
    throttle: Throttle,
    stop: threading.Event,
) -> Outcome:
    """Fetch, validate and write one cutout, retrying what may succeed next time."""
    reason = "not_attempted: no request was made"
    attempts = 0
    for attempt in range(1, cutouts.retries + 2):
        throttle.acquire()
        attempts = attempt
        slow_down: float | None = None
        status: int | None = None
        body, retry_after, final = b"", None, ""
        try:
            status, body, retry_after = get_cutout(client, params, cutouts)
        except Oversized as exc:
            final = str(exc)
        except PastDeadline:
            reason = f"timeout: body not complete within cutouts.deadline_s={cutouts.deadline_s} s"
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            reason = f"timeout: no answer within cutouts.timeout_s={cutouts.timeout_s} s"
        except (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError) as exc:
            reason = f"truncated_body: connection broken mid-body ({_short(exc)})"
        except requests.ConnectionError as exc:
            reason = f"connection_error: {_short(exc)}"
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            reason = f"request_error: {_short(exc)}"
        if status in SLOW_DOWN_STATUSES:
            slow_down = slow_down_s(retry_after, cutouts, attempt)
        throttle.release(slow_down)
        if final:
            return Outcome("error", 0, "", attempts, final)

        if status is not None:
            if status == 200:
                try:
                    decode_jpeg(body, min_pixel_std=request.min_pixel_std, exact_size=request.size)
                except BadImage as exc:
                    if exc.reason in FINAL_IMAGE_REASONS:
                        return Outcome("error", 0, "", attempts, str(exc))
                    reason = str(exc)
                else:
                    stored = stored_cutout(body, request.fingerprint, request.min_pixel_std)
                    atomic.write_bytes(path, stored)
                    return Outcome("ok", len(stored), hashlib.sha256(stored).hexdigest(), attempts)
            elif status == 404:
                return Outcome("missing", 0, "", attempts, "not_found: HTTP 404 from ImgCutout")
            elif status not in RETRY_STATUSES:
                detail = _short(body.decode("latin-1", errors="replace"))
                return Outcome("missing", 0, "", attempts, f"http_{status}: {detail}")
            else:
                kind = "rate_limited" if status in SLOW_DOWN_STATUSES else "server_error"
                reason = f"{kind}: HTTP {status}"
        # After a slow-down the throttle already holds everyone back: no extra sleep.
        retry_later = attempt <= cutouts.retries and slow_down is None
        if retry_later and stop.wait(backoff(cutouts.backoff_s, attempt)):
            raise Stopped
    return Outcome("error", 0, "", attempts, f"{reason} (gave up after {attempts} attempt(s))")


def stored_cutout(body: bytes, fingerprint: str, min_pixel_std: float) -> bytes:
    """The file written for a checked answer: its request's fingerprint, then the check stamp.

    The stamp (:func:`skysort.data.images.with_check_stamp`) lets a resumed run trust
    the file without decoding it again while it stays byte for byte the same.
    """
    return with_check_stamp(with_fingerprint(body, fingerprint), min_pixel_std)


def _short(value: object, limit: int = 160) -> str:
    text = re.sub(r"<[^>]+>", " ", redact(str(value)))
    text = re.sub(r"\s+", " ", text).strip()
    return text[:limit]
