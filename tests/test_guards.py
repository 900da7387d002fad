"""Structural guards: the library stays free of Prefect; dvc.yaml says what the registry says."""

import ast
import tomllib
from pathlib import Path

import pytest
import yaml

from skysort.config import QUERIES_DIR, Params
from skysort.pipeline import codedeps, registry

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _forbidden(module: str) -> bool:
    return module.split(".")[0] in {"prefect", "prefect_dask", "tasks", "flows"} or (
        module.startswith(("skysort.tasks", "skysort.flows"))
    )


def test_library_never_imports_prefect_or_the_layers_above_it():
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in _imports(p) if _forbidden(m))
        for p in (ROOT / "src" / "skysort").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_every_package_is_installed():
    """pyproject lists packages explicitly (package-dir mapping); a new one must be added."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT / "src").parts)
        for p in (ROOT / "src" / "skysort").rglob("__init__.py")
    } | {"skysort.flows", "skysort.tasks"}
    assert found == listed


def test_stage_names_agree_across_registry_dvc_params_cli_tasks_and_flows():
    names = list(registry.NAMES)
    assert list(DVC) == names
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(names) <= set(raw) and set(names) <= set(Params.model_fields)
    for name, stage in DVC.items():
        assert stage["cmd"] == f"skysort stage {name}"
    from skysort.flows.cli import StageName
    from skysort.tasks.shards import SHARD_TASKS
    from skysort.tasks.stages import STAGE_TASKS

    assert [t.name for t in STAGE_TASKS.values()] == names
    assert [s.value for s in StageName] == names
    assert set(SHARD_TASKS) == {s.name for s in registry.STAGES if s.shards}


def _paths(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}


@pytest.mark.parametrize("stage", registry.STAGES, ids=registry.NAMES)
def test_dvc_data_deps_outs_and_params_are_the_stages_wiring(stage):
    entry = DVC[stage.name]
    data_deps = {d for d in _paths(entry["deps"]) if d.startswith("${")}
    assert data_deps == {f"${{paths.{r}}}" for r in stage.reads}
    written = _paths(entry.get("outs")) | _paths(entry.get("metrics")) | _paths(entry.get("plots"))
    # a folder output may be declared through the files DVC shows from it
    covered = {w for w in stage.writes if any(p.startswith(f"${{paths.{w}}}") for p in written)}
    assert covered == set(stage.writes)
    assert all(
        p.split("/")[0].removeprefix("${paths.").rstrip("}") in stage.writes for p in written
    )
    assert list(entry.get("params", [])) == list(stage.params)


def _code_dep_problems(stage, deps: set[str]) -> list[str]:
    want = set(codedeps.deps_by_stage([stage])[stage.name])
    have = {d for d in deps if d.startswith("src/")}

    def covers(h: str, w: str) -> bool:  # a file, or a folder holding it
        return w == h or w.startswith(h.rstrip("/") + "/")

    covered = {w for w in want if any(covers(h, w) for h in have)}
    problems = [f"add {w} (imported by the {stage.name} stage)" for w in sorted(want - covered)]
    stale = [h for h in have if not any(covers(h, w) for w in want)]
    problems += [f"remove {h} (the {stage.name} stage does not import it)" for h in sorted(stale)]
    return problems


# Deps that are neither a stage's data (${paths.*}) nor its code (src/).
OTHER_DEPS = {"query": {str(QUERIES_DIR)}}  # query.sql_file must live in queries/


@pytest.mark.parametrize("stage", registry.STAGES, ids=registry.NAMES)
def test_dvc_deps_are_data_code_or_declared(stage):
    deps = _paths(DVC[stage.name]["deps"])
    other = {d for d in deps if not d.startswith(("${", "src/"))}
    assert other == OTHER_DEPS.get(stage.name, set())
    assert all((ROOT / d).exists() for d in other)


@pytest.mark.parametrize("stage", registry.STAGES, ids=registry.NAMES)
def test_dvc_code_deps_are_every_module_the_stage_imports(stage):
    """Editing any module a stage runs must make ``dvc status`` call the stage stale."""
    problems = _code_dep_problems(stage, _paths(DVC[stage.name]["deps"]))
    assert not problems, "dvc.yaml: " + "; ".join(problems) + " (`skysort deps` lists them)"


def test_the_deps_guard_catches_a_dropped_import():
    stage = registry.get("impute")
    deps = _paths(DVC["impute"]["deps"]) - {"src/skysort/data/labels.py"}
    assert _code_dep_problems(stage, deps) == [
        "add src/skysort/data/labels.py (imported by the impute stage)"
    ]


def test_dvc_stage_params_exist_in_params_yaml():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, stage in DVC.items():
        for key in stage.get("params", []):
            node = raw
            for part in key.split("."):
                assert part in node, f"dvc.yaml stage {name} lists unknown param {key}"
                node = node[part]


def test_dvc_paths_are_templated_from_params():
    text = (ROOT / "dvc.yaml").read_text()
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for value in raw["paths"].values():
        assert f": {value}" not in text and f"- {value}\n" not in text, (
            f"{value} is written literally in dvc.yaml; use ${{paths...}}"
        )


def test_edges_follow_the_data():
    """Each stage waits for exactly the stages whose outputs it reads (the DAG dvc draws).

    Inputs no stage writes (the files source's ``paths.source_*``) add no edge.
    """
    writer = {w: s.name for s in registry.STAGES for w in s.writes}
    for stage in registry.STAGES:
        data_deps = [d[8:-1] for d in _paths(DVC[stage.name]["deps"]) if d.startswith("${")]
        from_dvc = {writer[d] for d in data_deps if d in writer}
        assert set(registry.upstream(stage.name)) == from_dvc
    assert registry.upstream("clean") == ("query", "cutouts")
    assert registry.upstream("query") == ()


def test_a_stage_cannot_read_a_parameter_dvc_does_not_track(tmp_path):
    from skysort.config import Paths
    from skysort.pipeline.stage import Stage

    def work(*, catalog, metrics, data, seed):  # reads `data`, which params may leave out
        Path(metrics).write_text(f"{len(data.features)} features, seed {seed}, {catalog.name}")
        return {}

    def make(params, reads=("catalog",)):
        return Stage(name="x", reads=reads, writes=("metrics",), params=params, function=work,
                     describe=str, summarize=lambda r, p: [])  # fmt: skip

    with pytest.raises(ValueError, match="reads 'data'"):
        make(("seed",))
    with pytest.raises(ValueError, match="reads 'catalog', which is neither a path it declares"):
        make(("seed", "data"), reads=())
    stage = make(("seed", "data.features"))
    params = Params(paths=Paths().under(tmp_path), seed=7)
    assert stage.run(params) == {}
    assert params.paths.metrics.read_text() == "6 features, seed 7, catalog.parquet"
    assert sorted(p.name for p in params.paths.metrics.parent.iterdir()) == ["metrics.json"]


def test_stage_paths_are_bound_by_name_and_checked_when_declared(tmp_path):
    """A misspelt or missing path argument, or a positional one, fails at declaration."""
    from skysort.config import Paths
    from skysort.pipeline.stage import Stage

    def make(function, reads=("dataset", "labels")):
        return Stage(name="x", reads=reads, writes=("metrics",), params=("seed",),
                     function=function, describe=str, summarize=lambda r, p: [])  # fmt: skip

    def misspelt(*, dataset, labels, metrics, sed): ...
    def missing(*, dataset, metrics, seed): ...
    def positional(dataset, labels, metrics, *, seed): ...
    def swapped(*, labels, dataset, metrics, seed):
        Path(metrics).write_text("{}")
        return {"dataset": dataset.name, "labels": labels.name}

    with pytest.raises(ValueError, match="reads 'sed', which is neither a path"):
        make(misspelt)
    with pytest.raises(ValueError, match=r"takes no argument for the paths \['labels'\]"):
        make(missing)
    with pytest.raises(ValueError, match="keyword-only"):
        make(positional)
    # the order of the arguments does not matter: each path arrives under its own name
    params = Params(paths=Paths().under(tmp_path), seed=1)
    assert make(swapped).run(params) == {"dataset": "dataset.parquet", "labels": "labels.parquet"}


def test_every_registered_stage_takes_its_paths_by_name():
    import inspect

    for stage in registry.STAGES:
        if stage.function is None:
            continue
        names = set(inspect.signature(stage.function).parameters)
        assert set(stage.reads + stage.writes) <= names, stage.name


def test_skysort_deps_write_leaves_a_synced_dvc_yaml_unchanged():
    """`skysort deps --write` rewrites only code-dep lines: on a synced file it is a no-op."""
    text = (ROOT / "dvc.yaml").read_text()
    found = codedeps.deps_by_stage(registry.STAGES)
    assert codedeps.sync_deps(text, found) == text
    dropped = {**found, "impute": [f for f in found["impute"] if not f.endswith("labels.py")]}
    assert (
        "src/skysort/data/labels.py"
        not in codedeps.sync_deps(text, dropped).split("  impute:")[1].split("  balance:")[0]
    )


@pytest.mark.parametrize(
    ("heading", "name"),
    [("### The SDSS17 table", "SDSS17_PARAMS"),
     ("### Your own images with multi-label columns", "MULTILABEL_IMAGES_PARAMS")],
)  # fmt: skip
def test_the_readme_examples_are_the_parameters_the_e2e_tests_run(heading, name):
    """``tests/test_e2e_files.py`` runs the own-data guide's examples "as written there"."""
    from tests import test_e2e_files

    guide = (ROOT / "docs" / "own-data.md").read_text()
    section = guide.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:]]
    assert len(blocks) == 1, f"{heading}: expected one yaml block, found {len(blocks)}"
    assert yaml.safe_load(blocks[0]) == yaml.safe_load(getattr(test_e2e_files, name))
