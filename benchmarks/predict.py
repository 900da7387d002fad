"""Predict: objects per second end to end, peak memory, the model step, and against a slow server.

    python benchmarks/predict.py                          # every part
    python benchmarks/predict.py --objects 2000 10000     # quicker offline regions
    python benchmarks/predict.py --only loopback          # one part; the others' figures are kept

Builds the quickstart's model (fusion, small CNN; untrained: speed does not depend on
the weights) with its contract in a temporary project, then runs the ``predict``
stage (the library alone, no Prefect) in a fresh process per region size, and
reports wall time, objects per second and the process's peak RSS. Memory should stay
flat as the region grows: only one batch of cutouts is ever in memory. Last, the
classification step alone: the model fed batch by batch from decoded cutouts
(``predict_arrays``, as predict feeds it) against the same model's ``predict`` on one
tensor already in memory.

``loopback``: the same model on a region of 2,000 objects served by a SkyServer stand-in
on 127.0.0.1 (``loopback_sky.py``) that waits ``--latency-ms`` (100) before every
answer: the SQL search and each cutout, fetched ``cutouts.concurrency`` (the
configured 8) at a time. At most ``concurrency / latency`` cutouts a second can come
back (80 here). Imports are warmed before the clock starts.

Each part's tables replace that part's in ``docs/results/predict.json`` and ``.md``;
the other parts' figures stay, each with the command and date that measured it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from results import RESULTS_DIR, Table, write_results

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from pathlib import Path
from skysort.config import Params, Paths, Predict
from skysort.pipeline.registry import run_stage
root, n, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
paths = Paths().under(root)
params = Params(paths=paths, predict=Predict(max_objects=n, batch_size=batch,
                ra_min=150.0, ra_max=160.0, dec_min=0.0, dec_max=10.0))
started = time.perf_counter()
report = run_stage("predict", params)
seconds = time.perf_counter() - started
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"objects": report["objects"], "classified": report["classified"],
                  "seconds": seconds, "peak_rss_mb": rss_mb}))
"""


def make_model(root: Path) -> None:
    """The quickstart's net, untrained, with its contract, under ``root``."""
    import numpy as np

    from skysort.config import Params, Paths
    from skysort.data.atomic import write_json
    from skysort.model.build import build_model
    from skysort.model.contract import make_contract

    params = Params(paths=Paths().under(root))
    data, train = params.data, params.train
    n = len(data.features)
    params.paths.model.parent.mkdir(parents=True, exist_ok=True)
    build_model(train, n, len(data.classes), data.image_size, np.zeros(n), np.ones(n)).save(
        params.paths.model
    )
    decisions = {"task": "multiclass", "classes": list(data.classes), "decision": "argmax"}
    write_json(params.paths.contract, make_contract(
        task="multiclass", outputs=data.classes, data=data, train=train, n_features=n,
        feature_mean=np.zeros(n), feature_var=np.ones(n), decisions=decisions))  # fmt: skip


LOOPBACK_CHILD = """
import json, sys, time
from pathlib import Path
import keras  # noqa: F401  (imports warmed: the clock measures the run)
from skysort.config import Params, Paths
from skysort.pipeline.registry import run_stage
root, settings = Path(sys.argv[1]), json.loads(sys.argv[2])
params = Params.model_validate({"paths": Paths().under(root), **settings})
started = time.perf_counter()
report = run_stage("predict", params)
print(json.dumps({"objects": report["objects"], "classified": report["classified"],
                  "seconds": time.perf_counter() - started}))
"""
BOX = {"ra_min": 150.0, "ra_max": 151.0, "dec_min": 1.0, "dec_max": 2.0}
PARTS = ("offline", "loopback")
TITLE = "Predict: objects per second and memory"


def model_step(root: Path, n: int = 4096) -> dict[str, float]:
    """Samples/s of the model fed as predict feeds it (batch by batch) vs. one in-memory tensor."""
    import numpy as np

    from skysort.model.predict import load_model, predict_arrays

    net = load_model(root / "models/model.keras")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8)
    features = rng.normal(20, 1, (n, 6)).astype(np.float32)
    inputs = ("image", "features")
    net.predict({"image": images[:256], "features": features[:256]}, verbose=0)  # warm up
    started = time.perf_counter()
    predict_arrays(net, images, features, inputs, 256)
    fed = n / (time.perf_counter() - started)
    started = time.perf_counter()
    net.predict({"image": images, "features": features}, batch_size=256, verbose=0)
    direct = n / (time.perf_counter() - started)
    return {"fed": fed, "in_memory": direct, "ratio": fed / direct}


