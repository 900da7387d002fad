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
  over the byte or pixel limits
  (:data:`skysort.sources.skyserver.cutout_attempts.FINAL_IMAGE_REASONS`);
- every file is validated with :func:`skysort.data.images.decode_jpeg` and written
  atomically (temp file + rename), so a killed run leaves only complete files,
  plus perhaps ``.NAME.*.tmp`` files, which the next run removes;
- every file carries the fingerprint of its request
  (:func:`skysort.sources.skyserver.cutout_request.request_fingerprint`: server
  without credentials, data release, size, scale, options), and so does its
  manifest row;
- resume: a file on disk that decodes, is not blank, has the requested size and was
  made under this run's fingerprint is never fetched again (status ``ok``, 0
  attempts); one made under another request is fetched again. The fetcher stamps
  each file it writes with the SHA-256 of the checked bytes and the blank limit they
  passed (:func:`skysort.data.images.with_check_stamp`): a stamped file that is still
  byte for byte the same, under the same limit, is trusted without decoding it again
  (one hash instead of a decode, so a rerun over 100k files takes seconds); a file
  without a matching stamp is decoded and checked in full. The clean stage decodes
  every file whatever its stamp.

Credentials in ``source.skyserver.base_url`` (``https://user:pw@host``) are sent to
the server, and never written to the manifest, a log line or an error message.

Etiquette: SkyServer is a shared public service (its SQL search allows 60 queries a
minute). Keep ``cutouts.concurrency`` modest (the default 8 is plenty); the
slow-down above reacts when the server says it is overloaded.

Where each part lives: the request (endpoint, parameters, limits, fingerprint) in
``cutout_request``, one GET in ``cutout_http``, the retry policy and throttle in
``cutout_retry``, one object's attempts in ``cutout_attempts``, the manifest and
resume in ``cutout_manifest``; this module runs them over a catalog.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from skysort.config import Cutouts, Data, SkyServerSource
from skysort.data.images import cutout_path
from skysort.pipeline.progress import Progress
from skysort.sources.skyserver.cutout_attempts import fetch_one
from skysort.sources.skyserver.cutout_http import make_client
from skysort.sources.skyserver.cutout_manifest import (
    Outcome,
    manifest_rows,
    plan_fetch,
    remove_temp_files,
)
from skysort.sources.skyserver.cutout_request import (
    CutoutRequest,
    cutout_params,
    cutout_url,
    request_fingerprint,
)
from skysort.sources.skyserver.cutout_retry import Stopped, Throttle
from skysort.sources.urls import redact_text as redact

log = logging.getLogger(__name__)


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

    Each of ``cutouts.concurrency`` worker threads takes the next target, fetches it
    and queues its outcome; the calling thread hands each outcome to ``on_outcome``.
    No future per object, and no waiting on a set of them: the calling thread's share
    of the work (the GIL is one) stays small at hundreds of images a second. An
    exception in ``on_outcome`` (an interrupt) stops the run: requests in flight
    finish their atomic writes, the rest are dropped, and the exception propagates;
    so does an exception raised in a worker.
    """
    http = make_client(cutouts.concurrency, request.url)
    stop = threading.Event()
    throttle = Throttle(cutouts.concurrency, stop)
    take = threading.Lock()
    results: queue.SimpleQueue[tuple[int, Outcome | BaseException] | None] = queue.SimpleQueue()

    def worker() -> None:
        try:
            while not stop.is_set():
                with take:
                    target = next(targets, None)
                if target is None:
                    return
                pos, params, path = target
                try:
                    results.put((pos, fetch_one(http, request, params, path, cutouts, throttle,
                                                stop)))  # fmt: skip
                except Stopped:
                    return
                except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                    results.put((pos, exc))
                    return
        finally:
            results.put(None)  # this worker is done

    workers = [threading.Thread(target=worker, name=f"cutout-{k}")
               for k in range(cutouts.concurrency)]  # fmt: skip
    for thread in workers:
        thread.start()
    try:
        running = len(workers)
        while running:
            item = results.get()
            if item is None:
                running -= 1
                continue
            pos, outcome = item
            if isinstance(outcome, BaseException):
                raise outcome
            on_outcome(pos, outcome)
    finally:
        # Normally every worker is done by now; after an error, those in flight finish
        # their atomic writes and take nothing more.
        stop.set()
        for thread in workers:
            thread.join()
        http.close()


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
