"""Cutout fetching at the limit: images/s against a loopback SkyServer with latency, and resume.

    python benchmarks/fetch.py                                 # 1, 8, 32, 64 in flight; 100k resume
    python benchmarks/fetch.py --concurrency 32 --skip-objects 10000 --profile

The stand-in server is ``tests/fakesky.py`` in a process of its own (so that it never
shares the client's GIL), with Nagle's algorithm off (``disable_nagle_algorithm``: else
each keep-alive answer waits for a delayed ACK), every answer delayed by ``--latency-ms``
and the JPEGs prepared in advance. For each concurrency it measures:

- a trivial client (threads with ``http.client``, nothing but GET and read): what the
  server and the loopback allow, against the ideal ``concurrency / latency``;
- skysort's fetcher (``fetch_cutouts``: validate, fingerprint, write atomically,
  manifest) in a fresh process: images/s, its share of the ideal, and the CPU it
  spends per image.

``--profile`` samples the fetcher at the first ``--concurrency`` value with py-spy
(on PATH, or ``--py-spy``) and keeps the functions that hold most samples. Last, the
resume: ``--skip-objects`` valid files already on disk, and the fetcher run again
(nothing to fetch; the server would answer, but nothing should ask it).
Writes ``docs/results/fetch.md`` (and ``.json``) through ``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from results import Table, add_history_options, profile_summary, write_results

ROOT = Path(__file__).resolve().parents[1]

SERVER = """
import sys, threading
from tests import fakesky

class Handler(fakesky._Handler):
    disable_nagle_algorithm = True   # answers go out at once, not after a delayed ACK

class Fake(fakesky.FakeSkyServer):
    def start(self):  # FakeSkyServer.start, with the handler above
        server = fakesky._Server(("127.0.0.1", 0), Handler)
        server.fake = self
        self._server = server
        self._url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()

latency = float(sys.argv[1])
catalog = fakesky.make_sky_catalog(int(sys.argv[2]), seed=1)
images = [fakesky.render_cutout(ra, dec, 64) for ra, dec in zip(catalog.ra[:16], catalog.dec[:16])]
with Fake(catalog=catalog.iloc[:0], cutout_delay_s=latency) as fake:
    fake.images = {(float(ra), float(dec)): images[k % 16]
                   for k, (ra, dec) in enumerate(zip(catalog.ra, catalog.dec))}
    print(fake.url, flush=True)
    sys.stdin.read()    # serve until the parent closes our stdin
"""

CHILD = """
import json, os, sys, tempfile, time
from skysort.config import Cutouts, Data, SkyServerSource
from skysort.sources.skyserver.cutouts import fetch_cutouts
from tests.fakesky import make_sky_catalog
url, concurrency, n, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
catalog = make_sky_catalog(n, seed=1)
cutouts = Cutouts(concurrency=concurrency, retries=1, backoff_s=0.01)
source = SkyServerSource(base_url=url)
cpu, wall = time.process_time(), time.perf_counter()
manifest = fetch_cutouts(catalog, folder, data=Data(image_size=64), cutouts=cutouts,
                         skyserver=source, min_pixel_std=2.0)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "ok": int((manifest.status == "ok").sum()),
                  "fetched": int((manifest.attempts > 0).sum())}))