def loopback(root: Path, n: int, latency_s: float, concurrency: list[int]) -> list[list]:
    """Objects/s of predict on ``n`` objects served by the slow loopback stand-in."""
    import numpy as np
    from loopback_sky import LoopbackSky

    from skysort.config import Data, Query, SyntheticSource
    from skysort.data.images import encode_jpeg
    from skysort.sources.synthetic import render_cutout, simulate_catalog

    data = Data()
    catalog = simulate_catalog(Query(n_objects=n, **BOX), data, SyntheticSource(), 11)
    rng = np.random.default_rng(11)
    images = {(float(row["ra"]), float(row["dec"])):
              encode_jpeg(render_cutout(row, data.image_size, 0.396127, rng))
              for row in catalog.to_dict("records")}  # fmt: skip
    rows = []
    with LoopbackSky(catalog, images, latency_s) as sky:
        for k in concurrency:
            run = root / f"loopback-{k}"
            run.mkdir()
            (run / "models").symlink_to(root / "models")
            settings = {"source": {"kind": "skyserver", "skyserver": {"base_url": sky.url}},
                        "cutouts": {"concurrency": k},
                        "predict": {"max_objects": n, **BOX}}  # fmt: skip
            sky.counts.update(sql=0, cutout=0)
            sky.max_in_flight = 0
            out = subprocess.run([sys.executable, "-c", LOOPBACK_CHILD, str(run), json.dumps(settings)],
                                 cwd=run, capture_output=True, text=True, check=True)  # fmt: skip
            got = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append([got["objects"], got["classified"], k, round(latency_s * 1000),
                         sky.counts["sql"], sky.counts["cutout"], sky.max_in_flight,
                         round(got["seconds"], 1), round(got["objects"] / got["seconds"], 1),
                         round(k / latency_s)])  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def offline(root: Path, objects: list[int], batch_size: int) -> tuple[list[Table], dict]:
    """The simulated regions, one process each, then the model step alone."""
    rows = []
    for n in objects:
        run = root / f"run-{n}"
        run.mkdir()
        (run / "models").symlink_to(root / "models")
        out = subprocess.run([sys.executable, "-c", CHILD, str(run), str(n), str(batch_size)],
                             cwd=run, capture_output=True, text=True, check=True)  # fmt: skip
        got = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append([n, got["classified"], round(got["seconds"], 1),
                     round(got["objects"] / got["seconds"], 1), round(got["peak_rss_mb"])])  # fmt: skip
        print(rows[-1], flush=True)
    step = model_step(root)
    region = Table(["objects", "classified", "seconds", "objects/s", "peak RSS (MB)"], rows,
                   caption="The predict stage end to end on the simulated sky (render, check, "
                   "classify, write), one process per region")  # fmt: skip
    model = Table(["model fed batch by batch (samples/s)", "model on an in-memory tensor",
                   "ratio"], [[round(step["fed"]), round(step["in_memory"]), round(step["ratio"], 3)]],
                  caption="The classification step alone (fusion, small CNN, batch 256)")  # fmt: skip
    return [region, model], {"rows": rows, "model_step": step}


def previous_parts(out_dir: Path) -> dict[str, dict]:
    """Each part's tables, figures, command and date in the results written before, if any."""
    path = out_dir / "predict.json"
    if not path.exists():
        return {}
    record = json.loads(path.read_text())
    figures = record.get("figures") or {}
    if "parts" in figures:
        return figures["parts"]
    # written before the script had parts: all of it was the offline part
    return {"offline": {"command": record["command"], "date": record["date"],
                        "tables": record["tables"], "figures": figures}}  # fmt: skip


def write_part(parts: dict[str, dict]) -> None:
    """Write every part's tables (this run's new ones, the others as they were)."""
    order = [p for p in PARTS if p in parts]
    tables = [Table(t["columns"], t["rows"], caption=t["caption"])
              for p in order for t in parts[p]["tables"]]  # fmt: skip
    notes = ["Each part was measured by its own command:",
             "\n".join(f"- {p}: `{parts[p]['command']}`, {parts[p]['date']}" for p in order)]  # fmt: skip
    write_results("predict", tables, title=TITLE, notes=notes, figures={"parts": parts})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=PARTS, action="append",
                        help="run only this part (repeatable); the other parts' figures are kept")  # fmt: skip
    parser.add_argument("--objects", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--loopback-objects", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=None,
                        help="cutout requests in flight (default: cutouts.concurrency)")  # fmt: skip
    args = parser.parse_args()
    out_dir = Path(os.environ.get("SKYSORT_RESULTS_DIR") or RESULTS_DIR)
    parts = previous_parts(out_dir)
    run_parts = args.only or list(PARTS)
    stamp = {"command": shlex.join(["python", "benchmarks/predict.py", *sys.argv[1:]]),
             "date": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="skysort-predict-bench-") as tmp:
        make_model(Path(tmp))
        if "offline" in run_parts:
            tables, figures = offline(Path(tmp), args.objects, args.batch_size)
            parts["offline"] = {**stamp, "tables": [_plain(t) for t in tables], "figures": figures}
        if "loopback" in run_parts:
            from skysort.config import Cutouts

            concurrency = args.concurrency or [Cutouts().concurrency]
            rows = loopback(Path(tmp), args.loopback_objects, args.latency_ms / 1000, concurrency)
            table = Table(["objects", "classified", "concurrency", "latency (ms)", "SQL requests",
                           "cutout requests", "most in flight", "seconds", "objects/s",
                           "ceiling (concurrency / latency)"], rows,
                          caption="Against the loopback SkyServer stand-in, every answer "
                          f"{args.latency_ms:g} ms late: predict end to end (query, fetch, "
                          "check, classify, write)")  # fmt: skip
            parts["loopback"] = {**stamp, "tables": [_plain(table)], "figures": {"rows": rows}}
    for part in run_parts:
        for t in parts[part]["tables"]:
            print(Table(t["columns"], t["rows"], caption=t["caption"]).markdown())
    write_part(parts)


def _plain(table: Table) -> dict:
    return {"caption": table.caption, "columns": list(table.columns),
            "rows": [list(r) for r in table.rows]}  # fmt: skip


if __name__ == "__main__":
    main()
