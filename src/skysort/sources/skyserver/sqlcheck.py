"""``query.sql_file``'s SQL: one read-only ``SELECT``, checked before anything is sent.

The check reads the SQL as SkyServer will (T-SQL): comments, string literals and
quoted identifiers are set aside, then the statement must start with ``SELECT``
(or ``WITH`` for common table expressions), hold no second statement (chained with
``;`` or simply written after the first, as T-SQL allows), and use no keyword that
writes, executes or reaches outside the query (``INTO``, ``UPDATE``, ``EXEC``,
``OPENROWSET``...).
"""

from __future__ import annotations

import re

MAX_SQL_BYTES = 1_000_000

FORBIDDEN: frozenset[str] = frozenset({
    "INTO", "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "DROP", "CREATE", "ALTER",
    "RENAME", "GRANT", "REVOKE", "DENY", "EXEC", "EXECUTE", "DECLARE", "SET", "USE", "BEGIN",
    "COMMIT", "ROLLBACK", "SAVE", "TRANSACTION", "BACKUP", "RESTORE", "SHUTDOWN", "KILL",
    "DBCC", "BULK", "WAITFOR", "RECONFIGURE", "OPENROWSET", "OPENQUERY", "OPENDATASOURCE",
    "OPENXML",
})  # fmt: skip
"""Keywords a read-only SELECT never needs: data changes, procedures, sessions, outside data."""

_SET_OPERATORS = frozenset({"UNION", "ALL", "EXCEPT", "INTERSECT"})
_WORD = re.compile(r"[A-Za-z_@#][A-Za-z0-9_@#$]*")


class UnsafeSQLError(ValueError):
    """The SQL is not one read-only SELECT; the message says what was found."""


def check_select(sql: str) -> None:
    """Raise :class:`UnsafeSQLError` unless ``sql`` is a single read-only SELECT."""
    if len(sql.encode("utf-8")) > MAX_SQL_BYTES:
        raise UnsafeSQLError(f"is larger than {MAX_SQL_BYTES:,} bytes: not a query")
    code = _code_only(sql)
    body = code.strip()
    if body.endswith(";"):
        body = body[:-1].rstrip()
    if not body:
        raise UnsafeSQLError("holds no SQL statement")
    if ";" in body:
        raise UnsafeSQLError("holds more than one statement (a ';' before the end)")
    words = [(m.group().upper(), m.start()) for m in _WORD.finditer(body)]
    if not words or words[0][0] not in ("SELECT", "WITH"):
        raise UnsafeSQLError("must start with SELECT (or WITH ... SELECT)")
    for word, _ in words:
        if word in FORBIDDEN:
            raise UnsafeSQLError(f"uses {word}: only a read-only SELECT may run")
        if word.startswith(("SP_", "XP_")):
            raise UnsafeSQLError(f"calls the procedure {word.lower()}: only a SELECT may run")
    _check_one_statement(body, words)


def _check_one_statement(body: str, words: list[tuple[str, int]]) -> None:
    """T-SQL needs no ``;`` between statements: a second top-level SELECT starts another."""
    depth_at = _depths(body)
    top_level = 0
    previous = ""
    for word, pos in words:
        if word == "SELECT" and depth_at[pos] == 0 and previous not in _SET_OPERATORS:
            top_level += 1
            if top_level > 1:
                raise UnsafeSQLError("holds more than one statement (a second top-level SELECT)")
        previous = word
    if top_level == 0:
        raise UnsafeSQLError("has no top-level SELECT")


def _depths(body: str) -> list[int]:
    depths, depth = [], 0
    for ch in body:
        if ch == "(":
            depth += 1
        depths.append(depth)
        if ch == ")":
            depth -= 1
            if depth < 0:
                raise UnsafeSQLError("has a ')' without its '('")
    return depths


def _code_only(sql: str) -> str:
    """``sql`` with comments blanked, literals emptied and quoted identifiers replaced by ``q``.

    Each line is first cut at ``--`` and the lines joined, exactly as astroquery does
    before sending, so that what is checked is what the server receives.
    """
    sql = " ".join(line.split("--")[0] for line in sql.split("\n"))
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch, pair = sql[i], sql[i : i + 2]
        if pair == "/*":
            i = _skip_block_comment(sql, i)
            out.append(" ")
        elif ch == "'":
            i = _skip_quoted(sql, i, "'", "string literal")
            out.append("''")
        elif ch in ('"', "["):
            i = _skip_quoted(sql, i, '"' if ch == '"' else "]", "quoted name")
            out.append(" q ")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _skip_block_comment(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        pair = sql[i : i + 2]
        if pair == "/*":
            depth, i = depth + 1, i + 2
        elif pair == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise UnsafeSQLError("has a /* comment that is never closed")


def _skip_quoted(sql: str, start: int, close: str, what: str) -> int:
    i = start + 1
    while i < len(sql):
        if sql[i] == close:
            if sql[i + 1 : i + 2] == close:  # a doubled quote is an escaped one
                i += 2
                continue
            return i + 1
        i += 1
    raise UnsafeSQLError(f"has a {what} that is never closed")
