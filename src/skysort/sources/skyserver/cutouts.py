"""The ``skyserver`` cutout source: one JPEG per object from SkyServer's ImgCutout service.

Network faults are normal here, so every object ends with a final status in the
manifest (``ok`` / ``missing`` / ``error`` with the reason) instead of failing the run:

- bounded retries (``cutouts.retries``) with exponential backoff from
  ``cutouts.backoff_s`` and jitter, on 5xx, 429, timeouts, connection resets,
  truncated bodies and bodies that are not a JPEG (an HTML error page sent with
  status 200, say);
- 429 / 503 slow everyone down: all workers pause for ``Retry-After`` (capped at
  ``cutouts.max_retry_after_s``, and never shorter than the backoff itself, so that
  ``Retry-After: 0`` cannot turn it off) and the number of requests in flight is
  halved, then grows back by one per run of successes;
- each request has a per-read timeout (``cutouts.timeout_s``), a deadline for the
  whole answer (``cutouts.deadline_s``: a body that trickles in is cut off) and a
  cap on the body (:data:`skysort.data.images.MAX_IMAGE_BYTES`);
- a 404 or another 4xx is final (``missing``); so are answers a retry would only
  repeat (``error``): a blank image, one flatter than ``clean.min_pixel_std``
  (outside the survey footprint), an image of another size than requested, and one
  over the byte or pixel limits (:data:`FINAL_IMAGE_REASONS`);
- every file is validated with :func:`skysort.data.images.decode_jpeg` and written
  atomically (temp file + rename), so a killed run leaves only complete files,
  plus perhaps ``.NAME.*.tmp`` files, which the next run removes;
- every file carries the fingerprint of its request (:func:`request_fingerprint`:
  server without credentials, data release, size, scale, options), and so does its
  manifest row;
- resume: a file on disk that decodes, is not blank, has the requested size and was
  made under this run's fingerprint is never fetched again (status ``ok``, 0
  attempts); one made under another request is fetched again.

Credentials in ``source.skyserver.base_url`` (``https://user:pw@host``) are sent to
the server, and never written to the manifest, a log line or an error message.

Etiquette: SkyServer is a shared public service (its SQL search allows 60 queries a
minute). Keep ``cutouts.concurrency`` modest (the default 8 is plenty); the
slow-down above reacts when the server says it is overloaded.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import logging
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import requests
import urllib3
from requests.adapters import HTTPAdapter

from skysort.config import Cutouts, Data, SkyServerSource
from skysort.data import atomic
from skysort.data.images import (
    MAX_IMAGE_BYTES,
    BadImage,
    cutout_path,
    decode_jpeg,
    read_fingerprint,
    with_fingerprint,
)
from skysort.data.schema import MANIFEST_COLUMNS, conform
from skysort.pipeline.progress import Progress
from skysort.sources.urls import redact_text as redact

log = logging.getLogger(__name__)


MAX_BACKOFF_S = 60.0
"""Longest backoff between two attempts of one object."""
SLOW_DOWN_STATUSES = frozenset({429, 503})
RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
# ImgCutout's documented limits (getjpeg): outside them the service errors or clips.
SIZE_LIMITS = (64, 2048)
SCALE_LIMITS = (0.015, 60.0)
RA_LIMITS = (0.0, 360.0)
DEC_LIMITS = (-90.0, 90.0)
FINAL_IMAGE_REASONS = frozenset({"blank_image", "wrong_size", "oversized_image"})
"""What a retry would only repeat: the object ends with ``error`` after one attempt."""
_TEMP_FILE = re.compile(r"^\..+\.tmp[^/]*$")
_READ_BYTES = 64 * 1024
_ERROR_BODY_BYTES = 64 * 1024  # enough of an error page to quote it


@dataclass(frozen=True)
class Outcome:
    """What happened to one object; one manifest row."""

    status: str  # ok / missing / error
    nbytes: int = 0
    sha256: str = ""
    attempts: int = 0
    error: str = ""

    def row(self, objid: int, fingerprint: str) -> tuple[int, str, int, str, int, str, str]:
        return (
            objid,
            self.status,
            self.nbytes,
            self.sha256,
            self.attempts,
            self.error,
            fingerprint,
        )


@dataclass(frozen=True)
class CutoutRequest:
    """What every cutout request of one run shares: endpoint, fingerprint, size, blank limit."""

    url: str
    fingerprint: str
    size: int
    min_pixel_std: float


class _Stopped(Exception):
    """The run is being interrupted; the worker gives up without a result."""


class _Oversized(Exception):
    """The body is larger than an image may be; the message is the manifest's reason."""


class _PastDeadline(Exception):
    """The whole answer did not arrive within ``cutouts.deadline_s``."""


