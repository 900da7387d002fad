"""The data contract between stages: column names and types, checked at every boundary."""

from __future__ import annotations

import pandas as pd

BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z")
"""The SDSS imaging bands, blue to red."""
MAGNITUDE_COLUMNS: tuple[str, ...] = (*BANDS, "fiberMag_g")
"""Every magnitude column of the catalog (the bands plus the 3\" fiber magnitude in g)."""
PHOTOMETRY_COLUMNS: tuple[str, ...] = (*MAGNITUDE_COLUMNS, "redshift")
"""The catalog columns a model may use as tabular features."""

CATALOG_COLUMNS: dict[str, str] = {
    "objid": "int64",
    "ra": "float64",
    "dec": "float64",
    "u": "float64",
    "g": "float64",
    "r": "float64",
    "i": "float64",
    "z": "float64",
    "fiberMag_g": "float64",
    "redshift": "float64",
    "zWarning": "int64",
    "class": "string",  # null where unknown (no spectrum, or zWarning != 0)
    "provenance": "string",
}
"""Required catalog columns. Sources may add more (e.g. Galaxy Zoo flags ``gz_*``)."""

GALAXY_ZOO_LABELS: tuple[str, ...] = ("gz_elliptical", "gz_spiral", "gz_edge_on", "gz_merger")
"""Optional multi-label morphology flags (float 0/1, NaN where Galaxy Zoo has no votes)."""

MANIFEST_COLUMNS: dict[str, str] = {
    "objid": "int64",
    "status": "string",  # ok / missing / error
    "bytes": "int64",
    "sha256": "string",
    "attempts": "int64",
    "error": "string",
    # what the file was made under (source, server without credentials, release, size,
    # scale, options; for the synthetic survey what fixed its rendering): a file made
    # under another fingerprint is made again, never reused
    "fingerprint": "string",
}
MANIFEST_STATUSES: tuple[str, ...] = ("ok", "missing", "error")


class SchemaError(ValueError):
    """A table does not follow the data contract; the message names the file and column."""


def check_columns(df: pd.DataFrame, columns: dict[str, str], what: str) -> None:
    """Raise :class:`SchemaError` unless ``df`` has every column with a compatible dtype."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(f"{what}: missing column(s) {missing}; has {list(df.columns)}")
    for col, dtype in columns.items():
        actual = df[col].dtype
        if dtype == "int64" and not pd.api.types.is_integer_dtype(actual):
            raise SchemaError(f"{what}: column {col!r} must be 64-bit integers, got {actual}")
        if dtype == "float64" and not pd.api.types.is_numeric_dtype(actual):
            raise SchemaError(f"{what}: column {col!r} must be numeric, got {actual}")
    if "objid" in columns and df["objid"].duplicated().any():
        dup = df.loc[df["objid"].duplicated(), "objid"].iloc[0]
        raise SchemaError(f"{what}: objid {dup} appears more than once")


def check_catalog(df: pd.DataFrame, what: str = "catalog") -> None:
    check_columns(df, CATALOG_COLUMNS, what)
    if df.empty:
        raise SchemaError(f"{what} is empty: the query returned no objects")


def check_manifest(df: pd.DataFrame, what: str = "cutout manifest") -> None:
    check_columns(df, MANIFEST_COLUMNS, what)
    bad = set(df["status"].dropna().unique()) - set(MANIFEST_STATUSES)
    if bad:
        raise SchemaError(f"{what}: unknown status value(s) {sorted(bad)}")


def conform(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Cast the contract's columns to their dtypes (strings to pandas ``string``)."""
    out = df.copy()
    for col, dtype in columns.items():
        if col in out.columns:
            out[col] = out[col].astype(dtype)
    return out
