"""The ``skyserver`` catalog source: SDSS spectroscopic objects through astroquery's SQL search.

Three separable steps, only the middle one touching the network:

1. :func:`build_sql` turns the typed query into SQL from a fixed template. Only
   validated numbers and allow-listed names are inserted, so no parameter can
   change the statement, and the text never contains ``--`` (SkyServer and
   astroquery cut each SQL line at ``--``).
2. :func:`send_sql` runs it with ``astroquery.sdss.SDSSClass.query_sql_async``
   against ``source.skyserver.base_url`` (a mirror or a loopback test server
   works) and returns the raw HTTP response.
3. :func:`parse_response` / :func:`to_catalog` turn SkyServer's CSV into the
   catalog contract. A body is the server's error only when it is not a CSV
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

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from skysort.config import SDSS_CLASSES, Data, Query, SkyServerSource
from skysort.data.schema import CATALOG_COLUMNS, GALAXY_ZOO_LABELS, MAGNITUDE_COLUMNS, conform
from skysort.pipeline.transient import TransientError
from skysort.sources.urls import redact_text as redact

log = logging.getLogger(__name__)

SAMPLE_MODULUS = 1_000_003
"""Prime modulus of the pseudo-random sample key (keys are 0 .. SAMPLE_MODULUS - 1)."""
SAMPLE_MULTIPLIER = 618_034
"""Multiplier of the sample key: about the golden ratio of the modulus, coprime with it."""
MAGNITUDE_SENTINEL = -9999.0
"""SDSS writes -9999 for a magnitude it could not measure; it becomes NaN here."""
ID_COLUMNS: tuple[str, ...] = ("objid", "specobjid")
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in CATALOG_COLUMNS if c != "provenance")
"""What a result (built-in SQL or ``query.sql_file``) must contain; provenance is added here."""

_SQL_TEMPLATE = """SELECT TOP {top}
    p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z, p.fiberMag_g,
    s.specobjid, s.class, s.z AS redshift, s.zWarning{zoo_columns}
FROM PhotoObj AS p
JOIN SpecObj AS s ON s.bestObjID = p.objid{zoo_join}
WHERE s.class IN ({classes})
    AND p.ra >= {ra_min} AND p.ra <= {ra_max}
    AND p.dec >= {dec_min} AND p.dec <= {dec_max}
    AND p.r >= {r_min} AND p.r <= {r_max}{cursor}
ORDER BY {order}"""
# Multilabel task: Galaxy Zoo 1 vote fractions and vote count (null where GZ has no entry).
_ZOO_COLUMNS = ",\n    zs.nvote, zs.p_el, zs.p_cs, zs.p_edge, zs.p_mg"
_ZOO_JOIN = "\nLEFT JOIN zooSpec AS zs ON zs.specobjid = s.specobjid"
_SAMPLE_KEY_SQL = f"((p.objid % {SAMPLE_MODULUS}) * {SAMPLE_MULTIPLIER}) % {SAMPLE_MODULUS}"
_CLASS_NAME = re.compile(r"^[A-Z]+$")
_MAX_INT64 = 2**63 - 1
_MISSING_TOKENS = frozenset({"", "null", "NULL", "None", "nan", "NaN"})
_ID_TEXT = re.compile(r"[0-9]+")  # ASCII only: \d would take any script's digits
_INTEGER_TEXT = r"[+-]?[0-9]+"
# A CSV header cell: an SQL column name or alias (SkyServer sends them bare), or empty.
_HEADER_CELL = re.compile(r'"?\[?([A-Za-z_@#][A-Za-z0-9_@$#]*)?\]?"?')

# astroquery reads the base URL from a module-level config item; it is set only for
# the duration of one request and restored, and the lock keeps two threads of this
# process from seeing each other's value.
_BASE_URL_LOCK = threading.Lock()


class SkyServerError(RuntimeError):
    """SkyServer could not answer the query; the message says why and which setting to change."""


class SkyServerUnavailable(SkyServerError, TransientError):
    """SkyServer did not answer (network, timeout, 429 or 5xx): trying again later may work."""


def sample_key(objid: int) -> int:
    """The pseudo-random ordering key of an object (same arithmetic as the SQL)."""
    return ((int(objid) % SAMPLE_MODULUS) * SAMPLE_MULTIPLIER) % SAMPLE_MODULUS


def _number(value: object, name: str) -> str:
    """A finite number as SQL text (``repr`` of a float): nothing else can reach the SQL."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return repr(number)


