"""Write docs/reliability.md: every fault and bad input tried, with what a user sees.

Each scenario runs the real code on a fault (a loopback SkyServer stand-in with
injected faults, damaged files, bad parameters) and records the message or final
status it produced, so the page states what the code does today, not what it once
did. Offline; about a minute and a half.

    python docs/reliability.py            # rewrites docs/reliability.md
    python docs/reliability.py --check    # exit 1 if the page is out of date
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/fakesky.py and tests/factories.py

from skysort.config import (  # noqa: E402
    Clean,
    Cutouts,
    Data,
    Params,
    Paths,
    SkyServerSource,
    load_params,
)
from skysort.data.atomic import write_parquet  # noqa: E402
from skysort.pipeline.registry import run_stage  # noqa: E402
from skysort.sources.skyserver.cutouts import fetch_cutouts  # noqa: E402
from skysort.sources.skyserver.sql_response import parse_response  # noqa: E402
from tests.factories import bomb_jpeg, make_catalog, write_cutouts  # noqa: E402
from tests.fakesky import FakeSkyServer, closed_port_url, make_sky_catalog  # noqa: E402

OUT = ROOT / "docs" / "reliability.md"
PARAMS = Path("params.yaml")  # relative: the page names it as a user would


def _short(text: str, limit: int = 220) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip().replace(str(ROOT), "<project>")
    text = re.sub(r"/tmp/[\w./-]+", "<tmp>", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    text = re.sub(r"port=\d+", "port=<port>", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error(fn: Callable[[], object]) -> str:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the message is what we record
        return f"{type(exc).__name__}: {_short(exc)}"
    return "(accepted)"


# ----------------------------------------------------------------------------- parameters

BAD_OVERRIDES = [
    ("train.epochs=0", "a number out of range"),
    ("train.epochss=3", "a misspelt key"),
    ("data.image_size=32", "a cutout smaller than SkyServer serves"),
    ("data.features=[u, g, q]", "an unknown feature"),
    ("query.ra_min=300 --set query.ra_max=200", "an empty sky box (ra_min above ra_max)"),
    ("schedule.cron='61 * * * *'", "a bad cron expression"),
    ("schedule.timezone=Mars/Olympus", "an unknown time zone"),
    ("balance.sampling_strategy=0.5", "a ratio with three classes"),
    ("train.conv_filters=[]", "no convolution layers"),
    ("train.weights=missing.h5", "a weights file that is not there"),
    ("query.sql_file=queries/example.sql", "an SQL file with the synthetic source"),
    ("source.skyserver.base_url=http://example.org", "plain http to another host"),
    ("source.skyserver.base_url=https://", "a URL without a host"),
    ("cutouts.retries=-1", "a negative retry count"),
    ("clean.max_drop_fraction=2", "a drop budget above 1"),
    (
        "task=multilabel --set train.monitor=val_accuracy",
        "accuracy to watch in the multilabel task",
    ),
    ("paths.plots=reports", "an output folder holding the other reports"),
    ("paths.cutouts_dir=data/external", "cutouts written over your own files"),
    ("paths.clean_report=../escape/clean.json", "an output outside the project"),
]


def parameter_rows() -> list[tuple[str, str, str]]:
    rows = []
    for override, what in BAD_OVERRIDES:
        sets = [s.strip() for s in override.split("--set")]
        message = _error(lambda sets=sets: load_params(PARAMS, sets))
        rows.append((what, "`--set " + " --set ".join(sets) + "`", _short(message)))
    return rows


def params_file_rows(tmp: Path) -> list[tuple[str, str, str]]:
    cases = {
        "an empty params file": b"# nothing here\n",
        "a key written twice": b"seed: 1\nseed: 2\n",
        "bytes that are not UTF-8": b"seed: \xff\xfe\n",
        "YAML that does not parse": b"seed: [1, 2\n",
    }
    rows = []
    for what, body in cases.items():
        path = tmp / "bad-params.yaml"
        path.write_bytes(body)
        rows.append((what, "`--params bad-params.yaml`", _error(lambda p=path: load_params(p))))
    return rows


# ----------------------------------------------------------------------------- SkyServer SQL


def sql_rows() -> list[tuple[str, str, str]]:
    url = "http://127.0.0.1:8/x_results.aspx"
    cases = [
        ("HTTP 500", lambda: parse_response(500, "<html>oops</html>", url)),
        ("HTTP 429 (rate limited)", lambda: parse_response(429, "slow down", url)),
        (
            "an HTML page with status 200",
            lambda: parse_response(200, "<html><body>Error</body></html>", url),
        ),
        (
            "an SQL error text",
            lambda: parse_response(200, "error_message: Incorrect syntax near 'FROM'", url),
        ),
        ("a body that is not CSV", lambda: parse_response(200, "hello there", url)),
    ]
    rows = [(what, "SQL search", _error(fn)) for what, fn in cases]

    def unreachable() -> None:
        params = load_params(PARAMS, ["source.kind=skyserver", f"source.skyserver.base_url={closed_port_url()}",
                                      "source.skyserver.timeout_s=2"])  # fmt: skip
        run_stage("query", params)

    def empty(sky_url: str) -> None:
        params = load_params(PARAMS, ["source.kind=skyserver", f"source.skyserver.base_url={sky_url}",
                                      "query.r_min=14.0", "query.r_max=14.001",
                                      "source.skyserver.min_query_interval_s=0"])  # fmt: skip
        run_stage("query", params)

    rows.append(("nothing listening on the server's port", "query stage", _error(unreachable)))
    with FakeSkyServer(catalog=make_sky_catalog(20)) as sky:
        rows.append(
            ("a query that matches no objects", "query stage", _error(lambda: empty(sky.url)))
        )
    return rows


# ----------------------------------------------------------------------------- cutouts

CUTOUT_FAULTS = [
    ("500", 2, "HTTP 500 twice, then the image"),
    ("500", 9, "HTTP 500 on every attempt"),
    ("429", 2, "HTTP 429 twice (Retry-After), then the image"),
    ("404", 1, "HTTP 404 (no image there)"),
    ("html200", 9, "an HTML error page with status 200"),
    ("truncated", 9, "a body cut short (Content-Length not reached)"),
    ("reset", 9, "the connection reset"),
    ("blank", 1, "a blank (flat) image"),
    ("drip", 1, "a body that trickles past the per-request deadline"),
    ("huge", 1, "a body over the 16 MiB cap, no Content-Length"),
]


def cutout_rows(tmp: Path) -> list[tuple[str, str, str]]:
    catalog = make_sky_catalog(len(CUTOUT_FAULTS) + 2)
    objids = catalog["objid"].tolist()
    faults = {objids[i]: [fault] * times for i, (fault, times, _) in enumerate(CUTOUT_FAULTS)}
    cutouts = Cutouts(concurrency=4, retries=3, backoff_s=0.01, timeout_s=2, deadline_s=1.0)
    with FakeSkyServer(catalog=catalog, object_faults=faults, retry_after="0", drip_s=0.2) as sky:
        manifest = fetch_cutouts(
            catalog, tmp / "cutouts", data=Data(), cutouts=cutouts,
            skyserver=SkyServerSource(base_url=sky.url), min_pixel_std=Clean().min_pixel_std,
        )  # fmt: skip
    by_id = manifest.set_index("objid")
    rows = []
    for i, (_, _, what) in enumerate(CUTOUT_FAULTS):
        row = by_id.loc[objids[i]]
        seen = f"`{row['status']}` after {row['attempts']} attempt(s)"
        if row["status"] != "ok":
            seen += f": {_short(row['error'], 160)}"
        rows.append((what, "cutouts stage", seen))
    return rows


# ----------------------------------------------------------------------------- clean


def _clean(tmp: Path, catalog: pd.DataFrame, manifest: pd.DataFrame) -> dict:
    write_parquet(tmp / "catalog.parquet", catalog)
    write_parquet(tmp / "manifest.parquet", manifest)
    paths = Paths(catalog=tmp / "catalog.parquet", manifest=tmp / "manifest.parquet",
                  cutouts_dir=tmp / "cutouts", dataset=tmp / "out/dataset.parquet",
                  images=tmp / "out/images.npy", clean_report=tmp / "out/clean.json")  # fmt: skip
    return run_stage("clean", Params(paths=paths, data=Data(image_size=64), seed=1))


def clean_rows(tmp: Path) -> list[tuple[str, str, str]]:
    catalog = make_catalog(40)
    catalog.loc[5, "g"] = np.nan
    manifest = write_cutouts(catalog, tmp / "cutouts", size=64, missing=(1,), corrupt=(2,),
                             blank=(3,), html=(4,))  # fmt: skip
    (tmp / "cutouts" / f"{catalog.objid[6]}.jpg").unlink()
    (tmp / "cutouts" / f"{catalog.objid[7]}.jpg").write_bytes(bomb_jpeg())
    good = (tmp / "cutouts" / f"{catalog.objid[9]}.jpg").read_bytes()
    (tmp / "cutouts" / f"{catalog.objid[8]}.jpg").write_bytes(good)
    dropped = {
        d: r for d, r in (tuple(x.values())[:2] for x in _clean(tmp, catalog, manifest)["dropped"])
    }
    what = {
        1: "the server had no image (404)",
        2: "a truncated JPEG on disk",
        3: "a blank image on disk",
        4: "an HTML page saved as .jpg",
        5: "a missing magnitude",
        6: "a cutout deleted from disk after the fetch",
        7: "a JPEG whose header claims 60000×60000 pixels",
        8: "a file replaced after the fetch (sha256 differs)",
    }
    rows = [
        (w, "clean stage", f"row dropped, reason `{dropped[int(catalog.objid[i])]}`")
        for i, w in what.items()
    ]
    rows.append(("a manifest listing 10 of 40 objects", "clean stage",
                 _error(lambda: _clean(tmp, catalog, manifest.iloc[:10]))))  # fmt: skip
    return rows


# ----------------------------------------------------------------------------- your own files


def _query_files(tmp: Path, catalog: Path, **files: object) -> None:
    from skysort.config import FilesSource, Source, Train

    source = Source(kind="files", files=FilesSource(images="none", **files))
    data = Data(features=("flux",), classes=("cat", "dog"), labels=("a", "b"))
    paths = Paths().under(tmp / "files-out").model_copy(update={"source_catalog": catalog})
    task = "multilabel" if files.get("label_column", "") is None else "multiclass"
    run_stage("query", Params(paths=paths, source=source, data=data, task=task,
                              train=Train(model="tabular")))  # fmt: skip


def files_rows(tmp: Path) -> list[tuple[str, str, str]]:
    from PIL import Image

    from skysort.data.images import decode_jpeg, encode_jpeg
    from skysort.sources.files.catalog import IMAGE_SOURCE
    from skysort.sources.files.images import copy_images

    rows = []
    table = "id,flux,kind\n" + "".join(
        f"{i},{i}.5,{'cat' if i % 2 else 'dog'},\n" for i in range(9)
    )
    cases = {
        "a trailing comma on every data row": table,
        "an empty CSV file": "",
        "no known label in any row": "id,flux,a,b\n" + "".join(f"{i},{i},,NaN\n" for i in range(9)),
    }
    for what, text in cases.items():
        csv = tmp / "files.csv"
        csv.write_text(text)
        label = None if what.startswith("no known") else "kind"
        rows.append((what, "query stage",
                     _error(lambda c=csv, k=label: _query_files(tmp, c, id_column="id",
                                                                label_column=k))))  # fmt: skip
    ids = pd.DataFrame({"id": np.array([1, 2**64 - 1], dtype=np.uint64), "flux": [1.0, 2.0],
                        "kind": ["cat", "dog"]})  # fmt: skip
    ids.to_parquet(tmp / "ids.parquet")
    rows.append(("a Parquet id of 2^64 - 1", "query stage",
                 _error(lambda: _query_files(tmp, tmp / "ids.parquet", id_column="id",
                                             label_column="kind"))))  # fmt: skip

    images, outside = tmp / "images", tmp / "outside"
    (images / "sub").mkdir(parents=True)
    outside.mkdir()
    gradient = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(gradient).save(images / "deep.png")
    Image.fromarray(np.full((8, 8), 1e6, dtype=np.float32)).save(images / "float.tiff")
    Image.fromarray(gradient.astype(np.uint8)).save(outside / "secret.png")
    (images / "link.png").symlink_to(outside / "secret.png")
    names = {
        "a link out of the images folder": "link.png",
        "an image path that is a folder": "sub",
        "an image path holding a NUL byte": "bad\x00.png",
        "a 300-character file name": "x" * 300 + ".png",
        "a float TIFF with pixels up to 1e6": "float.tiff",
        "a 16-bit grey PNG (0-65535 gradient)": "deep.png",
    }
    catalog = pd.DataFrame(
        {"objid": np.arange(1, len(names) + 1), IMAGE_SOURCE: list(names.values())}
    )
    manifest = copy_images(catalog, images, tmp / "files-cutouts", size=64, resize="pad")
    for what, (objid, status, error) in zip(
        names, manifest[["objid", "status", "error"]].itertuples(index=False), strict=True
    ):
        if status == "ok":
            with Image.open(tmp / "files-cutouts" / f"{objid}.jpg") as made:
                error = f"mean pixel {np.asarray(made).mean():.0f} of 255 (scaled, not clipped)"
        rows.append((what, "cutouts stage", _short(f"`{status}`: {error}")))
    red = encode_jpeg(np.full((64, 64, 3), (255, 0, 0), dtype=np.uint8))
    rows.append(("a single-colour (flat red) image", "clean stage",
                 _error(lambda: decode_jpeg(red, min_pixel_std=2.0))))  # fmt: skip
    return rows


# ----------------------------------------------------------------------------- a killed command


def _children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid`` (from /proc): pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split() if stat else []
        if fields and int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def _wait(probe: Callable[[], object], seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def kill_rows(tmp: Path) -> list[tuple[str, str, str]]:
    """``kill -9`` of a stage waiting on a SkyServer that never answers, without a server."""
    from skysort.pipeline.lifeline import is_running, start_time

    if not Path("/proc/self/stat").exists():
        return [
            ("`kill -9` of a running stage", "temporary Prefect server", "(not tried: no /proc)")
        ]
    shutil.copy(ROOT / "params.yaml", tmp / "params.yaml")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp / "prefect-home")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        stage = subprocess.Popen(
            [sys.executable, "-m", "skysort.flows.cli", "stage", "query", "--set",
             "source.kind=skyserver", "--set", f"source.skyserver.base_url={url}"],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def both() -> dict[int, str]:  # the server and the watcher tying it to the stage
            found = _children(stage.pid)
            names = " ".join(found.values())
            return found if "prefect.server.api.server" in names and "lifeline" in names else {}

        helpers: dict[int, str] = {}
        started: dict[int, str | None] = {}
        try:
            helpers = _wait(both, 180) or {}  # type: ignore[assignment]
            started = {p: start_time(p) for p in helpers}
            stage.kill()
            stage.wait()
            ended = _wait(lambda: not any(is_running(p, started[p]) for p in helpers), 60)
        finally:
            if stage.poll() is None:
                stage.kill()
            for pid in helpers:
                if is_running(pid, started.get(pid)):
                    os.kill(pid, signal.SIGKILL)
    if not helpers:
        seen = "the temporary server did not start within 180 s"
    elif ended:
        seen = ("the stage is gone; its temporary Prefect server (uvicorn) was ended by "
                "the lifeline watcher, which then ended too: nothing left running")  # fmt: skip
    else:
        seen = "the temporary Prefect server was still running 60 s after the kill"
    return [("`kill -9` of `skysort stage query` while it waits on SkyServer, no PREFECT_API_URL",
             "temporary Prefect server", seen)]  # fmt: skip


# ----------------------------------------------------------------------------- page


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def build() -> str:
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            sections = [
                ("Bad parameters (refused at load time, before anything runs)", parameter_rows()),
                ("Bad parameter files", params_file_rows(Path(tmp))),
                ("SkyServer's SQL search", sql_rows()),
                (
                    "Cutout downloads (a loopback SkyServer with injected faults)",
                    cutout_rows(Path(tmp)),
                ),
                ("Damaged or missing files at the clean stage", clean_rows(Path(tmp))),
                ("Your own catalog and images (source.kind: files)", files_rows(Path(tmp))),
                ("A killed command", kill_rows(Path(tmp))),
            ]
        finally:
            os.chdir(cwd)
    lines = [
        "# Reliability: every fault and bad input tried, and what you see",
        "",
        "Generated by `python docs/reliability.py` (offline, a minute or two): each row ran the",
        "real code on the fault and recorded the message or final status. `--check` fails when",
        "this page is out of date. The test suite tries these faults and more (`tests/`).",
        "",
        "Promises: every object ends with a final status in the manifest; nothing is",
        "half-written (temp file, then rename); a resumed fetch refetches nothing valid; a",
        "file made under another request (server, release, scale, options, size) is made",
        "again; credentials in URLs never reach logs, manifests or provenance; an error that",
        "cannot succeed is not retried; a command killed even with `kill -9` takes its",
        "temporary Prefect server with it (a lifeline process ends it).",
    ]
    for title, rows in sections:
        lines += ["", f"## {title}", "", "| fault | where | what you see |", "| --- | --- | --- |"]
        lines += [f"| {a} | {b} | {c.replace('|', '/')} |" for a, b, c in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/reliability.md is stale")
    args = parser.parse_args()
    text = build()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python docs/reliability.py", file=sys.stderr)
            return 1
        print(f"{OUT} is up to date")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
