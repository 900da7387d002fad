"""SkyServer's answer to a search: its CSV as a frame of strings, or its error as an exception."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re

import pandas as pd

from skysort.sources.skyserver.sql_errors import SkyServerError, SkyServerUnavailable
from skysort.sources.urls import redact_text as redact

# A CSV header cell: an SQL column name or alias (SkyServer sends them bare), or empty.
_HEADER_CELL = re.compile(r'"?\[?([A-Za-z_@#][A-Za-z0-9_@$#]*)?\]?"?')


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
    """SkyServer's CSV answer as a DataFrame of strings (types are fixed by :func:`sql_catalog.to_catalog`).

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
