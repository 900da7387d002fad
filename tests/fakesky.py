"""A loopback stand-in for SkyServer: real HTTP on 127.0.0.1, with injectable faults.

It speaks the two endpoints skysort uses:

- ``GET /dr{N}/en/tools/search/x_results.aspx?cmd=<sql>&format=csv`` answers from a
  DataFrame, understanding just enough of the SQL that
  ``skysort.sources.skyserver.sql_build`` builds (TOP, the select list, ``s.class IN``,
  ra / dec / r limits, the objid or sample-key cursor and ORDER BY) to page through it
  like the real server, and the photometric SQL of ``sql_photo`` and ``sql_match``
  (``p.objid IN``, ``p.type IN`` and ``p.clean`` where the table has those columns, a
  cone by ``fGetNearbyObjEq``, and the nearest object to each position of a
  ``VALUES`` list through ``CROSS APPLY``);
- ``GET /dr{N}/SkyServerWS/ImgCutout/getjpeg?ra=&dec=&...`` answers with a
  deterministic non-blank JPEG of the requested size (or prepared bytes).

Faults for cutouts are named strings, given per object (a list consumed one per
request for that object) or per request number (1-based, over all cutout
requests): ``"500"``, ``"503"``, ``"429"`` (with ``Retry-After: retry_after``),
``"404"``, ``"400"``, ``"slow"`` (sleep ``slow_s`` first), ``"html200"`` (an HTML
error page with status 200), ``"truncated"`` (half a JPEG, honest length),
``"short_read"`` (a Content-Length the body never reaches), ``"reset"`` (TCP RST,
no answer), ``"blank"`` (a flat image), ``"drip"`` (the image in small pieces
``drip_s`` apart: every read is quick, the whole body slow), ``"huge"`` (a JPEG
start followed by :data:`HUGE_BODY_BYTES` of filler, no Content-Length) and ``"ok"``.
"""

from __future__ import annotations

import http.server
import io
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from skysort.data.images import encode_jpeg
from skysort.data.schema import CATALOG_COLUMNS, conform

FIRST_OBJID = 1237648704577142822
"""A real SDSS DR objid; 64-bit ids one apart are indistinguishable as float64."""
FIRST_SPECOBJID = 10342726436483174400
"""Above 2**63: SpecObjID is numeric(20) in SDSS and may exceed int64."""
SQL_ERROR_TRIGGER = "BROKEN_SQL"
HUGE_BODY_BYTES = 17 * 2**20
"""Size of the ``huge`` fault's body: above skysort's 16 MiB cap on an image."""
DRIP_PIECE_BYTES = 64

_SQL_PATH = re.compile(r"^/dr(\d+)/en/tools/search/x_results\.aspx$", re.I)
_CUTOUT_PATH = re.compile(r"^/dr(\d+)/SkyServerWS/ImgCutout/getjpeg$", re.I)
_SAMPLE_KEY = re.compile(r"\(\(p\.objid % (\d+)\) \* (\d+)\) % (\d+)", re.I)
_NUMBER = r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
_CONE = re.compile(rf"JOIN dbo\.fGetNearbyObjEq\({_NUMBER}, {_NUMBER}, {_NUMBER}\) AS n", re.I)
_MATCH = re.compile(
    rf"FROM \(VALUES (.*?)\) AS w \(k, ra, dec\) CROSS APPLY \( SELECT TOP 1 .*? "
    rf"FROM dbo\.fGetNearbyObjEq\(w\.ra, w\.dec, {_NUMBER}\) AS n .*? "
    r"ORDER BY n\.distance, p\.objid \) AS m ORDER BY w\.k$",
    re.I,
)
_POSITION = re.compile(rf"\((\d+), {_NUMBER}, {_NUMBER}\)")


