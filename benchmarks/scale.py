"""The whole DAG on a large simulated survey: wall time and peak memory per stage, output sizes, DVC.

    python benchmarks/scale.py --objects 100000 --epochs 1
    python benchmarks/scale.py --objects 10000 --workdir /tmp/scale-10k   # keep the project

Copies the project's tracked files into a temporary folder (a real git + DVC repo, as
``tests/project.py`` does for the end-to-end tests) with ``query.n_objects`` and
``train.epochs`` set, then runs every stage of the DAG but ``predict`` (query, cutouts,
clean, impute, balance, baselines, train, evaluate) with the library alone (no
Prefect), each in a fresh process, so that each stage's peak RSS is its own: the
parent collects it with ``os.wait4`` (the child's ``ru_maxrss``, its own threads and
any process it started included). Then it measures the size of every output, records
them with ``dvc commit`` (as ``skysort run`` does) and times ``dvc status`` on the
result. Writes ``docs/results/scale.md`` (and ``.json``) through ``benchmarks/results.py``;
``SKYSORT_RESULTS_DIR`` sends a trial run elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from results import Table, add_history_options, write_results

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("query", "cutouts", "clean", "impute", "balance", "baselines", "train", "evaluate")

CHILD = """
import json, sys, time
from skysort.config import load_params
from skysort.pipeline.registry import run_stage
started = time.perf_counter()
report = run_stage(sys.argv[1], load_params("params.yaml"))
seconds = time.perf_counter() - started
keep = ("kept_rows", "objects", "status_counts", "rows_after", "train_rows", "seconds_per_epoch",
        "first_epoch_seconds", "epochs_run", "best_epoch", "accuracy", "f1_macro", "imputed", "packs")
