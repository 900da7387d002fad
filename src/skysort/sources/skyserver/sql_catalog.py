"""A parsed search result typed into the catalog contract: exact 64-bit ids, NaN sentinels."""

from __future__ import annotations

import contextlib
import logging
import re

import numpy as np
import pandas as pd

from skysort.config import Data
from skysort.data.schema import CATALOG_COLUMNS, GALAXY_ZOO_LABELS, MAGNITUDE_COLUMNS, conform
from skysort.sources.skyserver.sql_errors import SkyServerError

log = logging.getLogger(__name__)

MAGNITUDE_SENTINEL = -9999.0
"""SDSS writes -9999 for a magnitude it could not measure; it becomes NaN here."""
ID_COLUMNS: tuple[str, ...] = ("objid", "specobjid")
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in CATALOG_COLUMNS if c != "provenance")
"""What a result (built-in SQL or ``query.sql_file``) must contain; provenance is added here."""
# query.py re-exports it: the missing-column error of to_catalog points users there.
_MISSING_TOKENS = frozenset({"", "null", "NULL", "None", "nan", "NaN"})
_ID_TEXT = re.compile(r"[0-9]+")  # ASCII only: \d would take any script's digits
_INTEGER_TEXT = r"[+-]?[0-9]+"


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


def last_objid(raw: pd.DataFrame) -> int:
    """The object id of the result's last row: the paging cursor."""
    last = _object_id(_canonical_names(raw)["objid"].iloc[-1], "objid")
    if last is None:
        raise SkyServerError("column 'objid' has empty values")
    return last