def make_sky_catalog(
    n: int = 30,
    seed: int = 0,
    *,
    first_objid: int = FIRST_OBJID,
    zwarning_rows: Iterable[int] = (),
    provenance: str = "fakesky",
) -> pd.DataFrame:
    """``n`` SDSS-like objects conforming to ``CATALOG_COLUMNS`` plus ``specobjid``.

    Objids are realistic 64-bit ids; the first few are consecutive (a float64 would
    merge them), the rest spaced irregularly. Rows in ``zwarning_rows`` get
    ``zWarning = 4`` (their class stays set: the client must blank it).
    """
    rng = np.random.default_rng(seed)
    steps = np.concatenate([np.ones(min(n, 4), dtype=np.int64), rng.integers(1, 2**20, n)])[:n]
    objids = [first_objid + int(s) for s in np.cumsum(steps) - 1]
    classes = np.array(["GALAXY", "STAR", "QSO"])[np.arange(n) % 3]
    r = rng.uniform(15.0, 21.5, n)
    colour = {"GALAXY": (1.6, 0.9), "STAR": (1.3, 0.5), "QSO": (0.3, 0.2)}
    ug = np.array([colour[c][0] for c in classes]) + rng.normal(0, 0.1, n)
    gr = np.array([colour[c][1] for c in classes]) + rng.normal(0, 0.1, n)
    zwarning = np.zeros(n, dtype=np.int64)
    zwarning[list(zwarning_rows)] = 4
    frame = pd.DataFrame(
        {
            "objid": np.array(objids, dtype=np.int64),
            "ra": np.round(rng.uniform(120.0, 240.0, n), 6),
            "dec": np.round(rng.uniform(-5.0, 60.0, n), 6),
            "u": r + gr + ug,
            "g": r + gr,
            "r": r,
            "i": r - 0.3,
            "z": r - 0.45,
            "fiberMag_g": r + gr + 0.4,
            "redshift": np.where(classes == "STAR", 0.0001, np.where(classes == "QSO", 1.6, 0.1)),
            "zWarning": zwarning,
            "class": pd.array(classes, dtype="string"),
            "provenance": provenance,
        }
    )
    frame = conform(frame, CATALOG_COLUMNS)
    frame["specobjid"] = pd.array([FIRST_SPECOBJID + 7 * k for k in range(n)], dtype="UInt64")
    return frame


def render_cutout(ra: float, dec: float, size: int) -> bytes:
    """A deterministic, non-blank JPEG for a position: a Gaussian blob on noise."""
    seed = zlib.crc32(struct.pack("<dd", ra, dec))
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    width = size * rng.uniform(0.05, 0.15)
    blob = 180 * np.exp(-(xx**2 + yy**2) / (2 * width**2))
    image = blob[..., None] * rng.uniform(0.6, 1.0, 3) + rng.normal(25, 6, (size, size, 3))
    return encode_jpeg(np.clip(image, 0, 255).astype(np.uint8))


@dataclass
class Request:
    """One request the server saw."""

    path: str
    query: dict[str, str]
    started: float  # time.monotonic() when the handler began
    fault: str = "ok"


