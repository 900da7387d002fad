"""Positions matched to the nearest photometric object through SQL, a batch of positions per search.

Each statement carries up to :func:`~skysort.sources.skyserver.sql_photo.statement_size`
positions as a ``VALUES`` table, numbered ``k`` (the position's place in the file);
``CROSS APPLY`` takes, for each, the nearest PhotoObj row within ``predict.match_arcsec``
(``fGetNearbyObjEq``, its ``distance`` in arcminutes) among the objects predict classifies
anywhere (clean photometry, galaxies and stars, ``predict``'s r range). A position with
no such object is absent from the answer. Only validated numbers reach the SQL; ids
are read exactly, as for every other search.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from skysort.config import Data, Predict, SkyServerSource
from skysort.sources.skyserver.query import pace, provenance_text, run_search
from skysort.sources.skyserver.sql_build import sql_integer, sql_number
from skysort.sources.skyserver.sql_catalog import to_catalog
from skysort.sources.skyserver.sql_errors import SkyServerError
from skysort.sources.skyserver.sql_photo import (
    NO_SPECTRUM,
    PHOTO_COLUMNS,
    PHOTO_WHERE,
    checked,
    empty_catalog,
    r_limits,
    statement_size,
)

log = logging.getLogger(__name__)

_MATCH_TEMPLATE = f"""SELECT w.k, m.objid, m.ra, m.dec, m.u, m.g, m.r, m.i, m.z, m.fiberMag_g,
    {NO_SPECTRUM}, m.distance
FROM (VALUES {{values}}) AS w (k, ra, dec)
CROSS APPLY (
    SELECT TOP 1 {PHOTO_COLUMNS}, n.distance
    FROM dbo.fGetNearbyObjEq(w.ra, w.dec, {{radius_arcmin}}) AS n
    JOIN PhotoObj AS p ON p.objid = n.objID
    WHERE {PHOTO_WHERE}
    ORDER BY n.distance, p.objid
) AS m
ORDER BY w.k"""
_MAX_POSITIONS = 10_000_000


def build_match_sql(predict: Predict, ra: Sequence[float], dec: Sequence[float], first: int) -> str:
    """SQL matching positions ``first``, ``first + 1``, ... (``ra``, ``dec`` in degrees)."""
    if len(ra) != len(dec) or not len(ra):
        raise ValueError(f"need as many ra as dec values, at least one ({len(ra)}, {len(dec)})")
    values = []
    for k, (a, d) in enumerate(zip(ra, dec), start=sql_integer(first, "first", 0, _MAX_POSITIONS)):
        if not (0 <= float(a) <= 360 and -90 <= float(d) <= 90):
            raise ValueError(f"position {k}: ra {a} / dec {d} outside 0..360 / -90..90")
        values.append(f"({k}, {sql_number(a, f'ra of position {k}')}, "
                      f"{sql_number(d, f'dec of position {k}')})")  # fmt: skip
    radius = sql_number(predict.match_arcsec / 60, "predict.match_arcsec / 60")
    sql = _MATCH_TEMPLATE.format(values=", ".join(values), radius_arcmin=radius,
                                 **r_limits(predict))  # fmt: skip
    return checked(sql)


def match_positions(
    predict: Predict, data: Data, skyserver: SkyServerSource, positions: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """The objects nearest to ``positions`` (ra, dec) and, per position, its row there or -1.

    An object nearest to two positions is in the catalog once; both positions point at it.
    """
    provenance = f"{provenance_text(skyserver)} photometric"
    match = np.full(len(positions), -1, dtype=np.int64)
    pages: list[pd.DataFrame] = []
    keys: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    size, last_sent = statement_size(skyserver), -math.inf
    ra, dec = positions["ra"].to_numpy(float), positions["dec"].to_numpy(float)
    for start in range(0, len(positions), size):
        stop = min(start + size, len(positions))
        last_sent = pace(last_sent, skyserver)
        raw = run_search(
            build_match_sql(predict, ra[start:stop], dec[start:stop], start), skyserver
        )
        if raw.empty:
            continue
        named = {str(c).lower(): c for c in raw.columns}
        lacking = [c for c in ("k", "objid") if c not in named]
        if lacking:
            raise SkyServerError(f"the match result lacks {lacking} (has {list(raw.columns)})")
        keys.append(_keys(raw[named["k"]], start, stop))
        # two positions may share their nearest object: type each object once
        text = raw[named["objid"]].astype(str).str.strip()
        first = ~text.duplicated().to_numpy()
        extra = [named[c] for c in ("k", "distance") if c in named]
        page = to_catalog(raw.loc[first].drop(columns=extra), data, provenance)
        if len(page) != int(first.sum()):
            raise SkyServerError("SkyServer's match answer names one object in two ways")
        id_of = dict(zip(text[first], page["objid"].to_numpy()))
        ids.append(np.array([id_of[t] for t in text], dtype=np.int64))
        pages.append(page)
    if not pages:
        log.info("SkyServer: no photometric object within %s\" of any of %d positions",
                 predict.match_arcsec, len(positions))  # fmt: skip
        return empty_catalog(), match
    catalog = pd.concat(pages, ignore_index=True).drop_duplicates("objid", ignore_index=True)
    row_of = pd.Series(np.arange(len(catalog)), index=catalog["objid"].to_numpy())
    k = np.concatenate(keys)
    match[k] = row_of.loc[np.concatenate(ids)].to_numpy()
    log.info("SkyServer: %d of %d positions matched within %s\" (%s)", len(k), len(positions),
             predict.match_arcsec, provenance)  # fmt: skip
    return catalog, match


def _keys(column: pd.Series, start: int, stop: int) -> np.ndarray:
    """The position numbers of one answer: integers of this statement, each at most once."""
    text = column.astype(str).str.strip()
    if not text.str.fullmatch(r"[0-9]{1,9}").all():
        raise SkyServerError(f"column 'k' holds {text.tolist()[:3]}..., not position numbers")
    k = text.astype(np.int64).to_numpy()
    if ((k < start) | (k >= stop)).any() or len(set(k.tolist())) != len(k):
        raise SkyServerError(
            f"SkyServer answered positions {start}..{stop - 1} with numbers outside them or twice"
        )
    return k
