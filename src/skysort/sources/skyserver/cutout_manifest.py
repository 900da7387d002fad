"""The cutout fetcher's bookkeeping: outcomes, the manifest, resume from disk, temp-file clean-up."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from skysort.config import Cutouts, Data
from skysort.data.images import (
    MAX_IMAGE_BYTES,
    BadImage,
    cutout_path,
    decode_jpeg,
    has_check_stamp,
    read_fingerprint,
)
from skysort.data.schema import MANIFEST_COLUMNS, conform
from skysort.sources.skyserver.cutout_request import (
    CutoutRequest,
    position_problem,
    service_problem,
)

log = logging.getLogger(__name__)

_TEMP_FILE = re.compile(r"^\..+\.tmp[^/]*$")


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

    Valid: not over the byte limit, made under the same request fingerprint, and
    either stamped by the fetcher as checked under this run's blank limit and unchanged
    since (:func:`skysort.data.images.has_check_stamp`: one hash, no decoding), or, for
    a file without a matching stamp, decoding, not blank and of the requested size.
    The reason is empty when there is no file.
    """
    try:
        with open(path, "rb") as f:
            body = f.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        return None, ""
    if len(body) > MAX_IMAGE_BYTES:
        return None, f"oversized_image: more than {MAX_IMAGE_BYTES} bytes"
    made_under = read_fingerprint(body)
    if made_under != request.fingerprint:
        # A bad file is reported as such before the question of its request.
        try:
            decode_jpeg(body, min_pixel_std=request.min_pixel_std, exact_size=request.size)
        except BadImage as exc:
            return None, str(exc)
        return None, f"other_request: made under {made_under or 'an unrecorded request'}"
    if not has_check_stamp(body, request.min_pixel_std):
        try:
            decode_jpeg(body, min_pixel_std=request.min_pixel_std, exact_size=request.size)
        except BadImage as exc:
            return None, str(exc)
    return Outcome("ok", len(body), hashlib.sha256(body).hexdigest(), 0, ""), ""


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
