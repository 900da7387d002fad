"""The ``skyserver`` catalog source: SDSS spectroscopic objects through astroquery's SQL search.

Three separable steps, only the middle one touching the network:

1. :func:`~skysort.sources.skyserver.sql_build.build_sql` turns the typed query
   into SQL from a fixed template. Only validated numbers and allow-listed names
   are inserted, so no parameter can change the statement, and the text never
   contains ``--`` (SkyServer and astroquery cut each SQL line at ``--``).
2. :func:`~skysort.sources.skyserver.sql_send.send_sql` runs it with
   ``astroquery.sdss.SDSSClass.query_sql_async`` against
   ``source.skyserver.base_url`` (a mirror or a loopback test server works) and
   returns the raw HTTP response.
3. :func:`~skysort.sources.skyserver.sql_response.parse_response` /
   :func:`~skysort.sources.skyserver.sql_catalog.to_catalog` turn SkyServer's CSV
   into the catalog contract. A body is the server's error only when it is not a CSV
   result (a CSV cell may well say ``error_message``). Object ids are read as text,
   accepted only as plain ASCII digits (Python's ``int`` would also take
   ``1_000``, full-width digits and signs) and never pass through a float; other
   integer columns of a user's SQL stay exact too, as nullable integers.

Credentials in ``source.skyserver.base_url`` (``https://user:pw@host``) are sent,
and never written to the provenance, a log line or an error message.

Paging: SkyServer caps a search at 500,000 rows and 600 s, so a large sample is
fetched in pages of ``source.skyserver.max_rows_per_request`` rows with keyset
pagination (``WHERE <cursor> > last ORDER BY <cursor>``), which stays correct
however many pages there are, unlike ``OFFSET``.

Random sampling (``query.random_sample``): ``NEWID()`` would give a different
sample on every run and cannot be paged. Instead the rows are ordered by a
deterministic pseudo-random key computed from the object id,
``((objid % 1000003) * 618034) % 1000003`` (a permutation of the residues modulo a
prime; consecutive ids land far apart), with the object id breaking ties. TOP N
in that order is a reproducible sample spread over the whole query box, and the
cursor is still just the last object id (its key is a function of it). The cost
is a sort of the whole filtered join on the server; with ``random_sample: false``
rows come in object-id order (the index order: faster, but clustered by imaging
run).

Etiquette: SkyServer allows 60 queries per minute; pages are at least
``source.skyserver.min_query_interval_s`` apart.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from pathlib import Path

import pandas as pd

from skysort.config import Data, Query, SkyServerSource
from skysort.sources.skyserver.sql_build import build_sql
from skysort.sources.skyserver.sql_catalog import REQUIRED_COLUMNS as REQUIRED_COLUMNS  # re-export
from skysort.sources.skyserver.sql_catalog import last_objid, to_catalog
from skysort.sources.skyserver.sql_errors import SkyServerError
from skysort.sources.skyserver.sql_response import parse_response
from skysort.sources.skyserver.sql_send import send_sql
from skysort.sources.urls import redact_text as redact

log = logging.getLogger(__name__)


def provenance_text(skyserver: SkyServerSource, now: dt.datetime | None = None) -> str:
    """Where and when the catalog came from, e.g. ``skyserver DR17 https://... 2025-01-31``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"skyserver DR{skyserver.data_release} {redact(skyserver.base_url)} {now:%Y-%m-%d}"


def run_search(sql: str, skyserver: SkyServerSource) -> pd.DataFrame:
    """Send one SQL search and parse its answer (a server's error text becomes an exception)."""
    response = send_sql(sql, skyserver)
    return parse_response(response.status_code, response.text, url=response.url)


def pace(last_sent: float, skyserver: SkyServerSource) -> float:
    """Wait until ``min_query_interval_s`` has passed since ``last_sent``; the time now."""
    wait = last_sent + skyserver.min_query_interval_s - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    return time.monotonic()


def query_catalog(
    query: Query, data: Data, skyserver: SkyServerSource, zoo: bool = False
) -> pd.DataFrame:
    """Query SkyServer for up to ``query.n_objects`` objects; a catalog DataFrame.

    With ``query.sql_file`` that file's SQL runs once, as written (it must select the
    :data:`REQUIRED_COLUMNS`). Otherwise :func:`build_sql` pages through the result,
    ``source.skyserver.max_rows_per_request`` rows at a time, at least
    ``source.skyserver.min_query_interval_s`` apart (SkyServer's 60 queries per minute).
    """
    provenance = provenance_text(skyserver)
    if query.sql_file is not None:
        path = Path(query.sql_file)
        try:
            sql = path.read_text()
        except OSError as exc:
            raise SkyServerError(f"cannot read query.sql_file {path}: {exc}") from exc
        log.info("running the SQL of %s on %s", path, redact(skyserver.base_url))
        raw = run_search(sql, skyserver)
        if raw.empty:
            raise SkyServerError(
                f"the query in {path} returned no rows; widen its conditions or check "
                "source.skyserver.data_release"
            )
        catalog = to_catalog(raw, data, f"{provenance} sql_file={path.name}")
    else:
        catalog = _paged_catalog(query, data, skyserver, provenance, zoo)
    if catalog.empty:
        raise SkyServerError(
            "no rows left after dropping classes outside data.classes; check data.classes"
        )
    counts = catalog["class"].fillna("unknown").value_counts().to_dict()
    log.info("SkyServer catalog: %d objects %s (%s)", len(catalog), counts, provenance)
    return catalog


def _paged_catalog(
    query: Query,
    data: Data,
    skyserver: SkyServerSource,
    provenance: str,
    zoo: bool = False,
) -> pd.DataFrame:
    pages: list[pd.DataFrame] = []
    remaining = query.n_objects
    after: int | None = None
    last_sent = -math.inf
    while remaining > 0:
        top = min(skyserver.max_rows_per_request, remaining)
        last_sent = pace(last_sent, skyserver)
        raw = run_search(build_sql(query, data, top, after, zoo), skyserver)
        log.info("SkyServer page %d: %d rows (asked for %d)", len(pages) + 1, len(raw), top)
        if raw.empty:
            break
        page = to_catalog(raw, data, provenance)
        # The cursor is the last row the server sent, before any row is dropped here.
        cursor = last_objid(raw)
        if after is not None and cursor == after:
            raise SkyServerError("SkyServer ignored the paging cursor (the same page came twice)")
        pages.append(page)
        remaining -= len(page)
        if len(raw) < top:
            break
        after = cursor
    if not pages:
        raise SkyServerError(
            "the query returned no rows; widen query.ra_min/ra_max, query.dec_min/dec_max or "
            f"query.r_min/r_max (now ra {query.ra_min}..{query.ra_max}, dec {query.dec_min}.."
            f"{query.dec_max}, r {query.r_min}..{query.r_max}) or check "
            f"source.skyserver.data_release ({skyserver.data_release})"
        )
    catalog = pd.concat(pages, ignore_index=True)
    if catalog["objid"].duplicated().any():
        raise SkyServerError("SkyServer returned an object twice across pages; paging is broken")
    return catalog