def _integer(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {number}")
    return number


def build_sql(
    query: Query, data: Data, top: int, after_objid: int | None = None, zoo: bool = False
) -> str:
    """SQL for one page of at most ``top`` objects, after ``after_objid`` in the page order.

    The order is the pseudo-random sample key then objid when ``query.random_sample``,
    else objid; either way the last objid of a page is the cursor for the next.
    ``zoo`` (multilabel task) adds Galaxy Zoo's vote fractions from ``zooSpec``.
    """
    top = _integer(top, "top", 1, 500_000)
    classes = tuple(data.classes)
    for name in classes:
        if not isinstance(name, str) or not _CLASS_NAME.match(name) or name not in SDSS_CLASSES:
            raise ValueError(f"class {name!r} is not one of {list(SDSS_CLASSES)}")
    if not classes:
        raise ValueError("data.classes is empty")
    cursor = ""
    if after_objid is not None:
        after = _integer(after_objid, "after_objid", 0, _MAX_INT64)
        if query.random_sample:
            key = sample_key(after)
            cursor = (
                f"\n    AND ({_SAMPLE_KEY_SQL} > {key}"
                f" OR ({_SAMPLE_KEY_SQL} = {key} AND p.objid > {after}))"
            )
        else:
            cursor = f"\n    AND p.objid > {after}"
    sql = _SQL_TEMPLATE.format(
        top=top,
        classes=", ".join(f"'{name}'" for name in classes),
        ra_min=_number(query.ra_min, "query.ra_min"),
        ra_max=_number(query.ra_max, "query.ra_max"),
        dec_min=_number(query.dec_min, "query.dec_min"),
        dec_max=_number(query.dec_max, "query.dec_max"),
        r_min=_number(query.r_min, "query.r_min"),
        r_max=_number(query.r_max, "query.r_max"),
        cursor=cursor,
        zoo_columns=_ZOO_COLUMNS if zoo else "",
        zoo_join=_ZOO_JOIN if zoo else "",
        order=f"{_SAMPLE_KEY_SQL}, p.objid" if query.random_sample else "p.objid",
    )
    if "--" in sql or ";" in sql:  # cannot happen with the checks above; a tripwire
        raise ValueError(f"refusing to send SQL containing '--' or ';': {sql!r}")
    return sql


@contextlib.contextmanager
def _skyserver_base_url(base_url: str) -> Iterator[None]:
    """Point astroquery's SDSS module at ``base_url`` for the duration of the block."""
    from astroquery.sdss import conf

    with _BASE_URL_LOCK, conf.set_temp("skyserver_baseurl", base_url.rstrip("/")):
        yield


def send_sql(sql: str, skyserver: SkyServerSource) -> requests.Response:
    """Run ``sql`` through astroquery (no cache) and return the raw HTTP response.

    Network failures become :class:`SkyServerError` naming the setting to change.
    """
    from astroquery.sdss import SDSSClass

    client = SDSSClass()
    where = redact(skyserver.base_url)
    try:
        with _skyserver_base_url(skyserver.base_url):
            return client.query_sql_async(
                sql,
                timeout=skyserver.timeout_s,
                data_release=skyserver.data_release,
                cache=False,
            )
    except requests.Timeout as exc:
        raise SkyServerUnavailable(
            f"SkyServer at {where} did not answer within {skyserver.timeout_s} s "
            f"({type(exc).__name__}); raise source.skyserver.timeout_s or lower "
            "source.skyserver.max_rows_per_request / query.n_objects"
        ) from exc
    except requests.ConnectionError as exc:
        raise SkyServerUnavailable(
            f"cannot reach SkyServer at {where} ({redact(str(exc))}); check the network or "
            "set source.skyserver.base_url (or use source.kind: synthetic offline)"
        ) from exc
    except requests.RequestException as exc:
        raise SkyServerError(f"request to SkyServer at {where} failed: {redact(str(exc))}") from exc


def server_error_message(body: str) -> str:
    """The message inside a SkyServer error body (JSON or text), or the body's start."""
    with contextlib.suppress(ValueError):
        found = _find_key(json.loads(body), "error_message")
        if found:
            return found
    match = re.search(r"""error_message["']?\s*[:=]\s*["']?(.+?)["']?\s*(?:[,}\n]|$)""", body)
    if match:
        return match.group(1).strip()
    return _plain_text(body)[:500]


def _find_key(node: object, key: str) -> str | None:
    if isinstance(node, dict):
        if key in node:
            return str(node[key])
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = _find_key(item, key)
            if found:
                return found
    return None


def _plain_text(body: str) -> str:
    text = re.sub(r"(?is)<(script|style).*?</\1>", " ", body)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def parse_response(status_code: int, body: str, url: str = "SkyServer") -> pd.DataFrame:
    """SkyServer's CSV answer as a DataFrame of strings (types are fixed by :func:`to_catalog`).

    A successful answer whose first line (after ``#`` comments) is a header of column
    names is a result, whatever its cells say. Anything else raises
    :class:`SkyServerError`: the server's SQL error text, an HTTP error, an HTML page,
    or another body that is not a CSV result. Zero rows give an empty frame.
    """
    url = redact(url)
    lines = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
    if status_code < 400 and not lines:
        return pd.DataFrame()
    if status_code < 400 and _is_csv_header(lines[0]):
        try:
            return pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, ValueError) as exc:
            raise SkyServerError(f"cannot parse SkyServer's CSV from {url}: {exc}") from exc
    if "error_message" in body:
        raise SkyServerError(f"SkyServer rejected the SQL: {server_error_message(body)}")
    if status_code >= 400:
        unavailable = status_code == 429 or status_code >= 500
        raise (SkyServerUnavailable if unavailable else SkyServerError)(
            f"SkyServer answered HTTP {status_code} for {url}: {_plain_text(body)[:300]!r}; "
            "it may be down or overloaded; try again later or set source.skyserver.base_url"
        )
    head = body.lstrip()[:200].lower()
    if head.startswith(("<!doctype", "<html", "<?xml")) or "<html" in head:
        raise SkyServerError(
            f"SkyServer answered {url} with an HTML page instead of CSV: "
            f"{_plain_text(body)[:300]!r}; check source.skyserver.base_url and data_release"
        )
    raise SkyServerError(
        f"SkyServer's answer from {url} is not a CSV result: {_plain_text(body)[:300]!r}; "
        "check source.skyserver.base_url and data_release"
    )


