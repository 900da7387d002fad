"""One target per task: stages never test the task; a third task is one new class."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skysort import targets
from skysort.config import Clean, Data, Params, Paths, names
from skysort.data.atomic import read_json, write_parquet
from skysort.pipeline import registry
from skysort.pipeline.registry import run_stage
from skysort.targets.base import Target
from skysort.targets.multiclass import Multiclass
from tests.factories import make_catalog, write_cutouts

ROOT = Path(__file__).resolve().parents[1]
TASK_TEST = re.compile(r"""task\s*[!=]=|get\(\s*["']task["']\s*\)""")


def test_only_the_config_and_the_targets_test_the_task():
    """Outside the config package and the targets, no code asks which task it runs."""
    allowed = (ROOT / "src/skysort/config", ROOT / "src/skysort/targets")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("src", "tasks", "flows")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not path.is_relative_to(allowed[0]) and not path.is_relative_to(allowed[1])
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if TASK_TEST.search(line)
    ]
    assert offenders == []


def test_the_guard_sees_a_task_test():
    assert TASK_TEST.search('    if params.task == "multilabel":')
    assert TASK_TEST.search("kind = report.get('task')")
    assert not TASK_TEST.search("target = targets.get(params.task)")


def test_every_task_name_has_a_target_and_every_target_is_complete():
    assert set(targets.TARGETS) == set(names.TASK_NAMES)
    for name, target in targets.TARGETS.items():
        assert target.name == name and isinstance(target, Target)
        assert not getattr(type(target), "__abstractmethods__", None)
    with pytest.raises(ValueError, match="unknown task 'regression'; tasks are multiclass"):
        targets.get("regression")


class EveryFifth(Multiclass):
    """A toy task: the multiclass task with an unstratified split (every 5th row tests)."""

    name = "every_fifth"

    def split(self, kept: pd.DataFrame, data: Data, clean: Clean, seed: int) -> np.ndarray:
        position = np.arange(len(kept))
        return np.where(position % 5 == 0, "test", np.where(position % 5 == 1, "val", "train"))

    def describe_balance(self, balance) -> str:
        return "balance: as the toy task says"

    def headline(self, metrics):
        return {"accuracy": metrics["accuracy"]}


@pytest.fixture
def toy_task(monkeypatch):
    """Register the toy target: one entry in the registry, its name among the tasks."""
    monkeypatch.setitem(targets.TARGETS, EveryFifth.name, EveryFifth())
    monkeypatch.setattr(names, "TASK_NAMES", (*names.TASK_NAMES, EveryFifth.name))
    return EveryFifth.name


def test_a_third_task_is_one_target_class(toy_task, tmp_path):
    catalog = make_catalog(60, seed=3)
    write_parquet(tmp_path / "catalog.parquet", catalog)
    write_parquet(
        tmp_path / "manifest.parquet", write_cutouts(catalog, tmp_path / "cutouts", size=64)
    )
    paths = Paths().under(tmp_path)
    paths = paths.model_copy(update={"catalog": tmp_path / "catalog.parquet",
                                     "manifest": tmp_path / "manifest.parquet",
                                     "cutouts_dir": tmp_path / "cutouts"})  # fmt: skip
    params = Params(paths=paths, data=Data(image_size=64), seed=0, task=toy_task)
    reports = {
        name: run_stage(name, params) for name in ("clean", "impute", "balance", "baselines")
    }

    dataset = pd.read_parquet(paths.dataset)
    position = np.arange(len(dataset))
    assert (dataset["split"].to_numpy()[position % 5 == 0] == "test").all()
    assert (dataset["split"].to_numpy()[position % 5 == 1] == "val").all()
    for name, report in reports.items():
        assert report["task"] == toy_task, name
        assert read_json(getattr(paths, f"{name}_report"))["task"] == toy_task
    assert registry.get("balance").describe(params) == "balance: as the toy task says"
    assert set(reports["baselines"]["models"]) == set(params.baselines.models)
