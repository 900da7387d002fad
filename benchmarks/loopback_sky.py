"""A loopback SkyServer stand-in for timing: a fixed delay per request, real HTTP on 127.0.0.1.

It answers the two endpoints predict uses on a region: the SQL search, for the
photometric box query of ``skysort.sources.skyserver.sql_photo`` only (TOP, the select
list, ra / dec / r limits, the objid cursor, ORDER BY objid; any other statement gets
SkyServer's error answer, never a silently wrong result), and ImgCutout, with the
JPEG prepared for each position (404 elsewhere). Every request waits ``latency_s``
first, as a distant server would; the test suite's richer fake (faults, other SQL)
lives in ``tests/fakesky.py``.
"""

from __future__ import annotations

import http.server
import io
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd

_SQL_PATH = re.compile(r"^/dr\d+/en/tools/search/x_results\.aspx$", re.I)
_CUTOUT_PATH = re.compile(r"^/dr\d+/SkyServerWS/ImgCutout/getjpeg$", re.I)
_NUMBER = r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
_BOX = re.compile(
    r"^SELECT TOP (\d+) (.*?) FROM PhotoObj AS p WHERE p\.type IN \(3, 6\) AND p\.clean = 1 "
    rf"AND p\.r >= {_NUMBER} AND p\.r <= {_NUMBER} AND p\.ra >= {_NUMBER} AND p\.ra <= {_NUMBER} "
    rf"AND p\.dec >= {_NUMBER} AND p\.dec <= {_NUMBER}(?: AND p\.objid > (\d+))? ORDER BY p\.objid$"
)


class LoopbackSky:
    """``catalog`` (objid, ra, dec, magnitudes) and ``images`` ((ra, dec) -> JPEG), served slowly."""

    def __init__(
        self, catalog: pd.DataFrame, images: dict[tuple[float, float], bytes], latency_s: float
    ) -> None:
        self.catalog = catalog.sort_values("objid", ignore_index=True)
        self.images = images
        self.latency_s = latency_s
        self.counts = {"sql": 0, "cutout": 0}
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.sky = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackSky:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer_sql(self, sql: str) -> str:
        found = _BOX.match(" ".join(sql.split()))
        if not found:
            return (
                '{"error_message": "the benchmark stand-in answers the photometric box query only"}'
            )
        top, columns, r_min, r_max, ra_min, ra_max, dec_min, dec_max, after = found.groups()
        c = self.catalog
        keep = (c["r"].between(float(r_min), float(r_max)) & c["ra"].between(float(ra_min), float(ra_max))
                & c["dec"].between(float(dec_min), float(dec_max)))  # fmt: skip
        if after is not None:
            keep &= c["objid"] > int(after)
        rows = c.loc[keep].head(int(top))
        out = {}
        for item in columns.split(","):
            name = item.strip()
            constant = re.fullmatch(r"(NULL|-?\d+) AS (\w+)", name)
            if constant:
                value = None if constant.group(1) == "NULL" else constant.group(1)
                out[constant.group(2)] = [value] * len(rows)
            else:
                out[name.removeprefix("p.")] = rows[name.removeprefix("p.")].to_numpy()
        body = io.StringIO()
        body.write("#Table1\n")
        pd.DataFrame(out).to_csv(body, index=False, lineterminator="\n")
        return body.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else a keep-alive client waits ~40 ms per answer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        sky: LoopbackSky = self.server.sky  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        kind = (
            "sql"
            if _SQL_PATH.match(parts.path)
            else "cutout"
            if _CUTOUT_PATH.match(parts.path)
            else ""
        )
        with sky._lock:
            sky._in_flight += 1
            sky.max_in_flight = max(sky.max_in_flight, sky._in_flight)
            if kind:
                sky.counts[kind] += 1
        try:
            time.sleep(sky.latency_s)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if kind == "sql":
                self._send(200, "text/plain", sky.answer_sql(query.get("cmd", "")).encode())
            elif kind == "cutout":
                image = sky.images.get((float(query["ra"]), float(query["dec"])))
                if image is None:
                    self._send(404, "text/html", b"<html><body>404</body></html>")
                else:
                    self._send(200, "image/jpeg", image)
            else:
                self._send(404, "text/html", b"<html><body>404</body></html>")
        finally:
            with sky._lock:
                sky._in_flight -= 1

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