def _is_csv_header(line: str) -> bool:
    cells = next(csv.reader([line]), [])
    return bool(cells) and all(_HEADER_CELL.fullmatch(cell.strip()) for cell in cells)


def _object_id(text: object, column: str) -> int | None:
    """An id from its text: plain ASCII digits, or None where missing; else SkyServerError."""
    if text in _MISSING_TOKENS:
        return None
    digits = str(text).strip()
    if not _ID_TEXT.fullmatch(digits):
        raise SkyServerError(
            f"column {column!r} holds {text!r}, not an id of plain digits 0-9"
        ) from None
    return int(digits)


def _exact_ids(values: pd.Series, column: str, dtype: str) -> pd.Series:
    """Text ids to exact integers (Python ``int``, never float)."""
    out = [_object_id(text, column) for text in values]
    try:
        return pd.Series(pd.array(out, dtype=dtype), index=values.index)
    except (OverflowError, TypeError, ValueError) as exc:
        raise SkyServerError(f"column {column!r} does not fit {dtype}: {exc}") from None


def _integers(text: pd.Series, present: pd.Series) -> pd.Series | None:
    """Integer text as exact nullable integers (Int64, else UInt64); None if beyond 64 bits."""
    numbers = [int(t) if p else None for t, p in zip(text, present)]
    for dtype in ("Int64", "UInt64"):
        with contextlib.suppress(OverflowError, TypeError, ValueError):
            return pd.Series(pd.array(numbers, dtype=dtype), index=text.index)
    return None


def _extra_column(values: pd.Series) -> pd.Series:
    """A result column outside the contract, typed as its values allow.

    Integers stay exact, with missing entries (nullable Int64 / UInt64, never float);
    other numbers become float64; anything else stays text.
    """
    text = values.astype(str).str.strip()
    present = ~text.isin(_MISSING_TOKENS)
    if present.any() and text[present].str.fullmatch(_INTEGER_TEXT).all():
        integers = _integers(text, present)
        return values.astype("string") if integers is None else integers
    converted = pd.to_numeric(values, errors="coerce")
    keep_text = converted.isna() & ~values.isin(list(_MISSING_TOKENS))
    return values.astype("string") if keep_text.any() else converted


def _numbers(values: pd.Series, column: str) -> pd.Series:
    text = values.astype(str).str.strip()
    text = text.where(~text.isin(_MISSING_TOKENS), None)
    try:
        return pd.to_numeric(text, errors="raise").astype("float64")
    except (ValueError, TypeError) as exc:
        raise SkyServerError(f"column {column!r} holds a non-number: {exc}") from None


