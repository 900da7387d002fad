"""The quickstart's survey with each ``train.model``: the net, the tree models, the ensemble.

    python benchmarks/tree_models.py                     # params.yaml's defaults (2000 objects)
    python benchmarks/tree_models.py --set query.n_objects=300 --set train.epochs=2   # a quick try

Copies this working tree into a temporary git repo, runs ``skysort run`` there (the
default model), then, for each of ``gboost``, ``forest`` and ``ensemble``, sets
``train.model`` in its ``params.yaml`` and runs ``dvc repro`` (only train, evaluate and
predict rerun: every model sees the same split and train rows). Writes one row per model
(test accuracy, macro-F1, seconds, and for the ensemble its tree and net weight, and
whether ``dvc status`` was clean after it) into ``docs/results/tree_models.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from results import Table, write_results

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("gboost", "forest", "ensemble")


def _run(args: list[str], cwd: Path) -> float:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def _copy_project(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for rel in filter(None, files.stdout.decode().split("\0")):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "benchmark"]):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@example.org", *args],
                       cwd=dest, check=True)  # fmt: skip


def _row(root: Path, kind: str, seconds: float) -> dict:
    metrics = json.loads((root / "reports/metrics.json").read_text())
    train = json.loads((root / "reports/train.json").read_text())
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    mix = train.get("ensemble") or {}
    return {"model": kind, "accuracy": metrics["accuracy"], "f1_macro": metrics["f1_macro"],
            "seconds": round(seconds, 1), "tree": mix.get("tree"),
            "weight_net": mix.get("weight_net"), "dvc_clean": status in ("", "{}")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", default=[], help="a dotted.key=value override")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="skysort-trees-") as tmp:
        root = Path(tmp)
        _copy_project(root)
        params = yaml.safe_load((root / "params.yaml").read_text())
        for item in args.set:  # written into params.yaml, so dvc repro sees the same values
            key, value = item.split("=", 1)
            *sections, last = key.split(".")
            node = params
            for s in sections:
                node = node[s]
            node[last] = yaml.safe_load(value)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        seconds = _run(["skysort", "run"], root)
        rows.append(_row(root, params["train"]["model"], seconds))
        for kind in KINDS:
            params["train"]["model"] = kind
            (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            seconds = _run([sys.executable, "-m", "dvc", "repro"], root)
            rows.append(_row(root, kind, seconds))
    table = Table(
        ["model", "test accuracy", "macro-F1", "seconds", "tree in the ensemble",
         "net weight", "dvc status clean after"],
        [[r["model"], r["accuracy"], r["f1_macro"], r["seconds"], r["tree"] or "-",
          r["weight_net"], r["dvc_clean"]] for r in rows],
        caption="The quickstart's survey with each train.model",
        digits=4,
    )  # fmt: skip
    for r in rows:
        print(r)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    write_results(
        "tree_models",
        [table],
        title="The net, the tree models and the ensemble on the quickstart's survey",
        notes=[
            "The first row is `skysort run` with params.yaml's model (its seconds: the whole "
            "command); each other row sets train.model in params.yaml and runs `dvc repro`, "
            "which reruns train, evaluate and predict only (its seconds: that), so every model "
            "sees the same split and train rows. Test metrics on the same test split; the "
            "ensemble's tree and net weight were chosen on the validation split.",
            f"Overrides: {args.set or 'none'}. Load average (1, 5, 15 min) at the end: "
            f"{[round(x, 2) for x in os.getloadavg()]} on {os.cpu_count()} CPUs.",
        ],
        figures={"rows": rows, "overrides": args.set},
    )


if __name__ == "__main__":
    main()
