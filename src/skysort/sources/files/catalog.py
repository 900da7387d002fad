"""The user's own catalog file (``source.kind: files``) read into the catalog contract.

Real files are messy: ids mangled by a spreadsheet (``1.23766E+18``) or repeated,
sentinel magnitudes (``-9999``), blanks, a UTF-8 BOM, CRLF line endings, quoted
fields, misspelt column names, a class nobody declared. Each is either handled (BOM,
CRLF and quotes are plain CSV) or named in a warning or a :class:`FilesError` that
says which file, which line and which column, and what to change.

Every CSV cell is read as text first, so ids never pass through float and a
non-number is told apart from a blank.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import string
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from skysort.config import Data, FilesSource
from skysort.data.schema import CATALOG_COLUMNS, PHOTOMETRY_COLUMNS, conform
from skysort.sources.files.table import (
    NA_TOKENS,
    SHOWN,
    FilesError,
    RawTable,
    quote,
    read_table,
)

log = logging.getLogger(__name__)

INTEGER = re.compile(r"[+-]?\d+")

IMAGE_SOURCE = "image_source"
"""Catalog column: each row's image file, relative to ``paths.source_images`` (null = none)."""
SOURCE_ROW = "source_row"
"""Catalog column: the row's position in the user's file (1 = first row after the header)."""
RESERVED = frozenset({*CATALOG_COLUMNS, IMAGE_SOURCE, SOURCE_ROW, "split", "row", "label"})
"""Names the catalog and later stages use themselves: no feature or label column may take one."""