class _Throttle:
    """Shared by the workers: caps requests in flight and pauses everyone after a 429 / 503."""

    def __init__(self, limit: int, stop: threading.Event) -> None:
        self._cond = threading.Condition()
        self._max = limit
        self._limit = limit
        self._in_flight = 0
        self._not_before = 0.0
        self._streak = 0
        self._stop = stop

    @property
    def limit(self) -> int:
        return self._limit

    def acquire(self) -> None:
        with self._cond:
            while True:
                if self._stop.is_set():
                    raise _Stopped
                pause = self._not_before - time.monotonic()
                if pause <= 0 and self._in_flight < self._limit:
                    self._in_flight += 1
                    return
                self._cond.wait(min(pause, 0.25) if pause > 0 else 0.25)

    def release(self, slow_down_s: float | None = None) -> None:
        with self._cond:
            self._in_flight -= 1
            if slow_down_s is not None:
                self._limit = max(1, self._limit // 2)
                self._streak = 0
                self._not_before = max(self._not_before, time.monotonic() + slow_down_s)
                log.info(
                    "server asked to slow down: pausing %.2f s, %d request(s) in flight at most",
                    slow_down_s,
                    self._limit,
                )
            else:
                self._streak += 1
                if self._limit < self._max and self._streak >= 4 * self._limit:
                    self._limit += 1
                    self._streak = 0
            self._cond.notify_all()


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


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


def remove_temp_files(cutouts_dir: Path) -> int:
    """Delete temp files a killed run left behind (``.NAME.*.tmp``); how many."""
    removed = 0
    for path in Path(cutouts_dir).iterdir():
        if _TEMP_FILE.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d temp file(s) left by an interrupted run in %s", removed, cutouts_dir)
    return removed


def existing_outcome(path: Path, request: CutoutRequest) -> tuple[Outcome | None, str]:
    """Resume: an ``ok`` outcome for a valid file already on disk, or None and why not.

    Valid: not over the byte limit, decodes, not blank, of the requested size, and
    made under the same request fingerprint. The reason is empty when there is no file.
    """
    try:
        nbytes = path.stat().st_size
    except FileNotFoundError:
        return None, ""
    if nbytes > MAX_IMAGE_BYTES:
        return None, f"oversized_image: {nbytes} bytes"
    try:
        body = path.read_bytes()
        decode_jpeg(body, min_pixel_std=request.min_pixel_std, exact_size=request.size)
    except FileNotFoundError:
        return None, ""
    except BadImage as exc:
        return None, str(exc)
    made_under = read_fingerprint(body)
    if made_under != request.fingerprint:
        return None, f"other_request: made under {made_under or 'an unrecorded request'}"
    return Outcome("ok", len(body), hashlib.sha256(body).hexdigest(), 0, ""), ""


def _backoff(base_s: float, attempt: int) -> float:
    """Exponential backoff from ``base_s`` with jitter (×1–1.5), so workers do not retry in step.

    Never below ``base_s`` (``cutouts.backoff_s``, the floor) nor above :data:`MAX_BACKOFF_S`.
    """
    return min(MAX_BACKOFF_S, base_s * 2 ** (attempt - 1) * random.uniform(1.0, 1.5))


def _slow_down_s(retry_after: str | None, cutouts: Cutouts, attempt: int) -> float:
    """How long everyone pauses after a 429 / 503.

    The server's ``Retry-After`` capped at ``cutouts.max_retry_after_s``, but never
    shorter than the backoff itself: ``Retry-After: 0`` or a cap of 0 must not turn
    the backoff off.
    """
    own = _backoff(cutouts.backoff_s, attempt)
    asked = retry_after_seconds(retry_after)
    if asked is None:
        return own
    return max(own, min(asked, cutouts.max_retry_after_s))


def _get(
    session: requests.Session, url: str, params: dict[str, str], cutouts: Cutouts
) -> tuple[int, bytes, str | None]:
    """One GET: its status, its body and its ``Retry-After`` header.

    The body is read within the deadline (``cutouts.deadline_s``, from sending the
    request to the last byte) and, for a 200, up to :data:`MAX_IMAGE_BYTES`
    (:class:`_Oversized` beyond); an error page is cut to its first bytes.
    """
    deadline = time.monotonic() + cutouts.deadline_s
    with session.get(url, params=params, timeout=cutouts.timeout_s, stream=True) as response:
        status = response.status_code
        limit = MAX_IMAGE_BYTES if status == 200 else _ERROR_BODY_BYTES
        declared = response.headers.get("Content-Length", "")
        if status == 200 and re.fullmatch(r"[0-9]+", declared) and int(declared) > limit:
            raise _Oversized(
                f"oversized_image: response body of {declared} bytes, more than {limit} "
                "(images.MAX_IMAGE_BYTES)"
            )
        # read1 returns what one read of the socket brings (each waits at most timeout_s),
        # so the deadline is checked between reads however slowly the body trickles in.
        read = getattr(response.raw, "read1", None) or response.raw.read
        body = bytearray()
        while True:
            if time.monotonic() > deadline:
                raise _PastDeadline
            chunk = read(_READ_BYTES, decode_content=True)
            if not chunk:
                break
            body += chunk
            if len(body) > limit:
                if status == 200:
                    raise _Oversized(
                        f"oversized_image: response body over {limit} bytes "
                        "(images.MAX_IMAGE_BYTES)"
                    )
                del body[limit:]
                break
        return status, bytes(body), response.headers.get("Retry-After")


def _fetch_one(
    session: requests.Session,
    request: CutoutRequest,
    params: dict[str, str],
    path: Path,
    cutouts: Cutouts,
    throttle: _Throttle,
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
            status, body, retry_after = _get(session, request.url, params, cutouts)
        except _Oversized as exc:
            final = str(exc)
        except _PastDeadline:
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
            slow_down = _slow_down_s(retry_after, cutouts, attempt)
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
                    stored = with_fingerprint(body, request.fingerprint)
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
        if retry_later and stop.wait(_backoff(cutouts.backoff_s, attempt)):
            raise _Stopped
    return Outcome("error", 0, "", attempts, f"{reason} (gave up after {attempts} attempt(s))")


def _short(value: object, limit: int = 160) -> str:
    text = re.sub(r"<[^>]+>", " ", redact(str(value)))
    text = re.sub(r"\s+", " ", text).strip()
    return text[:limit]


def _make_session(pool: int) -> requests.Session:
    """A session whose connection pool holds one connection per worker; no hidden retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "skysort (SDSS cutout fetcher; python-requests)"
    return session


def _bounded(
    executor: ThreadPoolExecutor, jobs: Iterator[tuple[int, Callable[[], Outcome]]], window: int
) -> Iterator[tuple[int, Outcome]]:
    """Run jobs keeping at most ``window`` submitted at once (a million futures is too many)."""
    pending: dict[Future[Outcome], int] = {}
    for pos, job in jobs:
        pending[executor.submit(job)] = pos
        if len(pending) >= window:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield pending.pop(future), future.result()


def fetch_cutouts(
    catalog: pd.DataFrame,
    cutouts_dir: Path,
    *,
    data: Data,
    cutouts: Cutouts,
    skyserver: SkyServerSource,
    min_pixel_std: float,
    progress: Progress | None = None,
    remove_temp: bool = True,
) -> pd.DataFrame:
    """Fetch every object's cutout into ``cutouts_dir``; the manifest, in catalog order.

    ``min_pixel_std`` is ``clean.min_pixel_std``: a flatter image is blank, so the
    fetcher and the clean stage agree on what a usable cutout is.
    ``progress(done, total)`` is called every few objects and at the end (from the
    calling thread; an exception it raises, such as KeyboardInterrupt, stops the
    run after the requests in flight finish, leaving only complete files).
    ``remove_temp=False`` leaves other ``.NAME.*.tmp`` files alone: shards of one
    run fetch into the same folder at once, and one must not delete another's.
    """
    cutouts_dir = Path(cutouts_dir)
    cutouts_dir.mkdir(parents=True, exist_ok=True)
    if remove_temp:
        remove_temp_files(cutouts_dir)
    started = time.monotonic()
    objids = [int(x) for x in catalog["objid"]]
    ras = catalog["ra"].astype(float).tolist()
    decs = catalog["dec"].astype(float).tolist()
    request = CutoutRequest(
        cutout_url(skyserver),
        request_fingerprint(data, cutouts, skyserver),
        data.image_size,
        min_pixel_std,
    )
    outcomes, todo = plan_fetch(objids, ras, decs, cutouts_dir, data, cutouts, request)
    reporter = _Reporter(progress, len(objids), done=len(objids) - len(todo))
    if todo:
        log.info(
            "fetching %d cutout(s) (%d already on disk) from %s, %d in flight",
            len(todo),
            len(objids) - len(todo),
            redact(request.url),
            cutouts.concurrency,
        )
        targets = (
            (
                pos,
                cutout_params(ras[pos], decs[pos], data, cutouts),
                cutout_path(cutouts_dir, objids[pos]),
            )
            for pos in todo
        )

        def record(pos: int, outcome: Outcome) -> None:
            outcomes[pos] = outcome
            reporter.advance()

        _fetch_all(targets, request, cutouts, record)
    reporter.finish()
    manifest = manifest_rows(objids, outcomes, request.fingerprint)
    resumed = sum(1 for o in outcomes if o is not None and o.status == "ok" and o.attempts == 0)
    _log_summary(manifest, time.monotonic() - started, resumed=resumed)
    log.info("cutouts were requested as: %s", request.fingerprint)
    return manifest


def plan_fetch(
    objids: list[int],
    ras: list[float],
    decs: list[float],
    cutouts_dir: Path,
    data: Data,
    cutouts: Cutouts,
    request: CutoutRequest,
) -> tuple[list[Outcome | None], list[int]]:
    """What is settled without a request, and the positions left to fetch.

    Settled: an object outside the service's limits (``error``, 0 attempts) and a
    valid file already on disk made under this request (resume: ``ok``, 0 attempts);
    the rest stay None.
    """
    outcomes: list[Outcome | None] = [None] * len(objids)
    global_problem = service_problem(data, cutouts)
    todo: list[int] = []
    replaced: Counter[str] = Counter()
    for pos, objid in enumerate(objids):
        problem = global_problem or position_problem(ras[pos], decs[pos])
        if problem:
            outcomes[pos] = Outcome("error", 0, "", 0, problem)
            continue
        path = cutout_path(cutouts_dir, objid)
        found, why_not = existing_outcome(path, request)
        if found is not None:
            outcomes[pos] = found
            continue
        todo.append(pos)
        if why_not:
            log.debug("fetching %s again: %s", path.name, why_not)
            replaced[why_not.split(":", 1)[0]] += 1
    if global_problem:
        log.error("no cutout requested: %s", global_problem)
    if replaced:
        log.info(
            "fetching %d file(s) on disk again %s; this run's request: %s",
            replaced.total(),
            dict(replaced),
            request.fingerprint,
        )
    return outcomes, todo


class _Reporter:
    """Calls ``progress(done, total)`` at the start, every few objects and at the end."""

    def __init__(self, progress: Progress | None, total: int, done: int) -> None:
        self._progress = progress
        self._total = total
        self._step = max(1, min(50, total // 100))
        self._last_reported = -1
        self.done = done
        self._report(done)

    def advance(self) -> None:
        self.done += 1
        if self.done % self._step == 0 or self.done == self._total:
            self._report(self.done)

    def finish(self) -> None:
        if self._last_reported != self._total:
            self._report(self._total)

    def _report(self, done: int) -> None:
        if self._progress is not None:
            self._progress(done, self._total)
            self._last_reported = done


def _fetch_all(
    targets: Iterator[tuple[int, dict[str, str], Path]],
    request: CutoutRequest,
    cutouts: Cutouts,
    on_outcome: Callable[[int, Outcome], None],
) -> None:
    """Fetch ``(position, query parameters, file)`` targets, ``cutouts.concurrency`` at a time.

    Each outcome goes to ``on_outcome`` in the calling thread. An exception there
    (an interrupt) stops the run: requests in flight finish their atomic writes, the
    queue is dropped, and the exception propagates.
    """
    http = _make_session(cutouts.concurrency)
    stop = threading.Event()
    throttle = _Throttle(cutouts.concurrency, stop)

    def job(params: dict[str, str], path: Path) -> Callable[[], Outcome]:
        return lambda: _fetch_one(http, request, params, path, cutouts, throttle, stop)

    executor = ThreadPoolExecutor(cutouts.concurrency, thread_name_prefix="cutout")
    try:
        jobs = ((pos, job(params, path)) for pos, params, path in targets)
        for pos, outcome in _bounded(executor, jobs, 2 * cutouts.concurrency):
            on_outcome(pos, outcome)
    except BaseException:
        # Let requests in flight finish their atomic writes; drop the rest.
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        executor.shutdown(wait=True)
        http.close()


def manifest_rows(
    objids: list[int], outcomes: list[Outcome | None], fingerprint: str
) -> pd.DataFrame:
    """The manifest: one row per object with an outcome, in catalog order."""
    rows = [
        outcome.row(objid, fingerprint)
        for objid, outcome in zip(objids, outcomes)
        if outcome is not None
    ]
    return conform(pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)), MANIFEST_COLUMNS)


def _log_summary(manifest: pd.DataFrame, elapsed_s: float, resumed: int) -> None:
    status = Counter(manifest["status"].tolist())
    reasons = Counter(
        str(e).split(":", 1)[0] for e in manifest.loc[manifest["status"] != "ok", "error"]
    )
    log.info(
        "cutouts: %d ok (%d already on disk), %d missing, %d error in %.1f s; %d request(s), "
        "%d bytes; reasons %s",
        status.get("ok", 0),
        resumed,
        status.get("missing", 0),
        status.get("error", 0),
        elapsed_s,
        int(manifest["attempts"].sum()),
        int(manifest["bytes"].sum()),
        dict(reasons),
    )
