"""Photometric objects, with or without spectra: the SQL predict sends, and its paging.

PhotoObj rows of clean photometry (``clean = 1``) classified by the photometric
pipeline as galaxies or stars (``type`` 3 or 6), in a box, a cone
(``fGetNearbyObjEq``) or a list of object ids, paged by objid (positions are matched
to objects by :mod:`~skysort.sources.skyserver.sql_match`). They carry no
spectroscopic class or redshift: the class is unknown and the redshift null.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from skysort.config import Data, Predict, SkyServerSource
from skysort.data.schema import CATALOG_COLUMNS, conform
from skysort.sources.skyserver.query import pace, provenance_text, run_search
from skysort.sources.skyserver.sql_build import sql_integer, sql_number
from skysort.sources.skyserver.sql_catalog import last_objid, to_catalog
from skysort.sources.skyserver.sql_errors import SkyServerError

log = logging.getLogger(__name__)

PHOTO_COLUMNS = "p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z, p.fiberMag_g"
NO_SPECTRUM = "NULL AS specobjid, NULL AS class, NULL AS redshift, 0 AS zWarning"
"""The catalog columns a photometric object has no value for (no spectrum)."""
PHOTO_WHERE = "p.type IN (3, 6) AND p.clean = 1\n    AND p.r >= {r_min} AND p.r <= {r_max}"
"""Galaxies and stars of clean photometry in ``predict``'s r range (format ``r_min``, ``r_max``)."""
_PHOTO_TEMPLATE = f"""SELECT TOP {{top}}
    {PHOTO_COLUMNS},
    {NO_SPECTRUM}
FROM PhotoObj AS p{{cone}}
WHERE {PHOTO_WHERE}{{where}}{{cursor}}
ORDER BY p.objid"""
IDS_PER_QUERY = 500
"""Object ids (or positions) per statement: one SQL statement stays a few kilobytes."""
MAX_INT64 = 2**63 - 1


def build_photo_sql(
    predict: Predict, top: int, after_objid: int | None = None, objids: list[int] | None = None
) -> str:
    """SQL for one page of at most ``top`` photometric objects after ``after_objid``.

    ``objids``: those objects, wherever they are; else ``predict``'s box or cone.
    """
    top = sql_integer(top, "top", 1, 500_000)
    cone, where = "", ""
    if objids is not None:
        ids = [str(sql_integer(int(i), "objid", 0, MAX_INT64)) for i in objids]
        where = f"\n    AND p.objid IN ({', '.join(ids)})"
    elif predict.shape == "cone":
        cone = (
            f"\nJOIN dbo.fGetNearbyObjEq({sql_number(predict.ra, 'predict.ra')}, "
            f"{sql_number(predict.dec, 'predict.dec')}, "
            f"{sql_number(predict.radius_arcmin, 'predict.radius_arcmin')}) AS n "
            "ON n.objID = p.objid"
        )
    else:
        where = (
            f"\n    AND p.ra >= {sql_number(predict.ra_min, 'predict.ra_min')}"
            f" AND p.ra <= {sql_number(predict.ra_max, 'predict.ra_max')}"
            f"\n    AND p.dec >= {sql_number(predict.dec_min, 'predict.dec_min')}"
            f" AND p.dec <= {sql_number(predict.dec_max, 'predict.dec_max')}"
        )
    cursor = ""
    if after_objid is not None:
        cursor = f"\n    AND p.objid > {sql_integer(after_objid, 'after_objid', 0, MAX_INT64)}"
    sql = _PHOTO_TEMPLATE.format(
        top=top, cone=cone, where=where, cursor=cursor, **r_limits(predict)
    )
    return checked(sql)


def r_limits(predict: Predict) -> dict[str, str]:
    """``predict``'s r range as SQL numbers, for :data:`PHOTO_WHERE`."""
    return {"r_min": sql_number(predict.r_min, "predict.r_min"),
            "r_max": sql_number(predict.r_max, "predict.r_max")}  # fmt: skip


def checked(sql: str) -> str:
    """``sql``, unless it holds ``--`` or ``;`` (cannot happen with validated values; a tripwire)."""
    if "--" in sql or ";" in sql:
        raise ValueError(f"refusing to send SQL containing '--' or ';': {sql!r}")
    return sql


def statement_size(skyserver: SkyServerSource) -> int:
    """Ids or positions per statement: at most :data:`IDS_PER_QUERY`, and at most a page."""
    return min(IDS_PER_QUERY, skyserver.max_rows_per_request)


def photometric_catalog(
    predict: Predict, data: Data, skyserver: SkyServerSource, objids: np.ndarray | None = None
) -> pd.DataFrame:
    """Up to ``predict.max_objects`` photometric objects (or those of ``objids``), by objid."""
    provenance = f"{provenance_text(skyserver)} photometric"
    pages: list[pd.DataFrame] = []
    last_sent = -math.inf
    if objids is not None:
        size = statement_size(skyserver)
        for start in range(0, len(objids), size):
            chunk = [int(i) for i in dict.fromkeys(objids[start : start + size])]
            last_sent = pace(last_sent, skyserver)
            sql = build_photo_sql(predict, len(chunk), objids=chunk)
            pages.append(_page(sql, skyserver, data, provenance)[0])
    else:
        remaining, after = predict.max_objects, None
        while remaining > 0:
            top = min(skyserver.max_rows_per_request, remaining)
            last_sent = pace(last_sent, skyserver)
            page, cursor = _page(build_photo_sql(predict, top, after), skyserver, data, provenance)
            if cursor is None:
                break
            pages.append(page)
            remaining -= len(page)
            if len(page) < top or cursor == after:
                break
            after = cursor
    frames = [p for p in pages if len(p)]
    if not frames:
        log.info("SkyServer: no photometric objects match (%s)", provenance)
        return empty_catalog()
    catalog = pd.concat(frames, ignore_index=True)
    if objids is not None:  # an id listed in two statements comes back twice: keep it once
        catalog = catalog.drop_duplicates("objid", ignore_index=True)
    if catalog["objid"].duplicated().any():
        raise SkyServerError("SkyServer returned an object twice across pages; paging is broken")
    log.info("SkyServer: %d photometric objects (%s)", len(catalog), provenance)
    return catalog


def empty_catalog() -> pd.DataFrame:
    """A catalog of no objects, with the contract's columns and types."""
    return conform(pd.DataFrame(columns=list(CATALOG_COLUMNS)), CATALOG_COLUMNS)


def _page(
    sql: str, skyserver: SkyServerSource, data: Data, provenance: str
) -> tuple[pd.DataFrame, int | None]:
    raw = run_search(sql, skyserver)
    if raw.empty:
        return raw, None
    return to_catalog(raw, data, provenance), last_objid(raw)
