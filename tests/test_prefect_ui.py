"""What a person sees of a pipeline run in the Prefect UI.

The task graph is the DAG ``dvc dag`` prints (both tasks, and the sharded stages on
Dask: the multiclass run shards), the plots are pictures, the run ends with one summary, training shows its
progress, and every artifact key, run name and tag says the task. The slow tests
share one tiny pipeline run per case (module-scoped); the quick ones need no server.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from skysort.config import Params
from skysort.pipeline import registry
from skysort.pipeline.run_summary import RunFacts, run_summary
from skysort.pipeline.stage import Images, Picture
from tests.project import dvc, make_project
from tests.waiting import wait_for

# As small as a run can be and still draw every edge: few objects, one epoch, tiny nets.
TINY: dict[str, Any] = {
    "query": {"n_objects": 150},
    "baselines": {"models": ["logreg", "tree"]},
    "train": {"epochs": 2, "model": "tabular", "patience": 1},
}
CASES: dict[str, dict[str, Any]] = {
    # the quickstart's task, recorded in DVC as `skysort run` does, with cutouts and clean
    # sharded over a Dask cluster (threads, one worker); the other stages run as tasks here
    "multiclass": {
        "task": "multiclass",
        "record": True,
        "params": {
            "runner": {"kind": "dask", "n_workers": 1, "processes": False, "shard_size": 60}
        },
    },
    # an image model, so evaluate explains one object with a picture; every stage a task
    "multilabel": {
        "task": "multilabel",
        "record": False,
        "params": {
            "query": {"n_objects": 200},
            "train": {"model": "fusion", "conv_filters": [4], "dense_units": [8]},
            "evaluate": {"explain": 1, "lime_samples": 10},
        },
    },
}


# -- one tiny pipeline run per case ------------------------------------------------------


@pytest.fixture(scope="module", params=list(CASES))
def run(request, tmp_path_factory, prefect_server) -> dict[str, Any]:
    """A finished pipeline flow run of a case: its id, project, task and the server's URL."""
    case = CASES[request.param]
    root = make_project(tmp_path_factory.mktemp(request.param) / "proj", _merged(case))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["task"] = case["task"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    from skysort.flows.pipeline import pipeline

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        state = pipeline(params_path="params.yaml", record=case["record"], return_state=True)
    assert state.is_completed(), state.message
    return {"case": request.param, "id": state.state_details.flow_run_id, "root": root,
            "task": case["task"], "record": case["record"], "api": prefect_server}  # fmt: skip


def _merged(case: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) for k, v in TINY.items()}
    for section, values in case.get("params", {}).items():
        out.setdefault(section, {}).update(values)
    return out


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _task_runs(flow_run_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with _client() as client:
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )


def _node(task_run) -> str:
    """A task run as the graph names it: its stage (a stage task or a sharded subflow)."""
    stages = [t.removeprefix("stage:") for t in task_run.tags if t.startswith("stage:")]
    return stages[0] if len(stages) == 1 and task_run.flow_run_id else task_run.name


def _graph(runs, name=_node) -> set[tuple[str, str]]:
    """Every edge the UI draws: each input of each task run (parameters, wait_for, parents).

    An input that is not another task run of this flow run shows as ``?KIND``, so that it
    fails the comparison rather than disappearing.
    """
    names = {r.id: name(r) for r in runs}
    edges = set()
    for r in runs:
        for inputs in r.task_inputs.values():
            for i in inputs:
                src = names.get(getattr(i, "id", None), f"?{i.input_type}")
                edges.add((src, names[r.id]))
    return edges


def _dvc_edges(root: Path) -> set[tuple[str, str]]:
    dot = dvc("dag", "--dot", cwd=root).stdout
    return set(re.findall(r'"([\w-]+)"\s*->\s*"([\w-]+)"', dot))


def _artifacts(api: str, flow_run_id=None, key: str | None = None) -> list[dict[str, Any]]:
    import httpx

    where: dict[str, Any] = {}
    if flow_run_id is not None:
        where["flow_run_id"] = {"any_": [str(flow_run_id)]}
    if key is not None:
        where["key"] = {"any_": [key]}
    body = {"artifacts": where, "limit": 200, "offset": 0, "sort": "CREATED_DESC"}
    resp = httpx.post(f"{api}/artifacts/filter", json=body, timeout=30)
    resp.raise_for_status()
    return resp.json()


