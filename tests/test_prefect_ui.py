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
    # each full-size link opens this run's own copy, the same bytes the stage wrote
    folder = (run["root"] / "reports" / "runs" / str(run["id"])).resolve()
    for key in keys:
        links = _file_links(by_key[key]["data"])
        assert links and all(folder in link.parents for link in links), links
    plots_dir = run["root"] / "reports" / "plots"
    pictures = [p for p in _file_links(by_key[f"{task}-evaluate-plots"]["data"]) if p.suffix]
    assert len(pictures) == 5
    for link in pictures:
        assert link.read_bytes() == (plots_dir / link.name).read_bytes()


def _file_links(markdown_text: str) -> list[Path]:
    """The local files a Markdown text links to (``file://`` URIs)."""
    from urllib.parse import unquote, urlparse

    uris = re.findall(r"\]\((file://[^)\s]+)\)", markdown_text)
    return [Path(unquote(urlparse(u).path)) for u in uris]


@pytest.mark.slow
def test_an_old_runs_links_still_open_its_own_pictures(prefect_server, tmp_path, monkeypatch):
    """Two flow runs publish a picture of the same path; the first run's links open its own."""
    import hashlib

    from prefect import flow

    from skysort.config.operations import Ui
    from skysort.tasks.artifacts import publish_artifacts

    monkeypatch.chdir(tmp_path)
    plot = Path("reports/plots/confusion.png")
    plot.parent.mkdir(parents=True)
    ui = Ui(keep_runs=5)

    @flow(name="publish-a-picture")
    def publish(seed: int) -> None:
        _noise_png(plot, 300 + seed, 200)  # this run's picture, where every run writes it
        images = Images("evaluate-plots", f"# Plots\n\n[{plot.parent}]({plot.parent.resolve().as_uri()})",
                        (Picture("confusion", plot),), "plots")  # fmt: skip
        publish_artifacts([images], "multiclass", ui)

    digests = []
    ids = []
    for seed in (1, 2):
        state = publish(seed, return_state=True)
        assert state.is_completed(), state.message
        ids.append(state.state_details.flow_run_id)
        digests.append(hashlib.sha256(plot.read_bytes()).hexdigest())
    assert digests[0] != digests[1]
    for run_id, digest in zip(ids, digests, strict=True):
        (artifact,) = _artifacts(prefect_server, run_id, key="multiclass-evaluate-plots")
        links = _file_links(artifact["data"])
        assert len(links) == 2  # the folder (from the intro) and the picture
        folder, picture = links
        assert hashlib.sha256(picture.read_bytes()).hexdigest() == digest  # its own picture
        assert folder == (tmp_path / "reports/runs" / str(run_id) / "evaluate-plots").resolve()
        assert picture.parent == folder


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


def test_each_run_keeps_its_own_copies_of_the_pictures_it_links_to(tmp_path):
    from skysort.pipeline.run_pictures import keep_pictures, run_folder
    from skysort.tasks.artifacts import images_markdown

    plots = tmp_path / "reports" / "plots"
    plots.mkdir(parents=True)
    intro = f"# Plots\n\nfull size in [{plots}]({plots.resolve().as_uri()})."
    runs = tmp_path / "reports" / "runs"
    first, second = "0" * 8 + "-0000-4000-8000-" + "0" * 12, "1" * 8 + "-1111-4111-8111-" + "1" * 12
    shown = {}
    for run_id, width in ((first, 300), (second, 400)):  # the second run overwrites the plot
        _noise_png(plots / "roc.png", width, 200)
        images = Images("evaluate-plots", intro, (Picture("ROC", plots / "roc.png"),
                                                  Picture("gone", plots / "missing.png")), "d")  # fmt: skip
        shown[run_id] = (keep_pictures(images, run_folder(runs, run_id) / "evaluate-plots"),
                         (plots / "roc.png").read_bytes())  # fmt: skip
    for run_id, (images, written) in shown.items():
        copy = runs / run_id / "evaluate-plots" / "roc.png"
        assert images.pictures[0].path == copy and copy.read_bytes() == written
        assert images.pictures[1].path == plots / "missing.png"  # nothing to copy: left as is
        text = images_markdown(images)
        assert f"({copy.resolve().as_uri()})" in text and plots.resolve().as_uri() + ")" not in text
        assert f"({copy.parent.resolve().as_uri()})" in text  # the intro's folder link
    assert (plots / "roc.png").read_bytes() == shown[second][1]  # the DVC output is untouched
    assert shown[first][1] != shown[second][1]
    with pytest.raises(ValueError, match="not a run id"):
        run_folder(runs, "../escape")


def test_only_the_newest_run_folders_are_kept_and_nothing_else_is_removed(tmp_path):
    import os

    from skysort.pipeline.run_pictures import prune_runs

    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(5)]
    for age, run_id in enumerate(ids):  # ids[0] is the newest, ids[4] the oldest
        (tmp_path / run_id / "evaluate-plots").mkdir(parents=True)
        os.utime(tmp_path / run_id, (1_000_000 - age * 100, 1_000_000 - age * 100))
    (tmp_path / "notes").mkdir()  # not a run folder: a person's
    (tmp_path / "README.txt").write_text("mine")
    removed = prune_runs(tmp_path, keep=2, current=tmp_path / ids[4])
    assert sorted(p.name for p in removed) == sorted(ids[2:4])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*ids[:2], ids[4], "notes",
                                                                 "README.txt"])  # fmt: skip
    assert prune_runs(tmp_path / "none-yet", keep=2) == []


def test_the_runs_folder_is_a_place_of_its_own_inside_the_project(tmp_path):
    from skysort.config import ConfigError, load_params

    (tmp_path / "params.yaml").write_text("{}\n")
    for where, why in (("reports/plots/runs", "overlaps paths.plots"),
                       ("data", "overlaps paths.catalog"),
                       ("../elsewhere", "not inside the project")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"ui.runs_dir: .*{why}"):
            load_params(tmp_path / "params.yaml", [f"ui.runs_dir={where}"])
    assert load_params(tmp_path / "params.yaml").ui.runs_dir == Path("reports/runs")


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


def test_the_summary_links_the_plots_to_this_runs_copies(tmp_path):
    plots, mine = tmp_path / "plots", tmp_path / "runs" / "abc"
    plots.mkdir()
    params = Params(paths={"plots": plots})
    shared = run_summary(params, {}, RunFacts("params.yaml")).text
    assert f"- plots: [{plots}]({plots.as_uri()})" in shared  # no copies: the shared folder
    mine.mkdir(parents=True)
    text = run_summary(params, {}, RunFacts("params.yaml", pictures=mine)).text
    assert f"({mine.as_uri()})" in text and f"({plots.as_uri()})" not in text


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