@dataclass
class FakeSkyServer:
    """A threaded HTTP server on 127.0.0.1 (port 0); use as a context manager.

    Change its attributes between requests to inject faults; read ``requests``
    (every request, in arrival order) to see what the client asked for.
    """

    catalog: pd.DataFrame = field(default_factory=make_sky_catalog)
    images: dict[tuple[float, float], bytes] = field(default_factory=dict)
    object_faults: dict[int, list[str]] = field(default_factory=dict)
    request_faults: dict[int, str] = field(default_factory=dict)
    retry_after: str | None = "1"
    slow_s: float = 2.0
    drip_s: float = 0.05
    cutout_delay_s: float = 0.0
    sql_delay_s: float = 0.0
    sql_status: int | None = None
    sql_html: bool = False
    sql_error_trigger: str = SQL_ERROR_TRIGGER
    requests: list[Request] = field(default_factory=list)
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._cutouts_seen = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._url = ""
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def __enter__(self) -> FakeSkyServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._url, "start the server first"
        return self._url

    # -- what the client did -----------------------------------------------------
    def sql_requests(self) -> list[Request]:
        return [r for r in self.requests if _SQL_PATH.match(r.path)]

    def cutout_requests(self) -> list[Request]:
        return [r for r in self.requests if _CUTOUT_PATH.match(r.path)]

    def objid_at(self, ra: float, dec: float) -> int | None:
        match = self.catalog.index[(self.catalog["ra"] == ra) & (self.catalog["dec"] == dec)]
        return int(self.catalog.loc[match[0], "objid"]) if len(match) else None

    def fetched_objids(self) -> list[int]:
        """The objid of every cutout request, in arrival order (repeats included)."""
        out = []
        for r in self.cutout_requests():
            objid = self.objid_at(float(r.query["ra"]), float(r.query["dec"]))
            out.append(-1 if objid is None else objid)
        return out

    # -- answers -----------------------------------------------------------------
    def _next_fault(self, objid: int | None) -> str:
        with self._lock:
            self._cutouts_seen += 1
            fault = self.request_faults.get(self._cutouts_seen)
            queue = self.object_faults.get(objid) if objid is not None else None
            if fault is None and queue:
                fault = queue.pop(0)
            return fault or "ok"

    def answer_sql(self, sql: str) -> tuple[int, str, str]:
        """(status, content type, body) for one SQL search."""
        if self.sql_delay_s:
            time.sleep(self.sql_delay_s)
        if self.sql_status is not None:
            return self.sql_status, "text/html", f"<html><body>HTTP {self.sql_status}</body></html>"
        if self.sql_html:
            return 200, "text/html", _HTML_ERROR
        if self.sql_error_trigger and self.sql_error_trigger in sql:
            return (
                200,
                "text/plain",
                _sql_error(f"Incorrect syntax near '{self.sql_error_trigger}'."),
            )
        try:
            table = run_sql(self.catalog, sql)
        except _SqlError as exc:
            return 200, "text/plain", _sql_error(str(exc))
        buf = io.StringIO()
        buf.write("#Table1\n")
        table.to_csv(buf, index=False, lineterminator="\n")
        return 200, "text/plain", buf.getvalue()


_HTML_ERROR = (
    "<html><head>\n<title>Skyserver Error</title>\n</head><body bgcolor=white>\n"
    "<h2>An error occured</h2></body></html>"
)


def _sql_error(message: str) -> str:
    # SkyServer's error answers carry an ``error_message`` field; astroquery keys on it.
    escaped = message.replace('"', '\\"')
    return f'{{"error_code": 500, "error_type": "SqlException", "error_message": "{escaped}"}}'


class _SqlError(ValueError):
    pass


