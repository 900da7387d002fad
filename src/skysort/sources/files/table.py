"""Reading the user's catalog file: every CSV cell as text, Parquet as it is, ragged rows named.

Every CSV cell is read as text first, so ids never pass through float and a
non-number is told apart from a blank.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SHOWN = 5
"""How many offending lines a message quotes."""


CSV_SUFFIXES = (".csv", ".tsv", ".txt")


PARQUET_SUFFIXES = (".parquet", ".pq")


NA_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})
"""Cell texts that mean "no value" (compared case-insensitively, after stripping)."""


QUOTED = 60
"""Longest quote of one cell in a message (a longer one is cut, its length given)."""


class FilesError(ValueError):
    """The catalog file cannot be read as the parameters ask; the message names file, line, column."""


class RawTable:
    """The file's cells, and how to name a row of it in a message."""

    def __init__(self, path: Path, frame: pd.DataFrame, is_csv: bool, notes: list[str]) -> None:
        self.path = path
        self.frame = frame
        self.is_csv = is_csv
        self.notes = notes

    def where(self, position: int) -> str:
        """Row ``position`` (0-based) as a person finds it: a CSV line (header = line 1) or a row."""
        return f"line {position + 2}" if self.is_csv else f"row {position + 1}"

    def places(self, positions: np.ndarray, values: pd.Series | None = None) -> str:
        """The first few ``positions`` as ``line 7 ('1.2E+18'), line 9 (...)`` and how many more."""
        shown = []
        for p in positions[:SHOWN]:
            value = "" if values is None else f" ({quote(values.iloc[p])})"
            shown.append(f"{self.where(int(p))}{value}")
        more = f" and {len(positions) - SHOWN} more" if len(positions) > SHOWN else ""
        return ", ".join(shown) + more


def quote(value: object) -> str:
    """``repr`` of a cell, cut to :data:`QUOTED` characters: a message quotes, never copies."""
    text = repr(value)
    if len(text) <= QUOTED:
        return text
    return f"{text[: QUOTED - 1]}… ({len(str(value))} characters)"


def read_table(path: Path) -> RawTable:
    """The file's cells (CSV: all text; Parquet: as stored), column names stripped."""
    if path.is_dir():
        raise FilesError(
            f"paths.source_catalog is {path}, a folder: set it to your catalog file "
            f"(CSV or Parquet), e.g. {path / 'catalog.csv'}"
        )
    if not path.is_file():
        raise FilesError(f"catalog file {path} not found (paths.source_catalog)")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise FilesError(f"{path}: not a readable Parquet file ({exc})") from None
        return RawTable(path, _strip_names(frame, path), False, [])
    if suffix not in CSV_SUFFIXES:
        raise FilesError(
            f"{path}: unknown catalog format {suffix!r}; use a CSV ({', '.join(CSV_SUFFIXES)}) "
            f"or Parquet ({', '.join(PARQUET_SUFFIXES)}) file"
        )
    head = path.open("rb").read(1 << 16)
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        raise FilesError(
            f"{path} is empty: a CSV catalog starts with a header line naming its columns, "
            "then one line per object"
        )
    notes = []
    if head.startswith(b"\xef\xbb\xbf"):
        notes.append("UTF-8 byte order mark removed")
    if b"\r\n" in head:
        notes.append("CRLF line endings")
    delimiter = "\t" if suffix == ".tsv" else ","
    try:
        header = next(csv.reader([head.decode("utf-8-sig", errors="replace").splitlines()[0]],
                                 delimiter=delimiter))  # fmt: skip
        frame = pd.read_csv(
            path,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            skip_blank_lines=True,
        )
    except UnicodeDecodeError as exc:
        raise FilesError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8 CSV"
        ) from None
    except pd.errors.ParserError as exc:
        _refuse_ragged_rows(path, delimiter)
        raise FilesError(f"{path}: not a readable CSV file: {exc}") from None
    except (IndexError, StopIteration) as exc:
        raise FilesError(f"{path}: not a readable CSV file: {exc}") from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took the first column(s) as an index
        _refuse_ragged_rows(path, delimiter)
    names = [h.strip() for h in header]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FilesError(f"{path}: the header names column(s) {twice} more than once")
    return RawTable(path, _strip_names(frame, path), True, notes)


def _refuse_ragged_rows(path: Path, delimiter: str) -> None:
    """Raise :class:`FilesError` naming the rows with more fields than the header, if any.

    pandas reads such a file without a word when every row has the extra field (a
    trailing delimiter): it takes the first column as the row index and shifts every
    other one left, under the wrong names.
    """
    long, empty_tail = [], True
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            width = len(next(reader, []))
            for row in reader:
                if len(row) > width:
                    long.append((reader.line_num, len(row)))
                    empty_tail = empty_tail and not any(cell.strip() for cell in row[width:])
    except (csv.Error, UnicodeDecodeError):  # the caller's message says what pandas found
        return
    if not long:
        return
    shown = ", ".join(f"line {line} ({n} fields)" for line, n in long[:SHOWN])
    more = f" and {len(long) - SHOWN} more" if len(long) > SHOWN else ""
    why = (
        "a trailing delimiter at the end of the line? Remove it"
        if empty_tail
        else "a value holding the delimiter needs quotes, or the header misses a column name"
    )
    raise FilesError(
        f"{path}: {len(long)} row(s) have more fields than the header names {width} column(s): "
        f"{shown}{more} ({why}); every column would be read under another column's name"
    )


def _strip_names(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    names = [str(c).strip() for c in frame.columns]
    if any(not n for n in names):
        raise FilesError(f"{path}: a column has no name in the header")
    return frame.set_axis(names, axis=1)
