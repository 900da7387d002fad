"""The whole of ``params.yaml``: one field per section, in the file's order."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from skysort.config import rules
from skysort.config.base import Section, is_key_of, project_root
from skysort.config.operations import Compare, Record, Runner, Schedule, Ui, check_runs_dir
from skysort.config.paths_rules import check_paths
from skysort.config.predict import Predict
from skysort.config.sections import (
    Balance,
    Baselines,
    Clean,
    Cutouts,
    Data,
    Evaluate,
    Impute,
    Paths,
    Query,
)
from skysort.config.sources import Source
from skysort.config.train import Train


class Params(Section):
    """The whole of ``params.yaml``."""

    seed: int = Field(42, ge=0, le=2**32 - 1)
    task: str = Field(
        "multiclass",
        description="multiclass (data.classes, softmax) | multilabel (data.labels, sigmoid)",
    )
    paths: Paths = Paths()
    data: Data = Data()
    source: Source = Source()
    query: Query = Query()
    cutouts: Cutouts = Cutouts()
    clean: Clean = Clean()
    impute: Impute = Impute()
    balance: Balance = Balance()
    baselines: Baselines = Baselines()
    train: Train = Train()
    evaluate: Evaluate = Evaluate()
    predict: Predict = Field(
        Predict(), description="`skysort predict`: the trained model on objects without labels"
    )
    runner: Runner = Field(
        Runner(), description="where cutouts + clean's image checks run (same outputs either way)"
    )
    record: Record = Field(Record(), description="what `skysort run` does after the stages")
    ui: Ui = Field(Ui(), description="what the Prefect UI's artifacts link to")
    schedule: Schedule = Field(
        Schedule(), description="prefect.yaml is generated from this section: skysort deploy"
    )
    compare: Compare = Field(
        Compare(), description="`skysort compare`: the study's grid as DVC experiments"
    )

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, value: Any) -> str:
        return rules.check_task(value)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Params:
        rules.check(self)
        check_paths(dict(self.paths), Paths.INPUTS, project_root(info))
        check_runs_dir(self.ui.runs_dir, dict(self.paths), project_root(info))
        return self


def is_parameter(key: str) -> bool:
    """True when ``key`` is the dotted path of one parameter (not of a whole section)."""
    return is_key_of(Params, key)
