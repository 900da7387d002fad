"""Structural guards: the library stays free of Prefect; stage names agree everywhere."""

import ast
from pathlib import Path

import yaml

from skysort.config import STAGES, Params

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_library_never_imports_prefect_or_the_layers_above_it():
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & {"prefect", "tasks", "flows"})
        for p in (ROOT / "src" / "skysort").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_stage_names_agree_across_dvc_params_cli_tasks_and_flows():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert list(dvc["stages"]) == list(STAGES)
    # every stage has its own section in params.yaml (and in the typed config)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(STAGES) <= set(raw) and set(STAGES) <= set(Params.model_fields)
    for name, stage in dvc["stages"].items():
        assert stage["cmd"] == f"skysort stage {name}"
    from skysort.tasks.stages import STAGE_TASKS

    assert list(STAGE_TASKS) == list(STAGES)
    assert [t.name for t in STAGE_TASKS.values()] == list(STAGES)
    from skysort.flows.cli import StageName

    assert [s.value for s in StageName] == list(STAGES)
    # the pipeline flow calls every stage task, in DAG order
    source = (ROOT / "flows" / "pipeline.py").read_text()
    calls = [source.index(f"stages.{name}(params)") for name in STAGES]
    assert calls == sorted(calls)


def test_dvc_stage_params_exist_in_params_yaml():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, stage in dvc["stages"].items():
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
