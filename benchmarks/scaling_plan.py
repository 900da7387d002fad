"""The plan for 10 million and 1 billion objects, computed from the measured figures.

    python benchmarks/scaling_plan.py
    python benchmarks/scaling_plan.py --objects 10000000 1000000000 --in-flight 32 --node-cores 16

Reads the pages the benchmarks wrote (``docs/results/scale.json``, ``fetch.json``,
``predict.json``, ``dask_scale.json``), turns them into costs per object (core-seconds
and bytes on disk), and scales them to each ``--objects``: cluster size, hours and
storage, and what DVC would track. Nothing is measured here and no figure is typed in:
every cost names the file it comes from. What is not a measurement is an assumption
given on the command line (with its default's source in ``--help``) and printed on the
page. Writes ``docs/results/scaling_plan.md`` (and ``.json``) through ``benchmarks/results.py``.

Core-seconds are wall seconds x the measuring machine's CPUs wherever the run kept no
CPU time (scale.json, predict.json): an upper bound, since those runs shared the
machine with other work. The fetch's CPU per image was measured (fetch.json).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import yaml
from results import RESULTS_DIR, ROOT, Table, write_results

SOURCES = ("scale", "scale_loose", "fetch", "predict", "dask_scale")
PREDICT = "predict (check, classify, write)"
SURVEY_STAGES = ("query", "cutouts", "predict")  # run on every object; the rest on the labelled


def load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS_DIR / f"{name}.json").read_text())


def table(record: dict[str, Any], caption_start: str) -> list[list[Any]]:
    """The rows of a page's table whose caption starts with ``caption_start``."""
    for t in record["tables"]:
        if t["caption"].startswith(caption_start):
            return t["rows"]
    raise KeyError(f"{record['name']}.json has no table {caption_start!r}")


def unit_costs(r: dict[str, dict[str, Any]], in_flight: int) -> list[dict[str, Any]]:
    """One row per stage: core-seconds and bytes per object, what it runs on, and its source."""
    scale, fetch, predict = r["scale"], r["fetch"], r["predict"]
    n, cpus = scale["figures"]["objects"], scale["machine"]["cpus"]
    stages = scale["figures"]["stages"]
    out = {(row[0], row[1]): row[3] for row in table(scale, "Outputs")}
    per = lambda stage: stages[stage]["seconds"] * cpus / n  # noqa: E731
    size = lambda stage: sum(b for (s, _), b in out.items() if s == stage) / n  # noqa: E731
    jpegs = stages["cutouts"]["status_counts"]["ok"]  # one per ok object, loose or packed
    fetch_row = next(row for row in fetch["figures"]["rows"] if row[0] == in_flight)
    offline = max(predict["figures"]["parts"]["offline"]["figures"]["rows"], key=lambda x: x[0])
    train = stages["train"]
    pred_bytes = out[("evaluate", "reports/predictions.parquet")] / stages["evaluate"].get(
        "test_rows", round(stages["clean"]["kept_rows"] * test_fraction())
    )
    s, f, p = "scale.json", "fetch.json", "predict.json"
    return [
        dict(stage="query (catalog rows)", runs_on="all", core_s=per("query"), bytes=size("query"),
             source=f"{s}: query seconds, catalog.parquet bytes"),
        dict(stage=f"cutouts: fetch ({in_flight} in flight)", runs_on="all",
             core_s=fetch_row[7] / 1000,
             bytes=out[("cutouts", "data/raw/cutouts")] / jpegs
             + out[("cutouts", "data/raw/cutouts.parquet")] / n,
             source=f"{f}: CPU ms per image; {s}: bytes per JPEG and manifest row"),
        dict(stage="clean (check, pack)", runs_on="labelled", core_s=per("clean"),
             bytes=size("clean"), source=f"{s}: clean seconds; dataset + images.npy bytes"),
        dict(stage="impute", runs_on="labelled", core_s=per("impute"), bytes=size("impute"),
             source=f"{s}: impute seconds and outputs"),
        dict(stage="balance", runs_on="labelled", core_s=per("balance"), bytes=size("balance"),
             source=f"{s}: balance seconds and outputs"),
        dict(stage="baselines", runs_on="labelled", core_s=per("baselines"),
             bytes=size("baselines"), source=f"{s}: baselines seconds and outputs"),
        dict(stage="train, per epoch", runs_on="labelled x epochs",
             core_s=train["seconds_per_epoch"] * cpus / n, bytes=0.0, fixed_bytes=size("train") * n,
             source=f"{s}: seconds_per_epoch; its outputs (model, reports) once, not per object"),
        dict(stage="evaluate", runs_on="labelled", core_s=per("evaluate"),
             bytes=size("evaluate"), source=f"{s}: evaluate seconds and outputs"),
        dict(stage=PREDICT, runs_on="all",
             core_s=predict["machine"]["cpus"] / offline[3], bytes=pred_bytes,
             source=f"{p}: offline objects/s at {offline[0]} objects (includes rendering the "
             f"simulated cutout); {s}: predictions.parquet bytes per test row"),
    ]  # fmt: skip