"""


def environment() -> dict[str, str]:
    path = f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    return {**os.environ, "PYTHONPATH": path, "DO_NOT_TRACK": "1"}


class Server:
    """The fake SkyServer in a child process, for ``objects`` catalog positions."""

    def __init__(self, latency_s: float, objects: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(latency_s), str(objects)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=ROOT, env=environment())  # fmt: skip
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url:
            raise RuntimeError("the fake server did not start")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def trivial_rate(url: str, concurrency: int, n: int) -> float:
    """Images/s of threads doing nothing but GET and read, one keep-alive connection each."""
    sys.path.insert(0, str(ROOT))
    from tests.fakesky import make_sky_catalog

    catalog = make_sky_catalog(n, seed=1)
    base = urlsplit(url)
    path = "/dr17/SkyServerWS/ImgCutout/getjpeg?"
    queries = [path + urlencode({"ra": repr(float(ra)), "dec": repr(float(dec)), "width": "64",
                                 "height": "64"}) for ra, dec in zip(catalog.ra, catalog.dec)]  # fmt: skip
    lock, todo = threading.Lock(), collections.deque(queries)

    def work() -> None:
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
        while True:
            with lock:
                if not todo:
                    break
                query = todo.popleft()
            conn.request("GET", query)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200 and body, response.status
        conn.close()

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (time.perf_counter() - started)


def skysort_run(url: str, concurrency: int, n: int, folder: Path, wrap: list[str] = ()) -> dict:
    """One fetch_cutouts run in a fresh process; its wall and CPU seconds."""
    args = [*wrap, sys.executable, "-c", CHILD, url, str(concurrency), str(n), str(folder)]
    done = subprocess.run(args, cwd=ROOT, env=environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"fetch failed:\n{done.stderr[-3000:]}")
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def make_resume_files(folder: Path, n: int) -> None:
    """``n`` valid cutouts on disk, as a finished fetch made them (fingerprint and all)."""
    sys.path.insert(0, str(ROOT))
    from skysort.config import Cutouts, Data, SkyServerSource
    from skysort.data.images import cutout_path
    from skysort.sources.skyserver.cutout_request import request_fingerprint
    from tests.fakesky import make_sky_catalog, render_cutout

    try:  # what the fetcher writes: the JPEG with its request's fingerprint (and check stamp)
        from skysort.sources.skyserver.cutout_attempts import stored_cutout
    except ImportError:  # before the check stamp
        from skysort.data.images import with_fingerprint

        def stored_cutout(body: bytes, fingerprint: str, min_pixel_std: float) -> bytes:
            return with_fingerprint(body, fingerprint)

    catalog = make_sky_catalog(n, seed=1)
    data = Data(image_size=64)
    fingerprint = request_fingerprint(data, Cutouts(), SkyServerSource(base_url=URL_FOR_RESUME))
    bodies = [render_cutout(ra, dec, 64) for ra, dec in zip(catalog.ra[:64], catalog.dec[:64])]
    folder.mkdir(parents=True, exist_ok=True)
    for k, objid in enumerate(catalog.objid):
        stored = stored_cutout(bodies[k % len(bodies)], fingerprint, 2.0)
        cutout_path(folder, int(objid)).write_bytes(stored)


def earlier_table(before: list[str]) -> Table:
    """Earlier runs' skysort images/s (share of the ideal) per concurrency, and their resume."""
    runs = [(label, json.loads(Path(path).read_text()))
            for label, _, path in (b.partition("=") for b in before)]  # fmt: skip
    levels = sorted({row[0] for _, r in runs for row in r["figures"]["rows"]})
    rows = []
    for c in levels:
        cells = []
        for _, r in runs:
            got = [row for row in r["figures"]["rows"] if row[0] == c]
            cells.append(f"{got[0][5]} ({got[0][6]} %)" if got else "")
        rows.append([f"{c} in flight, images/s", *cells])
    rows.append(["resume: seconds for objects on disk",
                 *(" / ".join(f"{x[3]} s for {x[0]}" for x in r["figures"]["resume"])
                   for _, r in runs)])  # fmt: skip
    return Table(["figure", *(f"{label} ({r['date'][:10]})" for label, r in runs)], rows,
                 caption="Earlier runs of this script")  # fmt: skip