def _canonical_names(frame: pd.DataFrame) -> pd.DataFrame:
    known = {name.lower(): name for name in (*CATALOG_COLUMNS, *ID_COLUMNS)}
    return frame.rename(columns={c: known.get(str(c).lower(), c) for c in frame.columns})


def to_catalog(raw: pd.DataFrame, data: Data, provenance: str) -> pd.DataFrame:
    """Type a parsed result into the catalog contract (``schema.CATALOG_COLUMNS``).

    Class names are upper-cased; the class is unknown (NA) where ``zWarning != 0``;
    rows of a class outside ``data.classes`` are dropped; -9999 magnitudes become NaN.
    Extra columns (e.g. Galaxy Zoo flags from ``query.sql_file``) are kept.
    """
    frame = _canonical_names(raw)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SkyServerError(
            f"the SQL result lacks column(s) {missing} (has {list(frame.columns)}); "
            "the query must select them (see skysort.sources.skyserver.query.REQUIRED_COLUMNS)"
        )
    out = pd.DataFrame(index=frame.index)
    out["objid"] = _exact_ids(frame["objid"], "objid", "Int64")
    if out["objid"].isna().any():
        raise SkyServerError("column 'objid' has empty values")
    out["objid"] = out["objid"].astype("int64")
    for col in ("ra", "dec", *MAGNITUDE_COLUMNS, "redshift"):
        out[col] = _numbers(frame[col], col)
    for col in MAGNITUDE_COLUMNS:
        out.loc[out[col] <= MAGNITUDE_SENTINEL, col] = np.nan
    zwarning = _numbers(frame["zWarning"], "zWarning")
    if zwarning.isna().any():
        raise SkyServerError("column 'zWarning' has empty values")
    out["zWarning"] = zwarning.astype("int64")
    labels = frame["class"].astype("string").str.strip().str.upper()
    labels = labels.mask(labels.isin(["", "NULL", "NONE", "NAN"]))
    out["class"] = labels.mask(out["zWarning"] != 0)
    out["provenance"] = provenance
    if "specobjid" in frame.columns:  # numeric(20) in SDSS: may exceed int64
        out["specobjid"] = _exact_ids(frame["specobjid"], "specobjid", "UInt64")
    for col in frame.columns:
        if col in GALAXY_ZOO_LABELS:  # the contract's float 0/1 flags, NaN without votes
            out[col] = _numbers(frame[col], col)
        elif col not in out.columns:
            out[col] = _extra_column(frame[col])
    foreign = out["class"].notna() & ~out["class"].isin(list(data.classes))
    if foreign.any():
        log.warning(
            "dropping %d row(s) of class(es) %s not in data.classes",
            int(foreign.sum()),
            sorted(out.loc[foreign, "class"].unique()),
        )
        out = out.loc[~foreign]
    duplicated = out["objid"].duplicated()
    if duplicated.any():
        log.warning("dropping %d duplicated objid row(s)", int(duplicated.sum()))
        out = out.loc[~duplicated]
    return conform(out.reset_index(drop=True), CATALOG_COLUMNS)


def provenance_text(skyserver: SkyServerSource, now: dt.datetime | None = None) -> str:
    """Where and when the catalog came from, e.g. ``skyserver DR17 https://... 2025-01-31``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"skyserver DR{skyserver.data_release} {redact(skyserver.base_url)} {now:%Y-%m-%d}"


def _run(sql: str, skyserver: SkyServerSource) -> pd.DataFrame:
    response = send_sql(sql, skyserver)
    return parse_response(response.status_code, response.text, url=response.url)


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
        raw = _run(sql, skyserver)
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


def _last_id(raw: pd.DataFrame) -> int:
    last = _object_id(_canonical_names(raw)["objid"].iloc[-1], "objid")
    if last is None:
        raise SkyServerError("column 'objid' has empty values")
    return last


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
        wait = last_sent + skyserver.min_query_interval_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        last_sent = time.monotonic()
        raw = _run(build_sql(query, data, top, after, zoo), skyserver)
        log.info("SkyServer page %d: %d rows (asked for %d)", len(pages) + 1, len(raw), top)
        if raw.empty:
            break
        page = to_catalog(raw, data, provenance)
        # The cursor is the last row the server sent, before any row is dropped here.
        cursor = _last_id(raw)
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
