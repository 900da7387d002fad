"""The sharded cutouts stage on a Dask LocalCluster of 1, 2, 4 workers: images/s and speed-up.

    python benchmarks/dask_scale.py                        # 4000 cutouts; 8 and 32 in flight per worker
    python benchmarks/dask_scale.py --workers 1 2 --concurrency 8 --objects 1000

What runs is the cutouts stage's own shard path, the three functions prefect-dask's
``DaskTaskRunner`` calls when ``runner.kind: dask`` (``Stage.shards``: prepare, one
shard per ``runner.shard_size`` catalog rows, merge), submitted with
``dask.distributed`` to a ``LocalCluster`` of worker processes (one thread each, as
``runner.threads_per_worker`` defaults), without the Prefect flow around them (its
server and per-task bookkeeping: ``benchmarks/sharded.py`` and ``quickstart.py`` time them).
Each shard fetches with ``cutouts.concurrency`` requests in flight, so W workers ask
for W x concurrency at once. The server is ``benchmarks/fetch.py``'s: the test
suite's fake SkyServer in a process of its own, every answer ``--latency-ms`` late,
with a listen queue deep enough for every worker's connects (``--listen-queue``).

Every run fetches the same ``--objects`` cutouts into an empty folder (the fastest of
``--repeat`` runs is kept); the clock
starts after the cluster is up and its workers have imported the stage, and stops
when the manifest is merged. Beside each run: the ideal rate (in flight / latency),
what a trivial client gets at the same number in flight, the CPU per image of the
workers and of the server, and the load average. Writes ``docs/results/dask_scale.md``
(and ``.json``) through ``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fetch
import pandas as pd
import psutil
from fetch import ROOT, Server, trivial_rate
from results import Table, write_results


def deepen_listen_queue(connects: int) -> None:
    """Give fetch.py's server a listen queue of ``connects`` (http.server's default: 5).

    With 5, many workers starting their shards at once overflow the queue, and the
    connects left out stall for a second or more: the stand-in's limit, not SkyServer's.
    """
    fetch.SERVER = fetch.SERVER.replace(
        "class Fake(", f"fakesky._Server.request_queue_size = {connects}\n\nclass Fake(", 1
    )


def params_for(url: str, concurrency: int, shard_size: int, root: Path) -> Any:
    """The project's params, pointed at the loopback server, with every path under ``root``.

    Read from a copy of ``params.yaml`` made when the script starts (``root.parent``), so
    an edit to the project's file during the runs changes nothing.
    """
    from skysort.config import load_params

    overrides = [
        "source.kind=skyserver",
        f"source.skyserver.base_url={url}",
        "data.image_size=64",  # the size fetch.py's server prepares
        f"cutouts.concurrency={concurrency}",
        "cutouts.retries=1",
        "cutouts.backoff_s=0.01",
        f"runner.shard_size={shard_size}",
    ]
    params = load_params(root.parent / "params.yaml", overrides)
    return params.model_copy(update={"paths": params.paths.under(root)})


def write_catalog(params: Any, n: int) -> None:
    """The catalog the server has images for: ``tests/fakesky.py``'s, seed 1, as fetch.py uses."""
    sys.path.insert(0, str(ROOT))
    from tests.fakesky import make_sky_catalog

    path = Path(params.paths.catalog)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_sky_catalog(n, seed=1).to_parquet(path, index=False)


def own_cpu() -> float:
    """CPU seconds (user + system) this process has used so far."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def worker_cpu(client: Any) -> float:
    """CPU seconds the cluster's worker processes have used so far, all together."""
    return sum(client.run(own_cpu).values())


