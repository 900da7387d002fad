"""The SQL of one page of the search, from a fixed template and validated values only."""

from __future__ import annotations

import math
import re

import numpy as np

from skysort.config import SDSS_CLASSES, Data, Query

SAMPLE_MODULUS = 1_000_003
"""Prime modulus of the pseudo-random sample key (keys are 0 .. SAMPLE_MODULUS - 1)."""
SAMPLE_MULTIPLIER = 618_034
"""Multiplier of the sample key: about the golden ratio of the modulus, coprime with it."""

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


def sample_key(objid: int) -> int:
    """The pseudo-random ordering key of an object (same arithmetic as the SQL)."""
    return ((int(objid) % SAMPLE_MODULUS) * SAMPLE_MULTIPLIER) % SAMPLE_MODULUS


def sql_number(value: object, name: str) -> str:
    """A finite number as SQL text (``repr`` of a float): nothing else can reach the SQL."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return repr(number)


def sql_integer(value: object, name: str, low: int, high: int) -> int:
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
    top = sql_integer(top, "top", 1, 500_000)
    classes = tuple(data.classes)
    for name in classes:
        if not isinstance(name, str) or not _CLASS_NAME.match(name) or name not in SDSS_CLASSES:
            raise ValueError(f"class {name!r} is not one of {list(SDSS_CLASSES)}")
    if not classes:
        raise ValueError("data.classes is empty")
    cursor = ""
    if after_objid is not None:
        after = sql_integer(after_objid, "after_objid", 0, _MAX_INT64)
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
        ra_min=sql_number(query.ra_min, "query.ra_min"),
        ra_max=sql_number(query.ra_max, "query.ra_max"),
        dec_min=sql_number(query.dec_min, "query.dec_min"),
        dec_max=sql_number(query.dec_max, "query.dec_max"),
        r_min=sql_number(query.r_min, "query.r_min"),
        r_max=sql_number(query.r_max, "query.r_max"),
        cursor=cursor,
        zoo_columns=_ZOO_COLUMNS if zoo else "",
        zoo_join=_ZOO_JOIN if zoo else "",
        order=f"{_SAMPLE_KEY_SQL}, p.objid" if query.random_sample else "p.objid",
    )
    if "--" in sql or ";" in sql:  # cannot happen with the checks above; a tripwire
        raise ValueError(f"refusing to send SQL containing '--' or ';': {sql!r}")
    return sql
