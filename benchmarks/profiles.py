"""Where each stage's time goes: every stage of the DAG sampled by py-spy, and start-up imports.

    python benchmarks/profiles.py                                  # the quickstart's survey
    python benchmarks/profiles.py --objects 20000 --stages query cutouts clean impute
    python benchmarks/profiles.py --keep /tmp/profiles             # keep the raw stacks

Runs the stages in DAG order in a temporary folder, the library alone (no Prefect), each
in a fresh process under ``py-spy record`` (``pip install py-spy``; on PATH or
``--py-spy``), ``train`` for ``--epochs``. py-spy samples every thread that is running,
so the work of a stage's thread pools (the renderer's, the decoder's, TensorFlow's) is
seen where it happens, and the process's start-up (imports) is in the samples too.
For each stage: its seconds, the share of its samples spent importing (start-up) and
working, the functions with the most own samples (where the CPU is) and the project
functions the samples fall under. Then, for the start-up a command pays before any
stage, the import time of each heavy package in a fresh interpreter. Writes
``docs/results/profiles.md`` (and ``.json``) through ``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import Table, write_results

from skysort.config import load_params
from skysort.pipeline.registry import NAMES

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = ("prefect", "tensorflow", "sklearn", "lightgbm", "dvc.repo", "skysort.flows.pipeline")
CHILD = """
import sys
from skysort.config import load_params
from skysort.pipeline.registry import run_stage
run_stage(sys.argv[1], load_params(sys.argv[2], sys.argv[3:]))
"""


def summarize(
    raw: Path, top: int
) -> tuple[dict[str, float], list[list[object]], list[list[object]]]:
    """py-spy's raw stacks: shares of import and of work, the hottest functions, our functions.

    A sample under an import (``_find_and_load``) is start-up; every other sample is the
    stage's work. Of the work: the functions with the most own samples (where the CPU is),
    and the deepest ``skysort`` function on each stack (which of the project's functions
    the time is spent under; samples of pool threads have none: "worker threads").
    """
    total = imports = 0
    own: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n, frames = int(count), stack.split(";")
        total += n
        if any(f.startswith("_find_and_load ") for f in frames):
            imports += n
            continue
        own[_short(frames[-1])] += n
        project = [f for f in frames if "skysort/" in f]
        ours[_short(project[-1]) if project else "(worker threads)"] += n
    work = total - imports
    share = lambda n: round(100 * n / max(total, 1), 1)  # noqa: E731
    shares = {"samples": total, "imports %": share(imports), "work %": share(work)}
    hot = [[f, share(n)] for f, n in own.most_common(top)]
    under = [[f, share(n)] for f, n in ours.most_common(top)]
    return shares, hot, under


def _short(frame: str) -> str:
    """``name (path/file.py:line)`` -> ``name (file.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})"


def environment() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1"}


def import_seconds(module: str) -> float:
    """Seconds a fresh interpreter takes to import ``module`` (its own start-up excluded)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=environment())  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=None, help="default: params.yaml's")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--stages", nargs="+", choices=NAMES, default=list(NAMES))
    parser.add_argument("--top", type=int, default=10, help="functions per stage")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--keep", type=Path, help="keep each stage's raw stacks here")
    parser.add_argument(
        "--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    )
    args = parser.parse_args()
    overrides = [f"train.epochs={args.epochs}", f"train.patience={args.epochs}"]
    if args.objects:
        overrides.append(f"query.n_objects={args.objects}")
    n = load_params(ROOT / "params.yaml", overrides).query.n_objects
    load = os.getloadavg()[0]
    tables, seconds_by_stage = [], []
    with tempfile.TemporaryDirectory(prefix="skysort-profile-") as tmp:
        keep = args.keep or Path(tmp) / "stacks"
        keep.mkdir(parents=True, exist_ok=True)
        for name in NAMES:  # every stage runs (the next reads its outputs); the chosen are sampled
            child = [sys.executable, "-c", CHILD, name, str(ROOT / "params.yaml"), *overrides]
            raw = keep / f"{name}.txt"
            spy = [args.py_spy, "record", "--format", "raw", "--rate", str(args.rate),
                   "--nonblocking", "-o", str(raw), "--"]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run([*spy, *child] if name in args.stages else child, cwd=tmp,
                                  env=environment(), capture_output=True, text=True)  # fmt: skip
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"stage {name} failed:\n{done.stderr[-3000:]}")
            print(f"{name:10s} {seconds:7.2f} s", flush=True)
            if name not in args.stages:
                continue
            shares, hot, under = summarize(raw, args.top)
            seconds_by_stage.append([name, round(seconds, 2), shares["imports %"],
                                     shares["work %"]])  # fmt: skip
            tables.append(Table(["function (file)", "own samples %"], hot,
                                caption=f"{name}: where the CPU is"))  # fmt: skip
            tables.append(Table(["project function (file)", "samples under it %"], under,
                                caption=f"{name}: under which of the project's functions"))  # fmt: skip
    imports = [[m, round(import_seconds(m), 2)] for m in IMPORTS]
    for row in imports:
        print(f"import {row[0]:24s} {row[1]:6.2f} s", flush=True)
    notes = [
        f"{n} simulated objects, train {args.epochs} epoch(s); each stage the library alone in "
        f"its own process, sampled by py-spy at {args.rate} Hz (every running thread; idle "
        f"threads left out). Load average before: {load:.2f} on {os.cpu_count()} CPUs. A "
        "stage's seconds here include its process's start-up (Python, imports), which the "
        "samples show as import frames (``<module>``, ``_find_and_load``).",
    ]
    write_results(
        "profiles",
        [Table(["stage", "seconds (own process, sampled)", "imports %", "work %"],
               seconds_by_stage, caption="Stages profiled"),
         *tables,
         Table(["module", "import s"], imports,
               caption="Start-up: import time in a fresh interpreter (a command imports some)")],
        title="Where the stages' time goes (py-spy)",
        notes=notes,
        figures={"objects": n, "epochs": args.epochs,
                 "stages": {row[0]: row[1:] for row in seconds_by_stage},
                 "imports": dict(imports)},
    )  # fmt: skip


if __name__ == "__main__":
    main()
