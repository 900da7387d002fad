"""Time the README's quickstart, `skysort run`, and the share of it the Prefect UI costs.

    python benchmarks/quickstart.py                       # params.yaml's defaults, as the README
    python benchmarks/quickstart.py --set query.n_objects=300 --set train.epochs=2   # a quick try
    python benchmarks/quickstart.py --set train.precision=mixed_bfloat16 --page quickstart_bf16

Runs `skysort run` (the command's own code, ``skysort.flows.cli``, in this process) in a
temporary copy of the project (this working tree's files, committed to a fresh git repo,
so the run records its outputs in DVC as a user's does), on the simulated survey, without
``PREFECT_API_URL``: the temporary server a newcomer gets. There is no switch to turn the
UI off, so its cost is timed where it is paid, on the run's own path: every artifact the
stages and the flow publish (summaries, tables, the pictures' thumbnails and the run's
copies of them, the run summary), the progress artifacts' updates, and the run's tags.
Stages run one after another, so that time is what the UI adds to the run. Writes the
figures, with the command, the date, the machine and its load (the machine may be shared),
to ``docs/results/quickstart.md`` (and ``.json``) through ``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from results import Table, write_results

ROOT = Path(__file__).resolve().parents[1]

UI_WORK = {
    # (module, name) -> what it is; each is looked up by that module at call time
    ("skysort.tasks.stages", "publish"): "stage artifacts (tables, text, thumbnails, copies)",
    ("skysort.tasks.shards", "publish"): "stage artifacts (tables, text, thumbnails, copies)",
    ("skysort.flows.pipeline", "run_summary"): "run summary artifact",
    ("skysort.flows.pipeline", "publish_artifacts"): "run summary artifact",
    ("skysort.tasks.progress", "create_progress_artifact"): "progress artifacts",
    ("skysort.tasks.progress", "update_progress_artifact"): "progress artifacts",
    ("skysort.flows.pipeline", "tag_flow_run"): "run tags",
}


class Clock:
    """Seconds spent inside wrapped functions, by label; a nested call is not counted twice."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._depth = threading.local()
        self._lock = threading.Lock()

    def wrap(self, label: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth.n = depth
                if depth == 0:
                    name = label(*args, **kwargs) if callable(label) else label
                    with self._lock:
                        self.seconds[name] += time.perf_counter() - started
                        self.calls[name] += 1

        return timed


STARTUP = "temporary Prefect server start, with the flow's imports meanwhile"
IMPORT = "the command's imports (skysort.flows.cli: Prefect, the CLI)"
RECORD = "recording in DVC (dvc commit, remote check)"
REST = "the rest (flow and task runs, summary, the server's stop)"


def clocked_start(clock: Clock, start: Callable[..., Any]) -> Callable[..., Any]:
    """``start`` returns a wait for the server; the clock counts the call and the wait."""

    @functools.wraps(start)
    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        wait = start(*args, **kwargs)
        before = time.perf_counter() - began

        def waited() -> Any:
            resumed = time.perf_counter()
            try:
                return wait()
            finally:
                with clock._lock:
                    clock.seconds[STARTUP] += before + time.perf_counter() - resumed
                    clock.calls[STARTUP] += 1

        return waited

    return timed


@contextlib.contextmanager
def patched(clock: Clock, stage_clock: Clock) -> Iterator[None]:
    """Wrap the UI's work, the temporary server's start and each stage in the clocks."""
    targets: dict[tuple[str, str], Any] = {
        key: clock.wrap(label, getattr(importlib.import_module(key[0]), key[1]))
        for key, label in UI_WORK.items()
    }
    cli = "skysort.flows.cli", "start_tied_temporary_server"
    targets[cli] = clocked_start(stage_clock, getattr(importlib.import_module(cli[0]), cli[1]))
    for name in ("commit_outputs", "has_remote", "push_outputs"):
        key = "skysort.pipeline.versioning", name
        targets[key] = stage_clock.wrap(RECORD, getattr(importlib.import_module(key[0]), name))
    stage = "skysort.flows.pipeline", "run_in_flow"
    targets[stage] = stage_clock.wrap(lambda name, *a, **k: name, getattr(
        importlib.import_module(stage[0]), stage[1]))  # fmt: skip
    saved = {key: getattr(importlib.import_module(key[0]), key[1]) for key in targets}
    for (module, name), fn in targets.items():
        setattr(importlib.import_module(module), name, fn)
    try:
        yield
    finally:
        for (module, name), fn in saved.items():
            setattr(importlib.import_module(module), name, fn)


def copy_project(dest: Path) -> Path:
    """This working tree's files (tracked, or new and not ignored), committed to a repo at ``dest``.

    New files too: the package runs from this working tree, and ``dvc.yaml`` may list a
    new module among a stage's code deps.
    """
    listed = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    tracked = subprocess.run(listed, cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split("\n")  # fmt: skip
    for rel in filter(None, tracked):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    who = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "quickstart benchmark"]):
        subprocess.run(["git", *args], cwd=dest, check=True, env={**os.environ, **who})
    return dest


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="a `skysort run --set` override (repeatable); none = the README's run")  # fmt: skip
    parser.add_argument("--page", default="quickstart",
                        help="the results page to write (docs/results/PAGE.md); another name "
                        "keeps the README run's page apart from a variant's")  # fmt: skip
    args = parser.parse_args()
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    began = time.perf_counter()  # what `skysort` imports before it runs (a user pays it too)
    from skysort.flows.cli import app, turn_analytics_off

    cli_import = time.perf_counter() - began

    turn_analytics_off()
    command = ["run", *[x for s in args.sets for x in ("--set", s)]]
    ui, stages = Clock(), Clock()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="skysort-quickstart-") as tmp:
        root = copy_project(Path(tmp) / "project")
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect-home")  # a new user's, empty
        load_before = load()
        os.chdir(root)
        try:
            with patched(ui, stages):
                started = time.perf_counter()
                code = app(command, standalone_mode=False)
                total = time.perf_counter() - started + cli_import
            if code:  # the command failed (it said why): no figures of a failed run
                raise SystemExit(code)
            metrics = json.loads((root / "reports" / "metrics.json").read_text())
        finally:
            os.chdir(cwd)
        load_after = load()
    ui_total = sum(ui.seconds.values())
    share = 100 * ui_total / total
    print(f"skysort {' '.join(command)}: {total:.1f} s, of which the UI {ui_total:.2f} s "
          f"({share:.2f} %); load {load_before} -> {load_after}, {os.cpu_count()} CPUs")  # fmt: skip
    ui_rows = [[label, ui.calls[label], round(s, 3), round(100 * s / total, 2)]
               for label, s in sorted(ui.seconds.items(), key=lambda kv: -kv[1])]  # fmt: skip
    ui_rows.append(["all of the UI's work", sum(ui.calls.values()), round(ui_total, 3),
                    round(share, 2)])  # fmt: skip
    stage_rows = [[IMPORT, round(cli_import, 2)],
                  *[[name, round(s, 2)] for name, s in stages.seconds.items()],
                  [REST, round(total - cli_import - sum(stages.seconds.values()), 2)]]  # fmt: skip
    stage_rows.append(["whole command (wall)", round(total, 2)])
    for row in ui_rows + stage_rows:
        print("  ", *row)
    verdict = "within" if share <= 5 else "over"
    outside_training = total - stages.seconds.get("train", 0.0)
    headline = {k: metrics.get(k) for k in ("accuracy", "f1_macro", "roc_auc_macro", "hamming_loss")
                if metrics.get(k) is not None}  # fmt: skip
    write_results(
        args.page,
        [
            Table(
                ["UI work", "calls", "seconds", "% of the run"],
                ui_rows,
                caption="What the Prefect UI costs the run",
                digits=3,
            ),
            Table(["step", "seconds"], stage_rows, caption="Seconds per stage", digits=2),
        ],
        title="The quickstart: `skysort run`, and the UI's share of it",
        notes=[
            f"`skysort {' '.join(command)}` in a temporary copy of the project, on the "
            "simulated survey, with no PREFECT_API_URL (a temporary server), recording in DVC. "
            f"It took {total:.1f} s; the Prefect UI's work (artifacts, thumbnails, the run's "
            f"picture copies, progress updates, tags) took {ui_total:.2f} s of it, "
            f"{share:.2f} %: {verdict} the 5 % the UI may add.",
            f"Everything but training took {outside_training:.1f} s (imports, start-up, the "
            "other stages, recording in DVC; the goal is under 45 s). The run's test metrics: "
            + ", ".join(f"{k} {v!r}" for k, v in headline.items())
            + ".",
            f"Load average (1, 5, 15 min) before the run {load_before}, after it {load_after}, "
            f"on {os.cpu_count()} CPUs: the machine is shared, so the seconds are only as "
            "steady as its load; the UI's share is the figure to compare.",
        ],
        figures={
            "command": ["skysort", *command],
            "seconds": total,
            "ui_seconds": ui_total,
            "ui_share_percent": share,
            "outside_training_seconds": outside_training,
            "metrics": headline,
            "load_before": load_before,
            "load_after": load_after,
        },
    )


if __name__ == "__main__":
    main()
