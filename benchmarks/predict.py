"""Predict on the simulated sky: objects per second end to end, peak memory, and the model step.

    python benchmarks/predict.py                          # regions of 10,000 and 100,000 objects
    python benchmarks/predict.py --objects 2000 10000     # quicker

Builds the quickstart's model (fusion, small CNN; untrained: speed does not depend on
the weights) with its contract in a temporary project, then runs the ``predict``
stage (the library alone, no Prefect) in a fresh process per region size, and
reports wall time, objects per second and the process's peak RSS. Memory should stay
flat as the region grows: only one batch of cutouts is ever in memory. Last, the
classification step alone: the model fed batch by batch from decoded cutouts
(``predict_arrays``, as predict feeds it) against the same model's ``predict`` on one
tensor already in memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import Table, write_results

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="skysort-predict-bench-") as tmp:
        make_model(Path(tmp))
        for n in args.objects:
            run = Path(tmp) / f"run-{n}"
            run.mkdir()
            (run / "models").symlink_to(Path(tmp) / "models")
            out = subprocess.run([sys.executable, "-c", CHILD, str(run), str(n), str(args.batch_size)],
                                 cwd=run, capture_output=True, text=True, check=True)  # fmt: skip
            got = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append([n, got["classified"], round(got["seconds"], 1),
                         round(got["objects"] / got["seconds"], 1), round(got["peak_rss_mb"])])  # fmt: skip
            print(rows[-1], flush=True)
        step = model_step(Path(tmp))
    region = Table(["objects", "classified", "seconds", "objects/s", "peak RSS (MB)"], rows,
                   caption="The predict stage end to end on the simulated sky (render, check, "
                   "classify, write), one process per region")  # fmt: skip
    model = Table(["model fed batch by batch (samples/s)", "model on an in-memory tensor",
                   "ratio"], [[round(step["fed"]), round(step["in_memory"]), round(step["ratio"], 3)]],
                  caption="The classification step alone (fusion, small CNN, batch 256)")  # fmt: skip
    for table in (region, model):
        print(table.markdown())
    write_results("predict", [region, model], title="Predict: objects per second and memory",
                  figures={"rows": rows, "model_step": step})  # fmt: skip


if __name__ == "__main__":
    main()