def run_sql(catalog: pd.DataFrame, sql: str) -> pd.DataFrame:
    """Evaluate the subset of SQL that skysort builds against ``catalog``."""
    text = " ".join(sql.split())
    head = re.match(r"SELECT\s+(?:TOP\s+(\d+)\s+)?(.*?)\s+FROM\s", text, re.I)
    if not head:
        raise _SqlError("Incorrect syntax: expected SELECT ... FROM")
    top = int(head.group(1)) if head.group(1) else None
    match = _MATCH.search(text)
    if match:  # positions matched to their nearest object: a table of its own
        catalog = _nearest_objects(_photometric(catalog, text, r_range=True), match)
    lower = {c.lower(): c for c in catalog.columns}
    select: list[tuple[str, str]] = []  # (source column, output name)
    constants: dict[str, str | None] = {}  # output name -> a constant (NULL, 0, '')
    for item in head.group(2).split(","):
        constant = re.fullmatch(r"\s*(NULL|'[^']*'|-?\d+)\s+AS\s+(\w+)\s*", item, re.I)
        if constant:
            value = constant.group(1)
            constants[constant.group(2)] = None if value.upper() == "NULL" else value.strip("'")
            select.append(("", constant.group(2)))
            continue
        m = re.fullmatch(r"\s*(?:\w+\.)?(\w+)(?:\s+AS\s+(\w+))?\s*", item, re.I)
        if not m:
            raise _SqlError(f"Incorrect syntax near '{item.strip()}'.")
        name, alias = m.group(1), m.group(2)
        source = lower.get((alias or name).lower())
        if source is None:
            raise _SqlError(f"Invalid column name '{alias or name}'.")
        select.append((source, alias or name))
    if match:
        return _project(catalog, select, constants)

    rows = _photometric(catalog, text)
    classes = re.search(r"s\.class IN \(([^)]*)\)", text, re.I)
    if classes:
        wanted = {c.strip().strip("'").upper() for c in classes.group(1).split(",")}
        rows = rows[rows["class"].astype("string").str.upper().isin(wanted).fillna(False)]
    listed = re.search(r"p\.objid IN \(([^)]*)\)", text, re.I)
    if listed:
        rows = rows[rows["objid"].isin([int(x) for x in listed.group(1).split(",")])]
    cone = _CONE.search(text)
    if cone:
        ra, dec, radius = (float(x) for x in cone.groups())
        rows = rows[_arcmin(rows["ra"], rows["dec"], ra, dec) <= radius]
    for column, op, value in re.findall(rf"p\.(ra|dec|r) (>=|<=|>|<) {_NUMBER}", text, re.I):
        series = rows[lower[column.lower()]]
        bound = float(value)
        keep = {
            ">=": series >= bound,
            "<=": series <= bound,
            ">": series > bound,
            "<": series < bound,
        }[op]
        rows = rows[keep]

    objids = [int(x) for x in rows["objid"]]
    key = _SAMPLE_KEY.search(text)
    if key:
        modulus, multiplier = int(key.group(1)), int(key.group(2))
        keys = [((o % modulus) * multiplier) % modulus for o in objids]
        cursor = re.search(r"% \d+ > (\d+) OR \(.*?% \d+ = (\d+) AND p\.objid > (\d+)\)", text)
        order = sorted(range(len(objids)), key=lambda k: (keys[k], objids[k]))
        if cursor:
            after = (int(cursor.group(1)), int(cursor.group(3)))
            order = [k for k in order if (keys[k], objids[k]) > after]
    else:
        cursor = re.search(r"p\.objid > (\d+)", text, re.I)
        order = list(range(len(objids)))
        if cursor:
            order = [k for k in order if objids[k] > int(cursor.group(1))]
        if re.search(r"ORDER BY p\.objid", text, re.I):
            order.sort(key=lambda k: objids[k])
    if top is not None:
        order = order[:top]
    return _project(rows.iloc[order], select, constants)


def _project(
    picked: pd.DataFrame, select: list[tuple[str, str]], constants: dict[str, str | None]
) -> pd.DataFrame:
    return pd.DataFrame(
        {out: [constants[out]] * len(picked) if out in constants else picked[src].to_numpy()
         for src, out in select}
    )  # fmt: skip


def _photometric(rows: pd.DataFrame, text: str, r_range: bool = False) -> pd.DataFrame:
    """``p.type IN (...)`` and ``p.clean = n``, where the table has those columns (else all pass).

    ``r_range``: the ``p.r`` limits too (inside a ``CROSS APPLY``; elsewhere they are
    applied with the other limits).
    """
    types = re.search(r"p\.type IN \(([^)]*)\)", text, re.I)
    if types and "type" in rows.columns:
        rows = rows[rows["type"].isin([int(x) for x in types.group(1).split(",")])]
    clean = re.search(r"p\.clean = (\d+)", text, re.I)
    if clean and "clean" in rows.columns:
        rows = rows[rows["clean"] == int(clean.group(1))]
    for op, value in re.findall(rf"p\.r (>=|<=) {_NUMBER}", text, re.I) if r_range else ():
        rows = rows[rows["r"] >= float(value) if op == ">=" else rows["r"] <= float(value)]
    return rows