URL_FOR_RESUME = "http://127.0.0.1:9"
"""The resume run's server: files made under it must not be fetched again (port 9: nothing)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=8.0, help="ideal seconds per run")
    parser.add_argument("--skip-objects", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--repeat", type=int, default=2, help="runs per concurrency; the best")
    add_history_options(parser, "fetch")
    args = parser.parse_args()
    if args.rewrite:
        record = json.loads(args.rewrite.read_text())
        publish(record["figures"], [*record["notes"], *args.note], args.before,
                argv=shlex.split(record["command"])[2:],
                now=datetime.fromisoformat(record["date"]))  # fmt: skip
        return
    latency = args.latency_ms / 1000
    sizes = {c: max(20, int(args.seconds * c / latency)) for c in args.concurrency}
    rows, profile = [], []
    load = os.getloadavg()[0]
    server = Server(latency, max(sizes.values()))
    try:
        with tempfile.TemporaryDirectory(prefix="skysort-fetch-") as tmp:
            for c in args.concurrency:
                ideal = c / latency
                trivial = max(trivial_rate(server.url, c, sizes[c]) for _ in range(args.repeat))
                runs = [skysort_run(server.url, c, sizes[c], Path(tmp) / f"c{c}-{k}")
                        for k in range(args.repeat)]  # fmt: skip
                got = max(runs, key=lambda r: r["fetched"] / r["wall_s"])
                rate = got["fetched"] / got["wall_s"]
                rows.append([c, sizes[c], round(ideal), round(trivial, 1),
                             round(100 * trivial / ideal, 1), round(rate, 1),
                             round(100 * rate / ideal, 1),
                             round(1000 * got["cpu_s"] / max(1, got["fetched"]), 2)])  # fmt: skip
                print(rows[-1], flush=True)
            if args.profile:
                c = args.concurrency[0] if len(args.concurrency) == 1 else 32
                raw = Path(tmp) / "profile.txt"
                spy = [args.py_spy, "record", "--gil", "--format", "raw", "--rate", "250",
                       "-o", str(raw), "--"]  # fmt: skip
                # Three times the objects: the start-up (imports) is a small share of the samples.
                skysort_run(server.url, c, 3 * int(args.seconds * c / latency),
                            Path(tmp) / "profiled", wrap=spy)  # fmt: skip
                profile = profile_summary(raw)
                for row in profile:
                    print(row)
    finally:
        server.close()
    resume = []
    if args.skip_objects:
        with tempfile.TemporaryDirectory(prefix="skysort-resume-") as tmp:
            folder = Path(tmp) / "cutouts"
            make_resume_files(folder, args.skip_objects)
            got = skysort_run(URL_FOR_RESUME, 8, args.skip_objects, folder)
            resume = [[args.skip_objects, got["ok"], got["fetched"], round(got["wall_s"], 2),
                       round(got["cpu_s"], 2)]]  # fmt: skip
            print("resume", resume[0], flush=True)
    notes = [
        f"Ideal = in flight / latency. The server is tests/fakesky.py in its own process with "
        f"Nagle's algorithm off; the trivial client measures what it and the loopback allow. "
        f"Best of {args.repeat} runs per concurrency. Load average when it started: {load:.2f} "
        f"(the machine is shared with other work).",
        *args.note,
    ]
    figures = {"latency_ms": args.latency_ms, "rows": rows, "profile": profile, "resume": resume}
    publish(figures, notes, args.before)


def publish(figures: dict[str, Any], notes: list[str], before: list[str], **kw: Any) -> None:
    """Write the page from the run's figures (``before``: earlier runs, as one more table)."""
    profile = [[plain(name), *rest] for name, *rest in figures["profile"]]
    tables = [
        Table(["in flight", "objects", "ideal images/s", "trivial client images/s",
               "trivial % of ideal", "skysort images/s", "skysort % of ideal",
               "skysort CPU ms per image"], figures["rows"],
              caption=f"Fetching against the loopback server, {figures['latency_ms']:g} ms per "
              "answer", digits=1),
    ]  # fmt: skip
    if profile:
        tables.append(Table(["function (file)", "% samples in it", "% samples under it"], profile,
                            caption="Where the fetcher's CPU goes at 32 in flight (py-spy "
                            "--gil: samples of whichever thread holds the GIL, so waits on the "
                            "network are left out; the process's start-up is included)",
                            digits=1))  # fmt: skip
    if figures["resume"]:
        tables.append(Table(["objects on disk", "ok", "fetched", "seconds", "CPU seconds"],
                            figures["resume"], caption="A rerun with every file present",
                            digits=2))  # fmt: skip
    if before:
        tables.append(earlier_table(before))
    write_results("fetch", tables, title="Fetching cutouts at the limit", notes=notes,
                  figures={**figures, "profile": profile}, script="fetch.py", **kw)  # fmt: skip


def plain(name: str) -> str:
    """A function's name without the angle brackets Markdown would read as HTML."""
    return name.replace(".<locals>.", ".").replace("<", "").replace(">", "")


if __name__ == "__main__":
    main()