def load_catalog(
    path: Path, files: FilesSource, data: Data, labels: tuple[str, ...] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the user's catalog file into the catalog contract; the catalog and a report.

    ``labels``: the binary label columns to read (default ``files.label_columns``; the
    multilabel task passes ``data.labels``). Features and labels keep their own names.
    Contract columns the file does not provide are null (photometry, ra/dec) or 0
    (``zWarning``). Missing or sentinel feature values become null and are reported:
    the clean stage drops those rows (reason ``missing_features``).
    """
    labels = files.label_columns if labels is None else tuple(labels)
    table = read_table(Path(path))
    frame = table.frame
    _check_columns(table, files, data, labels)
    report: dict[str, Any] = {"file": str(path), "file_rows": len(frame), "notes": table.notes}
    objid, report["ids"] = _object_ids(table, files)
    catalog = pd.DataFrame({"objid": objid})
    for key, column in (("ra", files.ra_column), ("dec", files.dec_column)):
        catalog[key] = _numbers(table, column, key)[0] if column else np.nan
    report["missing_features"] = {}
    for feature in data.features:
        catalog[feature], problems = _numbers(table, feature, "a feature", files.sentinels)
        if problems:
            report["missing_features"][feature] = problems
    for column in PHOTOMETRY_COLUMNS:
        if column not in catalog:
            catalog[column] = np.nan
    catalog["zWarning"] = np.int64(0)
    catalog["class"] = _classes(table, files.label_column, data.classes)
    for label in labels:
        catalog[label] = _binary_labels(table, label, _labels_key(files))
    _refuse_no_known_label(table, catalog, files, labels)
    catalog[IMAGE_SOURCE] = _image_sources(table, files)
    catalog[SOURCE_ROW] = np.arange(1, len(frame) + 1, dtype=np.int64)
    catalog["provenance"] = f"files:{Path(path).name} sha256:{_sha256(Path(path))[:16]}"
    used = _used_columns(files, data, labels)
    report["unused_columns"] = [c for c in frame.columns if c not in used]
    _log_missing(table, report["missing_features"])
    return conform(catalog, CATALOG_COLUMNS), report


def _labels_key(files: FilesSource) -> str:
    """The parameter that names the label columns read (to name it in messages)."""
    return "source.files.label_columns" if files.label_columns else "data.labels"


def _used_columns(files: FilesSource, data: Data, labels: tuple[str, ...]) -> dict[str, str]:
    """Each column the parameters name, and the key that names it."""
    used: dict[str, str] = {}
    for key in ("id_column", "label_column", "ra_column", "dec_column", "image_column"):
        value = getattr(files, key)
        if value and not (key == "image_column" and files.images != "column"):
            used[value] = f"source.files.{key}"
    used.update({c: _labels_key(files) for c in labels})
    used.update({f: "data.features" for f in data.features})
    if files.images == "folder":
        for field in _pattern_fields(files.image_pattern) - {"id", "row"}:
            used[field] = "source.files.image_pattern"
    return used


def _pattern_fields(pattern: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(pattern) if f}


def _check_columns(
    table: RawTable, files: FilesSource, data: Data, labels: tuple[str, ...]
) -> None:
    """Every column the parameters name exists, and none takes a name the catalog reserves."""
    have = list(table.frame.columns)
    problems = []
    for column, key in _used_columns(files, data, labels).items():
        if column in have:
            continue
        close = [h for h in have if h.lower() == column.lower()]
        close = close or difflib.get_close_matches(column, have, n=2, cutoff=0.7)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        if key == "source.files.label_column" and labels:
            hint += " (with binary label columns a class column is optional: set it to null)"
        problems.append(f"no column {column!r} ({key}){hint}")
    for name, key in [*((f, "data.features") for f in data.features),
                      *((c, _labels_key(files)) for c in labels)]:  # fmt: skip
        if name in RESERVED - set(PHOTOMETRY_COLUMNS):
            problems.append(f"{key} may not use the name {name!r}: the catalog uses it itself")
    if problems:
        raise FilesError(f"{table.path}: " + "; ".join(problems) + f". The file's columns: {have}")


def _text(table: RawTable, column: str) -> pd.Series:
    """A column as stripped text, missing values as empty strings."""
    values = table.frame[column]
    return values.astype("object").where(values.notna(), "").astype(str).str.strip()


def _missing(text: pd.Series) -> np.ndarray:
    return text.str.lower().isin(NA_TOKENS).to_numpy()


def _object_ids(table: RawTable, files: FilesSource) -> tuple[np.ndarray, str]:
    """64-bit ids from ``id_column``; row numbers 1..N where none is given or ``bad_ids`` allows."""
    n = len(table.frame)
    row_ids = np.arange(1, n + 1, dtype=np.int64)
    if files.id_column is None:
        return row_ids, "row numbers (source.files.id_column is null)"
    column = files.id_column
    text = _text(table, column) if table.is_csv else _stored_id_text(table.frame[column])
    exact = text.str.fullmatch(INTEGER.pattern).to_numpy()
    ids = np.zeros(n, dtype=np.int64)
    fits = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(exact):
        value = int(text.iloc[i])
        if -(2**63) <= value < 2**63:
            ids[i], fits[i] = value, True
    problems = []
    bad = np.flatnonzero(~fits)
    if len(bad):
        sci = text.str.contains(r"^[+-]?\d+(?:\.\d*)?[eE][+-]?\d+$", regex=True).to_numpy()
        why = (
            " (scientific notation: a spreadsheet rounded them, so they no longer name objects)"
            if sci[bad].any()
            else ""
        )
        problems.append(
            f"{len(bad)} value(s) are not exact 64-bit integers{why}: {table.places(bad, text)}"
        )
    repeated = np.flatnonzero(pd.Series(ids).duplicated(keep="first").to_numpy() & fits)
    if len(repeated):
        problems.append(
            f"{len(repeated)} row(s) repeat an earlier id: {table.places(repeated, text)}"
        )
    if not problems:
        return ids, f"column {column!r}"
    message = f"{table.path}: column {column!r} (source.files.id_column): " + "; ".join(problems)
    if files.bad_ids == "error":
        raise FilesError(
            f"{message}. Set source.files.bad_ids: row_ids to number the rows 1..N instead "
            "(with a warning), or source.files.id_column: null"
        )
    log.warning("%s; numbering the rows 1..N instead (source.files.bad_ids: row_ids)", message)
    return row_ids, f"row numbers: column {column!r} is not usable ({'; '.join(problems)})"


def _stored_id_text(values: pd.Series) -> pd.Series:
    """Ids stored in a Parquet column as exact text, checked then as a CSV's are.

    Integers of any width as they are (``2**64 - 1`` is then refused by name, as in a
    CSV); whole floats (``1.0``) as integers where a float holds them exactly (up to
    2**53); anything else as its text.
    """

    def one(value: object) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, int | np.integer):
            return str(int(value))
        exact = isinstance(value, float | np.floating) and float(value).is_integer()
        if exact and abs(value) <= 2**53:
            return str(int(value))
        return str(value).strip()

    return pd.Series([one(v) for v in values.astype(object)], index=values.index, dtype=object)


def _numbers(
    table: RawTable, column: str, what: str, sentinels: tuple[float, ...] = ()
) -> tuple[np.ndarray, dict[str, Any]]:
    """A numeric column as float64 (null where missing); what was missing and where.

    Text that is not a number counts as missing when it is rare (a stray ``n.a.``);
    a column that is mostly text is an error: it is not the column meant.
    """
    raw = table.frame[column]
    if table.is_csv or not pd.api.types.is_numeric_dtype(raw.dtype):
        text = _text(table, column)
        blank = _missing(text)
        values = np.array(pd.to_numeric(text.where(~blank, None), errors="coerce"), np.float64)
        not_number = np.flatnonzero(~blank & np.isnan(values))
    else:
        text = raw.astype(str)
        values = np.array(raw.to_numpy(dtype=np.float64, na_value=np.nan))  # a writable copy
        blank = np.isnan(values)
        not_number = np.array([], dtype=np.int64)
    present = int((~blank).sum())
    if present and len(not_number) > present / 2:
        raise FilesError(
            f"{table.path}: column {column!r} ({what}) is not numeric: "
            f"{table.places(not_number, text)}"
        )
    sentinel = np.flatnonzero(np.isin(values, sentinels)) if sentinels else np.array([], int)
    infinite = np.flatnonzero(np.isinf(values))
    values[sentinel] = np.nan
    values[infinite] = np.nan
    problems: dict[str, Any] = {}
    for reason, where in (("blank", np.flatnonzero(blank)), ("not_a_number", not_number),
                          ("sentinel", sentinel), ("infinite", infinite)):  # fmt: skip
        if len(where):
            problems[reason] = {"rows": int(len(where)), "first": table.places(where, text)}
    return values, problems


def _log_missing(table: RawTable, missing: dict[str, dict[str, Any]]) -> None:
    for feature, problems in missing.items():
        detail = "; ".join(f"{k} {v['rows']} (first: {v['first']})" for k, v in problems.items())
        log.warning(
            "%s: feature column %r has missing values: %s; those rows are dropped by the "
            "clean stage (reason missing_features), not trained on",
            table.path,
            feature,
            detail,
        )


def _classes(table: RawTable, column: str | None, classes: tuple[str, ...]) -> pd.Series:
    """The class of each row (null where blank); a class outside ``data.classes`` is an error."""
    n = len(table.frame)
    if column is None:
        return pd.Series(pd.NA, index=range(n), dtype="string")
    text = _text(table, column)
    blank = _missing(text)
    unknown = sorted(set(text[~blank]) - set(classes))
    if unknown:
        lines = []
        for name in unknown[:SHOWN]:
            where = np.flatnonzero((text == name).to_numpy())
            close = [c for c in classes if c.lower() == name.lower()]
            hint = f", did you mean {close[0]!r}?" if close else ""
            lines.append(
                f"{quote(name)} ({len(where)} rows, first at {table.where(int(where[0]))}{hint})"
            )
        raise FilesError(
            f"{table.path}: column {column!r} (source.files.label_column) has class(es) not in "
            f"data.classes {list(classes)}: {', '.join(lines)}. Add them to data.classes, or "
            "fix those rows (a blank cell means unknown)"
        )
    return pd.Series(text.where(~blank, None), dtype="string").reset_index(drop=True)


def _refuse_no_known_label(
    table: RawTable, catalog: pd.DataFrame, files: FilesSource, labels: tuple[str, ...]
) -> None:
    """Labels asked for, and not one known in any row: say so now, not stages later.

    The targets are the binary ``labels`` when there are any, else the class column.
    """
    if labels:
        named, key = list(labels), _labels_key(files)
        known = catalog[named].notna().to_numpy().any()
    elif files.label_column is not None:
        named, key = [files.label_column], "source.files.label_column"
        known = catalog["class"].notna().any()
    else:
        return
    if len(catalog) and not known:
        raise FilesError(
            f"{table.path}: no row has a known label: every cell of column(s) {named} ({key}) "
            "is blank or NaN, so there is nothing to train on or to score. Fill in the labels "
            f"you know (a blank cell means unknown), or name the labelled column(s) in {key}"
        )


def _binary_labels(table: RawTable, column: str, key: str) -> np.ndarray:
    """A multi-label column as float 0 / 1, NaN where unknown; anything else is an error."""
    values, _ = _numbers(table, column, "a label column")
    text = _text(table, column)
    bad = np.flatnonzero(~np.isnan(values) & ~np.isin(values, (0.0, 1.0)))
    bad = np.union1d(bad, np.flatnonzero(np.isnan(values) & ~_missing(text)))
    if len(bad):
        raise FilesError(
            f"{table.path}: column {column!r} ({key}) must hold 0, 1 or "
            f"a blank / NaN (unknown), but has {table.places(bad, text)}"
        )
    return values


def _image_sources(table: RawTable, files: FilesSource) -> pd.Series:
    """Each row's image path, relative to ``paths.source_images`` (null where none is listed)."""
    n = len(table.frame)
    if files.images == "none":
        return pd.Series(pd.NA, index=range(n), dtype="string")
    if files.images == "column":
        text = _text(table, files.image_column)  # type: ignore[arg-type]
        paths = text.where(~_missing(text), None)
    else:
        fields = _pattern_fields(files.image_pattern)
        cells = {f: _text(table, f) for f in fields - {"id", "row"}}
        ids = _text(table, files.id_column) if "id" in fields and files.id_column else None
        paths = pd.Series(
            [
                files.image_pattern.format(
                    id=ids.iloc[i] if ids is not None else "",
                    row=i + 1,
                    **{f: c.iloc[i] for f, c in cells.items()},
                )
                for i in range(n)
            ],
            dtype="object",
        )
    escaping = [
        i
        for i, p in enumerate(paths)
        if isinstance(p, str)
        and (
            PurePosixPath(p.replace("\\", "/")).is_absolute()
            or ".." in p.replace("\\", "/").split("/")
        )
    ]
    if escaping:
        raise FilesError(
            f"{table.path}: image paths must be relative to paths.source_images, without '..' "
            f"(DVC tracks that folder): {table.places(np.array(escaping), paths)}"
        )
    return pd.Series(paths, dtype="string").reset_index(drop=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