print(json.dumps({"seconds": seconds, **{k: report[k] for k in keep if k in report}}))
"""


def environment() -> dict[str, str]:
    """The children's environment: no analytics, TensorFlow quiet, this venv's bin on PATH."""
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def git(*args: str, cwd: Path) -> None:
    ident = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
             "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}  # fmt: skip
    subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **ident}, check=True,
                   capture_output=True)  # fmt: skip


def make_project(dest: Path, objects: int, epochs: int, settings: list[str] = ()) -> None:
    """The tracked files of this repo in ``dest``, params set, committed as a new git repo.

    ``settings``: more ``KEY=VALUE`` parameters (dotted keys, YAML values).
    """
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.splitlines()  # fmt: skip
    for rel in listed:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["query"]["n_objects"] = objects
    params["train"].update(epochs=epochs, patience=max(epochs, params["train"]["patience"]))
    for setting in settings:
        key, _, value = setting.partition("=")
        *parents, leaf = key.split(".")
        section = params
        for name in parents:
            section = section[name]
        section[leaf] = yaml.safe_load(value)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git("init", "-q", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-qm", "scale benchmark project", cwd=dest)


def run_measured(args: list[str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run ``args`` in a fresh process; wall seconds, peak RSS (MB), CPU seconds and stdout."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log, "w") as err, tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err, env=environment())
        samples = RssSampler(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        samples.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        stdout = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {proc.returncode}); see {log}")
    return {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "load_before": load,
        "stdout": stdout,
        "rss_mb_over_time": samples.quantiles(),
    }


class RssSampler:
    """The child's resident set every ``every_s`` seconds (``/proc/PID/status``), on a thread.

    Peak RSS alone cannot tell a stage that holds a batch from one that grows with the
    objects it has seen; the RSS at 10 %, 25 %, 50 %, 75 % and 90 % of the stage's run
    can: flat means the same figures late as early.
    """

    def __init__(self, pid: int, every_s: float = 1.0) -> None:
        import threading

        self._path = Path(f"/proc/{pid}/status")
        self._every = every_s
        self._stop = threading.Event()
        self.mb: list[float] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                text = self._path.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    self.mb.append(int(line.split()[1]) / 1024)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def quantiles(self) -> dict[str, int]:
        if not self.mb:
            return {}
        return {f"{q}%": round(self.mb[min(len(self.mb) - 1, len(self.mb) * q // 100)])
                for q in (10, 25, 50, 75, 90)}  # fmt: skip


def output_sizes(project: Path, stages: list[str]) -> list[list[Any]]:
    """Every output of the measured ``stages``: path, files, bytes."""
    from skysort.config import load_params
    from skysort.pipeline.registry import get

    paths = load_params(project / "params.yaml").paths
    rows = []
    for name in stages:
        for key in get(name).writes:
            path = project / getattr(paths, key)
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            rows.append([name, str(getattr(paths, key)), len(files),
                         sum(p.stat().st_size for p in files)])  # fmt: skip
    return rows


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of a command, and the last line it printed (with its exit status if not 0)."""
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=environment(), capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    said = lines[-1] if lines else ""
    if done.returncode != 0:
        said = f"exit {done.returncode}: {said}"
    return time.perf_counter() - started, said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="build the project here and keep it")
    parser.add_argument("--no-dvc", action="store_true", help="skip dvc commit and status")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=STAGES,
                        help="only these (with --reuse: a trial on a kept project)")  # fmt: skip
    parser.add_argument("--reuse", action="store_true", help="use the project in --workdir")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="another parameter, e.g. cutouts.pack_size=10000")  # fmt: skip
    parser.add_argument("--page", default="scale",
                        help="the results page to write (docs/results/PAGE.md)")  # fmt: skip
    add_history_options(parser, "scale")
    args = parser.parse_args()
    if args.rewrite:
        record = json.loads(args.rewrite.read_text())
        tables = [Table(t["columns"], t["rows"], caption=t["caption"], digits=2)
                  for t in record["tables"] if t["caption"] != EARLIER]  # fmt: skip
        publish(tables, [*record["notes"], *args.note], record["figures"], args.before,
                argv=shlex.split(record["command"])[2:],
                now=datetime.fromisoformat(record["date"]), page=args.page)  # fmt: skip
        return
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="skysort-scale-")
        project = Path(tmp.name)
    else:
        project = args.workdir.resolve()
        project.mkdir(parents=True, exist_ok=args.reuse)
    try:
        if not args.reuse:
            make_project(project, args.objects, args.epochs, args.settings)
        print(f"{args.objects} simulated objects, {args.epochs} epoch(s), {os.cpu_count()} CPUs, "
              f"project in {project}", flush=True)  # fmt: skip
        # Each stage's figures are kept in the project as it finishes: --reuse skips those
        # already measured, so a run that fails late (in DVC, say) is finished, not redone.
        progress = project / ".scale-stages.json"
        done = json.loads(progress.read_text()) if args.reuse and progress.exists() else {}
        stages, details = [], {}
        measured = [s for s in STAGES if s in args.stages]
        for name in measured:
            if name not in done:
                got = run_measured([sys.executable, "-c", CHILD, name], project,
                                   project / f".scale-{name}.log")  # fmt: skip
                over_time = " / ".join(str(v) for v in got["rss_mb_over_time"].values())
                done[name] = {"row": [name, round(got["wall_s"], 1), round(got["peak_rss_mb"]),
                                      round(got["cpu_s"], 1), round(got["load_before"], 2),
                                      over_time],
                              "report": json.loads(got["stdout"].strip().splitlines()[-1])}  # fmt: skip
                progress.write_text(json.dumps(done, indent=1))
            row = done[name]["row"]
            stages.append([*row, *[""] * (6 - len(row))])  # rows kept from before the RSS column
            details[name] = done[name]["report"]
            print(f"{name:10s} {stages[-1][1]:8.1f} s {stages[-1][2]:8.0f} MB  {details[name]}",
                  flush=True)  # fmt: skip
        sizes = output_sizes(project, measured)
        dvc_rows: list[list[Any]] = []
        if not args.no_dvc:
            dvc = [sys.executable, "-m", "dvc"]
            commit = timed([*dvc, "commit", "--force", "--quiet", *measured], project)
            dvc_rows.append(["dvc commit --force STAGES (hash and cache every output)",
                             round(commit[0], 2), commit[1]])  # fmt: skip
            for attempt in ("first", "second"):
                status = timed([*dvc, "status", *measured], project)
                dvc_rows.append([f"dvc status STAGES ({attempt})", round(status[0], 2), status[1]])
            for row in dvc_rows:
                print(f"{row[0]:55s} {row[1]:8.2f} s  {row[2]}", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    non_train = sum(row[1] for row in stages if row[0] != "train")
    tables = [
        Table(["stage", "wall (s)", "peak RSS (MB)", "CPU (s)", "load average before",
               "RSS at 10 / 25 / 50 / 75 / 90 % of the stage (MB)"], stages,
              caption="Each stage in its own process (the library alone, no Prefect)", digits=2),
        Table(["stage", "output", "files", "bytes"], sizes, caption="Outputs"),
    ]  # fmt: skip
    if dvc_rows:
        tables.append(
            Table(["command", "seconds", "said"], dvc_rows, caption="DVC on the result", digits=2)
        )
    peak = max(row[2] for row in stages)
    notes = [
        f"{args.objects} simulated objects, {args.epochs} epoch(s); peak RSS of the largest stage "
        f"{peak} MB; every stage but train {non_train:.0f} s in all. Peak RSS is each stage "
        "process's own maximum resident set (``os.wait4``), TensorFlow's and the "
        "interpreter's start-up included. The machine was shared with other work: the "
        "load average before each stage is in the table.",
        *args.note,
    ]
    figures = {"objects": args.objects, "epochs": args.epochs, "stages": details}
    publish(tables, notes, figures, args.before, page=args.page)


EARLIER = "Earlier runs of this script (wall s / peak RSS MB per stage)"


def publish(
    tables: list[Table],
    notes: list[str],
    figures: dict[str, Any],
    before: list[str],
    page: str = "scale",
    **kw: Any,
) -> None:
    """Write the page; ``before``: ``LABEL=JSON`` earlier runs, as one more table."""
    if before:
        runs = [(label, json.loads(Path(path).read_text()))
                for label, _, path in (b.partition("=") for b in before)]  # fmt: skip
        per_run = [{row[0]: f"{row[1]} / {row[2]}" for row in r["tables"][0]["rows"]}
                   for _, r in runs]  # fmt: skip
        rows = [[stage, *(seen.get(stage, "") for seen in per_run)] for stage in STAGES]
        columns = ["stage", *(f"{label} ({r['date'][:10]})" for label, r in runs)]
        tables = [*tables, Table(columns, rows, caption=EARLIER)]
        figures = {**figures, "earlier": {label: {"command": r["command"], "date": r["date"],
                                                  "stages": r["tables"][0]["rows"]}
                                          for label, r in runs}}  # fmt: skip
    write_results(page, tables, title="The whole DAG at scale: time, memory, outputs, DVC",
                  notes=notes, figures=figures, script="scale.py", **kw)  # fmt: skip


if __name__ == "__main__":
    main()