def run_stage(client: Any, params: Any) -> dict[str, Any]:
    """The cutouts stage through its shards on the cluster; seconds and outcome counts."""
    from skysort.pipeline import registry, sharding

    stage = registry.get("cutouts")
    assert stage.shards is not None
    started = time.perf_counter()
    n_rows = stage.shards.prepare(params)
    bounds = sharding.shard_bounds(n_rows, params.runner.shard_size)
    futures = [client.submit(stage.shards.shard, params, i, a, b, pure=False)
               for i, (a, b) in enumerate(bounds)]  # fmt: skip
    parts = client.gather(futures)
    stage.merge(params, parts, n_rows)
    seconds = time.perf_counter() - started
    manifest = pd.read_parquet(params.paths.manifest)
    return {"seconds": seconds, "ok": int((manifest.status == "ok").sum()), "shards": len(bounds)}


def timed_run(client: Any, server: Server, args: Any, w: int, c: int, root: Path) -> list[Any]:
    """One run of the stage into an empty ``root``: its row of figures."""
    params = params_for(server.url, c, args.shard_size, root)
    write_catalog(params, args.objects)
    server_proc = psutil.Process(server.proc.pid)
    load = os.getloadavg()[0]
    cpu_w, cpu_s = worker_cpu(client), sum(server_proc.cpu_times()[:2])
    got = run_stage(client, params)
    cpu_w, cpu_s = worker_cpu(client) - cpu_w, sum(server_proc.cpu_times()[:2]) - cpu_s
    if got["ok"] != args.objects:
        raise RuntimeError(f"{w} workers, {c} in flight: {got['ok']} of {args.objects} ok")
    n = args.objects
    return [w, c, w * c, got["shards"], n, got["seconds"], n / got["seconds"],
            w * c * 1000 / args.latency_ms, 1000 * cpu_w / n, 1000 * cpu_s / n, load]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32],
                        help="cutouts.concurrency: requests in flight per worker")  # fmt: skip
    parser.add_argument("--objects", type=int, default=4000)
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the fastest kept")
    parser.add_argument("--listen-queue", type=int, default=256,
                        help="the server's listen queue (http.server's default: 5)")  # fmt: skip
    parser.add_argument("--trivial-max", type=int, default=128,
                        help="most in flight the trivial client is measured at")  # fmt: skip
    parser.add_argument("--note", action="append", default=[], help="a line for the page")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    latency = args.latency_ms / 1000
    deepen_listen_queue(args.listen_queue)
    server = Server(latency, args.objects)
    rows: list[list[Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="skysort-dask-scale-") as tmp:
            shutil.copy(ROOT / "params.yaml", Path(tmp) / "params.yaml")
            params_for(server.url, 8, args.shard_size, Path(tmp) / "check")  # fails now, not later
            for w in args.workers:
                with LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
                        Client(cluster) as client:  # fmt: skip
                    client.run(lambda: __import__("skysort.stages.cutouts"))  # imports untimed
                    for c in args.concurrency:
                        runs = [timed_run(client, server, args, w, c, Path(tmp) / f"w{w}c{c}-{k}")
                                for k in range(args.repeat)]  # fmt: skip
                        rows.append(min(runs, key=lambda row: row[5]))
                        print(rows[-1], flush=True)
        ceilings = {}
        # What the server and the loopback allow plain threads (one process, one GIL).
        for total in sorted({r[2] for r in rows if r[2] <= args.trivial_max}):
            n = min(args.objects, max(200, int(5 * total / latency)))
            ceilings[total] = trivial_rate(server.url, total, n)
            print("trivial client", total, "in flight:", round(ceilings[total], 1), flush=True)
    finally:
        server.close()
    publish(args, rows, ceilings)


def publish(args: argparse.Namespace, rows: list[list[Any]], ceilings: dict[int, float]) -> None:
    """Speed-ups against one worker at the same concurrency, and the page."""
    one = {r[1]: r[6] for r in rows if r[0] == 1}
    table = []
    for w, c, total, shards, n, seconds, rate, ideal, cpu_w, cpu_s, load in rows:
        speedup = rate / one[c] if c in one else None
        busy = rate * (cpu_w + cpu_s) / 1000  # cores the workers and the server kept busy
        table.append([w, c, total, shards, n, round(seconds, 1), round(rate, 1), round(ideal),
                      round(100 * rate / ideal, 1),
                      round(ceilings[total], 1) if total in ceilings else None,
                      None if speedup is None else round(speedup, 2),
                      None if speedup is None else round(speedup / w, 2),
                      round(cpu_w, 2), round(cpu_s, 2), round(busy, 2), round(load, 2)])  # fmt: skip
    cpus = os.cpu_count() or 1
    most = max(r[0] for r in table)
    found = "; ".join(
        f"at {r[1]} in flight per worker, {most} workers ran {r[10]}x as fast as 1 "
        f"({r[8]} % of the ideal, {r[14]} cores busy)"
        for r in table if r[0] == most and r[10] is not None
    )  # fmt: skip
    limits = [
        f"Found: {found}.",
        f"What limits it. Each worker fetches with `cutouts.concurrency` requests in flight, "
        f"so W workers can reach at most W x concurrency / latency images/s (the ideal "
        f"column): while the workers are far from the machine's limits, the speed-up "
        f"follows that bound. The fake "
        f"SkyServer is one Python process with one thread per connection; the trivial "
        f"client column is what it and the loopback serve to plain GET-and-read threads at "
        f"the same number in flight. The server's listen queue holds {args.listen_queue} "
        f"connects (``--listen-queue``; http.server's default is 5, and connects beyond "
        f"it stall for a second or more when many workers start their shards at once). "
        f"This machine has {cpus} cores shared by the server, "
        f"the workers, this process and other people's work: 'cores busy' is images/s x "
        f"(worker + server CPU per image); where it nears {cpus} the cores, not the "
        f"workers, are the limit, and more workers only add processes competing for them. "
        f"On a cluster each worker brings its own cores, and the limit that stays is the "
        f"service's: SkyServer is shared, so the total in flight (workers x concurrency) "
        f"is a politeness budget to set, not a number to maximise.",
    ]
    notes = [
        f"The cutouts stage's shard path (Stage.shards: prepare, shards, merge; what "
        f"prefect-dask's DaskTaskRunner runs with runner.kind: dask) submitted with "
        f"dask.distributed to a LocalCluster of worker processes, one thread each; "
        f"{args.objects} cutouts of 64 px per run in shards of {args.shard_size}, every run "
        f"into an empty folder; the test suite's fake SkyServer in its own process (Nagle "
        f"off), every answer {args.latency_ms:g} ms late. Seconds from prepare to the merged "
        f"manifest, the fastest of {args.repeat} runs; cluster start-up and the workers' "
        f"imports are not timed. Speed-up is against 1 worker at the same concurrency; per "
        f"worker = speed-up / workers. Load average (1 min) before each run is in the last "
        f"column: the machine is shared, and where the load is above its {os.cpu_count()} "
        f"cores other work slowed the run.",
        *limits,
        *args.note,
    ]
    columns = ["workers", "in flight per worker", "in flight", "shards", "objects", "seconds",
               "images/s", "ideal images/s", "% of ideal", "trivial client images/s",
               "speed-up vs 1 worker", "speed-up per worker", "worker CPU ms per image",
               "server CPU ms per image", "cores busy", "load average before"]  # fmt: skip
    write_results(
        "dask_scale",
        [
            Table(
                columns,
                table,
                caption="Cutouts over Dask workers against the loopback server",
                digits=2,
            )
        ],  # fmt: skip
        title="Scaling out: the sharded cutouts stage on 1, 2, 4 Dask workers",
        notes=notes,
        figures={
            "latency_ms": args.latency_ms,
            "columns": columns,
            "rows": table,
            "load_average_end": list(os.getloadavg()),
        },  # fmt: skip
        script="dask_scale.py",
    )


if __name__ == "__main__":
    main()