def _run_artifacts(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Every artifact of the run: its own, its task runs' and its subflows'."""
    return _artifacts(run["api"], run["id"])


# -- 1. the graph is the DAG -----------------------------------------------------------


@pytest.mark.slow
def test_the_task_graph_is_the_dag_dvc_prints(run):
    dag = {(u, s) for s in registry.NAMES for u in registry.upstream(s)}
    assert dag == {(a, b) for a, b in _dvc_edges(run["root"]) if b in registry.NAMES}
    sinks = set(registry.NAMES) - {u for u, _ in dag}
    want = dag | ({(s, "record-in-dvc") for s in sinks} if run["record"] else set())
    nodes = {n for edge in want for n in edge} | set(registry.NAMES)
    # task runs reach the server as events: wait until all of them are there
    runs = wait_for(lambda: _task_runs(run["id"]), lambda rs: {_node(r) for r in rs} >= nodes,
                    what=f"the task runs {sorted(nodes)}")  # fmt: skip
    assert _graph(runs) == want
    assert ("query", "impute") not in _graph(runs)  # no edge the parameters would draw


@pytest.mark.slow
def test_a_sharded_stage_is_prepare_then_its_shards_then_merge(run):
    if "runner" not in CASES[run["case"]].get("params", {}):
        pytest.skip("this run shards nothing")
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentTaskRunId

    parents = {r.id: _node(r) for r in _task_runs(run["id"])}
    with _client() as client:
        subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_task_run_id=FlowRunFilterParentTaskRunId(any_=list(parents))))  # fmt: skip
    assert sorted(parents[f.parent_task_run_id] for f in subflows) == ["clean", "cutouts"]
    for subflow in subflows:
        stage = parents[subflow.parent_task_run_id]
        shards = [f"{stage}-shard-{i}" for i in range(3)]  # 150 rows, 60 a shard
        want = {(f"{stage}-prepare", s) for s in shards} | {(s, f"{stage}-merge") for s in shards}
        runs = wait_for(lambda s=subflow: _task_runs(s.id), lambda rs: len(rs) == 5,
                        what=f"{stage}'s five task runs")  # fmt: skip
        assert _graph(runs, name=lambda r: r.name) == want


# -- 2. pictures -----------------------------------------------------------------------


@pytest.mark.slow
def test_plots_and_explanations_are_embedded_pictures(run):
    by_key = {a["key"]: a for a in _run_artifacts(run) if a.get("key")}
    task = run["task"]
    keys = [f"{task}-evaluate-plots"]
    if run["case"] == "multilabel":
        keys.append(f"{task}-evaluate-explanations")
    for key in keys:
        pngs = _embedded_pngs(by_key[key]["data"])
        assert pngs, by_key[key]["data"][:500]
        for png in pngs:
            assert png.format == "PNG" and png.width <= 480 and png.height <= 480
    plots = _embedded_pngs(by_key[f"{task}-evaluate-plots"]["data"])
    assert len(plots) == 5  # confusion, ROC, PR, training curves, gallery


def _embedded_pngs(markdown_text: str) -> list[Image.Image]:
    """The pictures a Markdown text embeds as data URIs, rendered as the UI renders them."""
    import markdown

    html = markdown.markdown(markdown_text, extensions=["tables"])
    uris = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return [Image.open(io.BytesIO(base64.b64decode(u))) for u in uris]


# -- 3. one summary per run; keys, names and tags say the task -------------------------


@pytest.mark.slow
def test_the_run_ends_with_one_summary_of_the_net_and_every_baseline(run):
    task = run["task"]
    (summary,) = _artifacts(run["api"], run["id"], key=f"{task}-run-summary")
    assert summary["flow_run_id"] == str(run["id"]) and summary["task_run_id"] is None
    text = summary["data"]
    for model in ("net: ", "logreg", "tree", "(best)"):
        assert model in text, text
    assert text.count("(best)") == 1
    assert "## Data lost" in text and ", evaluate " in text  # losses, time per stage
    assert f"| task | {task} |" in text
    if run["record"]:
        assert "committed to the DVC cache" in text


@pytest.mark.slow
def test_artifact_keys_run_names_and_tags_say_the_task(run):
    task = run["task"]
    keys = {a["key"] for a in _run_artifacts(run) if a.get("key")}
    assert keys and all(k.startswith(f"{task}-") for k in keys), keys
    assert {f"{task}-evaluate-metrics", f"{task}-baselines-metrics"} <= keys
    with _client() as client:
        flow_run = client.read_flow_run(run["id"])
    assert flow_run.name.startswith(f"pipeline: {task}, synthetic, ")
    assert f"task:{task}" in flow_run.tags


# -- 4. training progress ----------------------------------------------------------------


@pytest.mark.slow
def test_training_reports_progress_per_epoch(run):
    (progress,) = _artifacts(run["api"], run["id"], key=f"{run['task']}-train-progress")
    assert progress["type"] == "progress" and float(progress["data"]) == 100.0
    assert re.search(r"(epoch 2 of 2|stopped early after epoch 1 of 2)", progress["description"])
    assert "val_" in progress["description"]


# -- the quick tier: no server -----------------------------------------------------------


def _noise_png(path: Path, width: int, height: int) -> Path:
    # random pixels do not compress: the worst case for the size cap
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_a_thumbnail_fits_480_px_and_60_kb_whatever_the_picture(tmp_path):
    from skysort.tasks.thumbnails import MAX_BYTES, MAX_SIDE, thumbnail_png

    for width, height in ((2000, 1500), (300, 2400), (200, 100)):
        png = thumbnail_png(_noise_png(tmp_path / f"{width}.png", width, height))
        assert png is not None and len(png) <= MAX_BYTES == 60_000
        picture = Image.open(io.BytesIO(png))
        assert picture.format == "PNG" and max(picture.size) <= MAX_SIDE == 480
        assert picture.width / picture.height == pytest.approx(width / height, rel=0.05)
    # a plot-like picture keeps its full thumbnail size
    flat = np.full((900, 1200, 3), 255, dtype=np.uint8)
    flat[100:800, 100:1100] = (30, 90, 200)
    Image.fromarray(flat).save(tmp_path / "plot.png")
    assert Image.open(io.BytesIO(thumbnail_png(tmp_path / "plot.png"))).size == (480, 360)
    # something that is not a picture gives none, and says so in the log
    (tmp_path / "broken.png").write_bytes(b"<html>not a png</html>")
    assert thumbnail_png(tmp_path / "broken.png") is None


def test_pictures_render_as_img_tags_holding_the_thumbnails(tmp_path):
    from skysort.tasks.artifacts import images_markdown

    pictures = [
        Picture(f"plot {i}", _noise_png(tmp_path / f"p{i}.png", 900, 600)) for i in range(3)
    ]
    pictures.append(Picture("gone", tmp_path / "missing.png"))
    text = images_markdown(Images("k", "# Plots", tuple(pictures), "d"), max_embedded=2)
    shown = _embedded_pngs(text)
    assert len(shown) == 2  # past max_embedded, and a missing file: links only
    assert all(p.width <= 480 and p.width == p.height * 3 // 2 for p in shown)
    assert f"({(tmp_path / 'p2.png').as_uri()})" in text and "missing.png" in text


def _reports(task: str) -> dict[str, dict[str, Any]]:
    if task == "multiclass":
        scores = {
            "evaluate": {"accuracy": 0.85, "f1_macro": 0.71},
            "logreg": {"accuracy": 0.80, "f1_macro": 0.74},
            "tree": {"accuracy": 0.70, "f1_macro": 0.60},
        }
    else:
        scores = {
            "evaluate": {"roc_auc_macro": 0.81, "pr_auc_macro": 0.5, "hamming_loss": 0.2},
            "logreg": {"roc_auc_macro": None, "pr_auc_macro": None, "hamming_loss": 0.3},
            "tree": {"roc_auc_macro": 0.62, "pr_auc_macro": 0.4, "hamming_loss": 0.3},
        }
    return {
        "query": {"rows": 150},
        "clean": {
            "input_rows": 150,
            "kept_rows": 140,
            "dropped_by_reason": {"missing_cutout": 6, "blank_cutout": 4},
        },  # fmt: skip
        "baselines": {"models": {m: {**scores[m], "fit_seconds": 0.1} for m in ("logreg", "tree")}},
        "evaluate": scores["evaluate"],
    }


@pytest.mark.parametrize(("task", "best"), [("multiclass", "logreg"), ("multilabel", "net: ")])
def test_the_run_summary_marks_the_best_model_by_the_tasks_metric(tmp_path, task, best):
    params = Params(task=task, paths={"metrics": tmp_path / "metrics.json"})
    (tmp_path / "metrics.json").write_text("{}")
    facts = RunFacts("params.yaml", ["train.epochs=2"], {"query": 1.2, "evaluate": 3.4},
                     recorded="committed to the DVC cache", revision="abc1234+")  # fmt: skip
    summary = run_summary(params, _reports(task), facts)
    assert summary.key == "run-summary"
    (marked,) = [line for line in summary.text.splitlines() if "(best)" in line]
    assert marked.startswith(f"| **{best}")
    for part in ("| missing_cutout | 6 |", "**total 4.6 s**", "`train.epochs=2`",
                 "`abc1234+`", (tmp_path / "metrics.json").as_uri()):  # fmt: skip
        assert part in summary.text


def test_a_failed_runs_summary_says_what_failed_and_what_did_not_run():
    facts = RunFacts("params.yaml", failed="stage 'clean' failed: ValueError: boom")
    text = run_summary(Params(), {"query": {"rows": 150}}, facts).text
    assert "**Failed:** stage 'clean' failed" in text
    assert "No model was scored" in text and "Not cleaned in this run" in text


def test_training_progress_names_the_epoch_and_the_val_metric():
    from skysort.model.callbacks import ReportProgress

    calls: list[tuple[int, int, str]] = []
    callback = ReportProgress(lambda d, t, note=None: calls.append((d, t, note)), 5, "val_auc",
                              mode="max")  # fmt: skip
    for epoch, auc in enumerate([0.6, 0.7, 0.65]):
        callback.on_epoch_end(epoch, {"val_auc": np.float32(auc), "loss": 0.3})
    callback.on_train_end()
    assert calls[0] == (1, 5, "epoch 1 of 5, val_auc 0.6000")
    assert calls[2][:2] == (3, 5)
    assert calls[-1] == (5, 5, "stopped early after epoch 3 of 5; best val_auc 0.7000 at epoch 2")