def _nearest_objects(rows: pd.DataFrame, match: re.Match[str]) -> pd.DataFrame:
    """Per position ``k``: its nearest row within the radius (arcmin), with ``k`` and ``distance``."""
    radius = float(match.group(2))
    found = []
    for k, ra, dec in _POSITION.findall(match.group(1)):
        distance = _arcmin(rows["ra"], rows["dec"], float(ra), float(dec))
        near = rows.assign(k=int(k), distance=distance)[distance <= radius]
        if len(near):
            found.append(near.sort_values(["distance", "objid"]).iloc[:1])
    if not found:
        return rows.iloc[:0].assign(k=pd.Series(dtype="int64"), distance=pd.Series(dtype=float))
    return pd.concat(found).sort_values("k")


def _arcmin(ra: pd.Series, dec: pd.Series, ra0: float, dec0: float) -> np.ndarray:
    """Angular distance in arcminutes, from the chord between unit vectors (not skysort's own)."""
    a, d = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    chord = np.sqrt((np.cos(d) * np.cos(a) - np.cos(d0) * np.cos(a0)) ** 2
                    + (np.cos(d) * np.sin(a) - np.cos(d0) * np.sin(a0)) ** 2
                    + (np.sin(d) - np.sin(d0)) ** 2)  # fmt: skip
    return np.degrees(2 * np.arcsin(np.clip(chord / 2, 0, 1))) * 60


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSkyServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and client timeouts are expected here


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        record = Request(parts.path, query, time.monotonic())
        with fake._lock:
            fake.requests.append(record)
            fake._in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
        try:
            if _SQL_PATH.match(parts.path):
                status, ctype, body = fake.answer_sql(query.get("cmd", ""))
                self._send(status, ctype, body.encode())
            elif _CUTOUT_PATH.match(parts.path):
                self._cutout(fake, query, record)
            else:
                self._send(404, "text/html", b"<html><body>404 Not Found</body></html>")
        finally:
            with fake._lock:
                fake._in_flight -= 1

    def _send(
        self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send a TCP RST: the client sees "connection reset".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _cutout(self, fake: FakeSkyServer, query: dict[str, str], record: Request) -> None:
        try:
            ra, dec = float(query["ra"]), float(query["dec"])
            size = int(query.get("width", "64"))
        except (KeyError, ValueError):
            self._send(400, "text/html", b"<html><body>bad parameters</body></html>")
            return
        fault = fake._next_fault(fake.objid_at(ra, dec))
        record.fault = fault
        if fake.cutout_delay_s:
            time.sleep(fake.cutout_delay_s)
        image = fake.images.get((ra, dec)) or render_cutout(ra, dec, size)
        if fault == "slow":
            time.sleep(fake.slow_s)
        if fault in ("ok", "slow"):
            self._send(200, "image/jpeg", image)
        elif fault in ("500", "503", "429", "404", "400"):
            status = int(fault)
            headers = (
                {"Retry-After": fake.retry_after} if status == 429 and fake.retry_after else {}
            )
            self._send(
                status, "text/html", f"<html><body>HTTP {status}</body></html>".encode(), headers
            )
        elif fault == "html200":
            self._send(200, "text/html", _HTML_ERROR.encode())
        elif fault == "truncated":
            self._send(200, "image/jpeg", image[: len(image) // 2])
        elif fault == "short_read":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image[: len(image) // 2])
            self.wfile.flush()
            self._reset()
        elif fault == "reset":
            self._reset()
        elif fault == "blank":
            self._send(200, "image/jpeg", encode_jpeg(np.full((size, size, 3), 9, dtype=np.uint8)))
        elif fault == "drip":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            for start in range(0, len(image), DRIP_PIECE_BYTES):
                self.wfile.write(image[start : start + DRIP_PIECE_BYTES])
                self.wfile.flush()
                time.sleep(fake.drip_s)
        elif fault == "huge":
            # No Content-Length: the client learns the size only by reading.
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(image[:4])
            filler = bytes(2**20)
            for _ in range(HUGE_BODY_BYTES // len(filler)):
                self.wfile.write(filler)
        else:
            raise ValueError(f"unknown fault {fault!r}")


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
