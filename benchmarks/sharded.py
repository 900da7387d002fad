"""Time cutouts + clean in one process vs. sharded on a local Dask cluster, and compare outputs.

    python benchmarks/sharded.py                      # 2000 objects, 2 workers, shards of 500
    python benchmarks/sharded.py --objects 5000 --workers 4 --shard-size 250

Both ways run as Prefect flow runs (the ``skysort stage`` flow), each in its own
temporary folder from the same catalog, so the figures include Prefect's and
Dask's overheads (a LocalCluster is started and torn down per stage). Set
PREFECT_API_URL to a running server to leave out the temporary server's start-up.
Writes the timings to ``docs/results/sharded.md`` (and ``.json``) through
``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from results import Table, write_results

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=500)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")

    from skysort.config import load_params
    from skysort.flows.stage import stage
    from skysort.stages import run_stage

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["query"]["n_objects"] = args.objects
    raw["runner"].update(n_workers=args.workers, shard_size=args.shard_size)
    with tempfile.TemporaryDirectory(prefix="skysort-bench-") as tmp:
        roots = {kind: Path(tmp) / kind for kind in ("local", "dask")}
        for kind, root in roots.items():
            root.mkdir()
            (root / "params.yaml").write_text(
                yaml.safe_dump({**raw, "runner": {**raw["runner"], "kind": kind}})
            )
        os.chdir(roots["local"])
        run_stage("query", load_params("params.yaml"))
        shutil.copytree(roots["local"] / "data", roots["dask"] / "data")
        print(
            f"{args.objects} simulated objects, {os.cpu_count()} CPUs, dask: "
            f"{args.workers} worker processes, shards of {args.shard_size}"
        )
        seconds: dict[str, dict[str, float]] = {}
        for kind, root in roots.items():
            os.chdir(root)
            for name in ("cutouts", "clean"):
                started = time.perf_counter()
                stage(name=name, params_path="params.yaml")
                seconds.setdefault(name, {})[kind] = time.perf_counter() - started
                print(f"{kind:6s} {name:8s} {seconds[name][kind]:6.2f} s")
        a, b = roots["local"], roots["dask"]
        same = all(
            pd.read_parquet(a / rel).equals(pd.read_parquet(b / rel))
            for rel in ("data/raw/cutouts.parquet", "data/interim/dataset.parquet")
        )
        same &= np.array_equal(
            np.load(a / "data/interim/images.npy"), np.load(b / "data/interim/images.npy")
        )
        cmp = filecmp.dircmp(a / "data/raw/cutouts", b / "data/raw/cutouts")
        same &= not (cmp.left_only or cmp.right_only)
        print("identical outputs:", same)
        write_results(
            "sharded",
            [
                Table(
                    ["stage", "local threads, s", "Dask shards, s"],
                    [[name, t["local"], t["dask"]] for name, t in seconds.items()],
                    digits=1,
                )
            ],
            title="Local threads against Dask shards",
            notes=[
                f"{args.objects} simulated objects; Dask: {args.workers} worker processes, "
                f"shards of {args.shard_size}; both as `skysort stage` flow runs, Prefect's and "
                f"Dask's overheads included. Identical outputs: {bool(same)}."
            ],
            figures={"seconds": seconds, "identical": bool(same)},
        )


if __name__ == "__main__":
    main()