def test_fraction() -> float:
    return float(yaml.safe_load((ROOT / "params.yaml").read_text())["clean"]["test_fraction"])


def dvc_run(page: dict[str, Any]) -> dict[str, float]:
    """One scale page's DVC timings (the slower ``dvc status``) and what it tracked."""
    dvc = table(page, "DVC on the result")
    outputs = table(page, "Outputs")
    return {
        "status_s": max(row[1] for row in dvc if "status" in row[0]),
        "commit_s": next(row[1] for row in dvc if "commit" in row[0]),
        "files": sum(row[2] for row in outputs),
        "bytes": sum(row[3] for row in outputs),
    }


def dvc_figures(r: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``dvc status`` as a fixed cost plus a cost per tracked file, from two scale runs.

    The same objects tracked as one JPEG per object (scale_loose.json) and in packs
    (scale.json) differ only in the number of files: the difference in seconds over the
    difference in files is the cost per file; what remains of the packed run is DVC's
    fixed cost (its start-up, the pipeline's stages). ``dvc commit`` is costed per byte
    from the loose run, per-file costs included: an upper bound.
    """
    loose, packed = dvc_run(r["scale_loose"]), dvc_run(r["scale"])
    per_file = (loose["status_s"] - packed["status_s"]) / (loose["files"] - packed["files"])
    return {
        "per_file_s": per_file,
        "fixed_s": max(0.0, packed["status_s"] - per_file * packed["files"]),
        "commit_per_byte": loose["commit_s"] / loose["bytes"],
        "loose": loose,
        "packed": packed,
    }


def plan(r: dict[str, dict[str, Any]], costs: list[dict[str, Any]], args: Any) -> list[dict]:
    """For each number of objects: hours, cluster size, storage and DVC files."""
    fetch, dask = r["fetch"], r["dask_scale"]
    rate = next(row for row in fetch["figures"]["rows"] if row[0] == args.in_flight)[5]
    fetch_cpu = next(c for c in costs if c["stage"].startswith("cutouts"))["core_s"]
    one_worker = [row for row in dask["figures"]["rows"] if row[0] == 1]
    per_worker = {row[1]: row[6] for row in one_worker}  # in flight per worker -> images/s
    k = min(per_worker, key=lambda c: abs(c - 8))
    dvc = dvc_figures(r)
    per_file, fixed, commit_per_byte = dvc["per_file_s"], dvc["fixed_s"], dvc["commit_per_byte"]
    rows = []
    for n in args.objects:
        labelled = min(n, args.labelled)
        count = {"all": n, "labelled": labelled, "labelled x epochs": labelled * args.epochs}
        core_h = {c["stage"]: c["core_s"] * count[c["runs_on"]] / 3600 for c in costs}
        train_h = sum(h for st, h in core_h.items() if not st.startswith(SURVEY_STAGES))
        predict_h = core_h[PREDICT]
        disk = {c["stage"]: c["bytes"] * count[c["runs_on"]] + c.get("fixed_bytes", 0)
                for c in costs}  # fmt: skip
        fetch_stage = next(c["stage"] for c in costs if c["stage"].startswith("cutouts"))
        shards = math.ceil(n / args.shard_jpegs)
        queries = math.ceil(n / args.rows_per_query)
        cores, budget = args.node_cores, args.in_flight
        rows.append({
            "objects": n,
            "labelled (training stages)": labelled,
            "catalog queries (rows per query)": f"{queries} ({args.rows_per_query})",
            "query pacing alone, hours": queries * args.query_interval_s / 3600,
            f"fetch at {budget} in flight, hours (fetch.json's rate)": n / rate / 3600,
            f"fetch at {budget} in flight, days": n / rate / 86400,
            f"images/s per Dask worker at {k} in flight (dask_scale.json)": per_worker[k],
            f"Dask workers to fill {budget} in flight at {k} each": math.ceil(budget / k),
            "fetch CPU, cores busy": rate * fetch_cpu,
            "training stages, core-hours": train_h,
            f"training stages on one {cores}-core node, hours (if they use every core)":
                train_h / cores,
            "predict, core-hours": predict_h,
            f"predict nodes ({cores} cores) to finish in {args.hours:g} h":
                math.ceil(predict_h / (cores * args.hours)),
            "storage, GB": sum(disk.values()) / 1e9,
            "of it JPEG cutouts and manifest, GB": disk[fetch_stage] / 1e9,
            f"DVC files: one per cutout / packs of {args.shard_jpegs} (+ index)":
                f"{n} / {2 * shards}",
            "dvc status, one file per cutout, hours": (fixed + n * per_file) / 3600,
            "dvc status, packs, seconds": fixed + 2 * shards * per_file,
            "dvc commit (hash), hours, upper bound": sum(disk.values()) * commit_per_byte / 3600,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[10_000_000, 1_000_000_000])
    parser.add_argument("--labelled", type=int, default=3_100_000,
                        help="labelled (spectroscopic) objects the training stages run on; default: "
                        "the 3.1 M labelled SDSS sources of Clarke et al. 2020 (FACTS.md)")  # fmt: skip
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: params.yaml train.epochs"
    )
    parser.add_argument("--in-flight", type=int, default=32,
                        help="requests in flight SkyServer is asked to carry (a politeness budget); "
                        "must be a level fetch.json measured")  # fmt: skip
    parser.add_argument(
        "--rows-per-query",
        type=int,
        default=None,
        help="default: params.yaml source.skyserver.max_rows_per_request",
    )
    parser.add_argument(
        "--query-interval-s",
        type=float,
        default=None,
        help="default: params.yaml source.skyserver.min_query_interval_s",
    )
    parser.add_argument(
        "--shard-jpegs", type=int, default=10_000, help="JPEGs per pack (cutouts.pack_size)"
    )
    parser.add_argument("--node-cores", type=int, default=16)
    parser.add_argument("--hours", type=float, default=24.0, help="wall time predict should take")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    sky = params["source"]["skyserver"]
    args.epochs = args.epochs or int(params["train"]["epochs"])
    args.rows_per_query = args.rows_per_query or int(sky["max_rows_per_request"])
    args.query_interval_s = args.query_interval_s or float(sky["min_query_interval_s"])
    r = {name: load(name) for name in SOURCES}
    costs = unit_costs(r, args.in_flight)
    rows = plan(r, costs, args)
    for row in rows:
        print(json.dumps(row, default=str))
    cost_table = Table(
        ["stage", "runs on", "core-ms per object", "bytes per object on disk", "from"],
        [[c["stage"], c["runs_on"], round(1000 * c["core_s"], 3), round(c["bytes"]), c["source"]]
         for c in costs],
        caption="Measured cost per object", digits=3)  # fmt: skip
    plan_table = Table(["", *(f"{row['objects']:,} objects" for row in rows)],
                       [[key, *(row[key] for row in rows)] for key in rows[0] if key != "objects"],
                       caption="The plan", digits=1)  # fmt: skip
    dvc = dvc_figures(r)
    loose, packed = dvc["loose"], dvc["packed"]
    sources = [f"[{name}.md]({name}.md) ({r[name]['date']}, {r[name]['machine']['cpus']} CPUs; "
               f"its command is on its page)" for name in SOURCES]  # fmt: skip
    notes = [
        "Computed, not measured: every cost comes from a page the benchmarks wrote, named in "
        "the table's last column; docs/scaling.md explains the plan. The pages read:",
        "\n".join(f"- {s}" for s in sources),
        f"Assumptions (command-line options): training stages on at most {args.labelled:,} "
        f"labelled objects, {args.epochs} epochs (no early stop); SkyServer asked to carry "
        f"{args.in_flight} requests in flight, at the loopback stand-in's 100 ms per answer; "
        f"{args.rows_per_query:,} rows per catalog query, one query per "
        f"{args.query_interval_s:g} s (params.yaml; SkyServer allows 60 a minute and 500,000 "
        f"rows per query, FACTS.md); nodes of {args.node_cores} cores; JPEGs packed "
        f"{args.shard_jpegs:,} to a pack. Core-seconds are wall seconds x CPUs where the run "
        f"kept no CPU time (an upper bound); train on a GPU is not measured here. `dvc "
        f"status` is a fixed cost plus a cost per tracked file, from the same 100k objects "
        f"tracked two ways: one JPEG per object (scale_loose.json: {loose['files']:,} files, "
        f"{loose['status_s']:.2f} s) and packed (scale.json: {packed['files']:,} files, "
        f"{packed['status_s']:.2f} s), so {1e6 * dvc['per_file_s']:.0f} µs per file and "
        f"{dvc['fixed_s']:.2f} s fixed. `dvc commit` is costed per byte from the loose run "
        f"({loose['commit_s']:.1f} s for {loose['bytes'] / 1e9:.2f} GB, per-file costs "
        f"included: an upper bound).",
    ]
    write_results("scaling_plan", [cost_table, plan_table], notes=notes,
                  title="Scaling plan: 10 million and 1 billion objects, from the measured costs",
                  figures={"costs": costs, "plan": rows, "assumptions": vars(args),
                           "sources": {n: {"command": r[n]["command"], "date": r[n]["date"]}
                                       for n in SOURCES}})  # fmt: skip


if __name__ == "__main__":
    main()
