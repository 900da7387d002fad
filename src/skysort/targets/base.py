"""What a task is: the one object that owns everything that differs between tasks.

Stages get their target with ``skysort.targets.get(task)`` and never test the task
themselves. A
new task is one new subclass of :class:`Target`, registered in
:data:`skysort.targets.TARGETS` (and its name in ``skysort.config.names.TASK_NAMES``).

The target sees plain arrays and tables; the stages do the file I/O around it.
Reports a target returns carry ``task``, so that every report says what it scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from skysort.config import (
        Balance,
        Baselines,
        Clean,
        Data,
        Impute,
        Source,
        Train,
    )
    from skysort.pipeline.stage import Artifact
    from skysort.targets.trees import TreeHead

Report = dict[str, Any]


class NothingToScore(ValueError):
    """A split has no rows the task can use (no labelled train rows, no observed test labels)."""


@dataclass(frozen=True)
class Scored:
    """A model's test-split outputs as the target reads them.

    ``metrics`` goes to ``metrics.json``; ``predictions`` to ``predictions.parquet``;
    ``explain[i]`` lists, for test row ``i``, the outputs worth explaining as
    ``(output index, caption)``.
    """

    metrics: Report
    predictions: pd.DataFrame
    explain: list[list[tuple[int, str]]]


class Target(ABC):
    """One task: its labels, split, imputer, balancer, head, thresholds, scores, plots.

    ``name`` is the value of ``task:`` in ``params.yaml``.
    """

    name: ClassVar[str]
    activation: ClassVar[str]
    """The output layer's activation (``softmax`` for exclusive classes, ``sigmoid`` per label)."""
    min_outputs: ClassVar[int]
    galaxy_zoo: ClassVar[bool] = False
    """Whether a SkyServer query joins Galaxy Zoo's votes to derive the labels."""

    # -- what the model predicts -------------------------------------------------------

    @abstractmethod
    def outputs(self, data: Data) -> tuple[str, ...]:
        """The names of the model's outputs, in order (classes or labels)."""

    def file_label_columns(self, source: Source, data: Data) -> tuple[str, ...]:
        """The binary label columns the files source reads from the user's catalog."""
        return tuple(source.files.label_columns)

    # -- clean -------------------------------------------------------------------------

    def drop_reasons(self, catalog: pd.DataFrame, data: Data, reasons: pd.Series) -> pd.Series:
        """Per row, a reason the task cannot use it (NaN where usable); ``reasons`` so far."""
        return reasons

    @abstractmethod
    def split(self, kept: pd.DataFrame, data: Data, clean: Clean, seed: int) -> np.ndarray:
        """The ``train`` / ``val`` / ``test`` split of the kept rows, stratified and seeded."""

    def split_counts(self, kept: pd.DataFrame, data: Data, splits: tuple[str, ...]) -> Report:
        """What the clean report adds per split for this task (nothing by default)."""
        return {}

    # -- impute, balance, baselines ----------------------------------------------------

    @abstractmethod
    def impute(
        self, dataset: pd.DataFrame, images: Path, data: Data, impute: Impute, seed: int
    ) -> tuple[pd.DataFrame, Report]:
        """``labels.parquet``'s table (labels, source, confidence per row) and the report."""

    @abstractmethod
    def describe_impute(self, impute: Impute) -> str: ...

    @abstractmethod
    def balance(
        self, labels: pd.DataFrame, data: Data, balance: Balance, impute: Impute, seed: int
    ) -> tuple[np.ndarray, Report]:
        """The train rows to use (dataset ``row`` values, repeats allowed) and the report."""

    @abstractmethod
    def describe_balance(self, balance: Balance) -> str: ...

    @abstractmethod
    def baselines(
        self, X: np.ndarray, labels: pd.DataFrame, data: Data, baselines: Baselines, seed: int
    ) -> Report:
        """Each classical model's scores on the observed test labels, by model name."""

    # -- the net -----------------------------------------------------------------------

    @abstractmethod
    def y(self, labels: pd.DataFrame, data: Data) -> np.ndarray:
        """The training target per row (outside train: observed labels only)."""

    @abstractmethod
    def scored_rows(self, labels: pd.DataFrame, y: np.ndarray, split: str) -> np.ndarray:
        """Rows of ``split`` with an observed label: the only rows that judge a model."""

    def class_weight(
        self, y_train: np.ndarray, data: Data, train: Train
    ) -> dict[int, float] | None:
        """Keras ``class_weight`` for the balanced train rows (none by default)."""
        return None

    @abstractmethod
    def loss_and_metrics(self, data: Data, train: Train) -> tuple[Any, list[Any]]:
        """The Keras loss and metrics (named ``accuracy`` [, ``auc``]) to compile with."""

    auto_monitor: ClassVar[str]
    """The val metric that picks the best epoch when ``train.monitor`` is ``auto``."""

    def monitor(self, train: Train) -> str:
        """The val metric that picks the best epoch (and stops training early)."""
        return self.auto_monitor if train.monitor == "auto" else train.monitor

    @abstractmethod
    def decisions(self, val_y: np.ndarray, val_proba: np.ndarray | None, data: Data,
                  train: Train, train_y: np.ndarray | None = None) -> Report:  # fmt: skip
        """What turns probabilities into decisions (saved as ``paths.thresholds``).

        ``val_proba`` is the saved model's output on the observed val rows, or None
        when the task needs none (:attr:`needs_val_proba`); ``train_y`` the training
        target of the rows the net trained on, where the caller has it (what the net
        never saw cannot be decided by a tuned rule).
        """

    needs_val_proba: ClassVar[bool] = False

    @property
    def trees(self) -> TreeHead:
        """How tree models fit this task's outputs, read them and score them on val.

        Follows the output activation: exclusive classes (softmax) take one multiclass
        classifier, independent labels (sigmoid) one binary classifier each.
        """
        from skysort.targets.trees import HEADS

        return HEADS[self.activation]

    # -- evaluate ----------------------------------------------------------------------

    @abstractmethod
    def score(
        self, objid: np.ndarray, y: np.ndarray, proba: np.ndarray, data: Data, decisions: Report
    ) -> Scored:
        """Metrics, the predictions table and what to explain, on the test rows."""

    @abstractmethod
    def load_decisions(self, path: Path, data: Data) -> Report:
        """The decisions the train stage saved at ``path``; a ``ValueError`` unless they fit."""

    @abstractmethod
    def write_plots(
        self, folder: Path, scored: Scored, y: np.ndarray, proba: np.ndarray, images: np.ndarray,
        rows: np.ndarray, data: Data,
    ) -> None:  # fmt: skip
        """Confusion, ROC / PR curves (PNG + CSV for ``dvc plots``) and a gallery.

        ``y`` and ``proba`` are the test rows'; ``images`` the whole (memory-mapped)
        array, of which ``rows`` are the test rows.
        """

    # -- predict -----------------------------------------------------------------------

    @abstractmethod
    def decide(self, proba: np.ndarray, data: Data, decisions: Report) -> pd.DataFrame:
        """Each object's decision(s) and every output's probability, as columns."""

    @abstractmethod
    def confidence(self, proba: np.ndarray, decisions: Report) -> tuple[np.ndarray, np.ndarray]:
        """Per object, how sure the model is (``top``) and the margin to the other choice."""

    @abstractmethod
    def headline(self, metrics: Report) -> Report:
        """The few figures a run prints and a comparison table leads with."""

    best_by: ClassVar[str]
    """The test metric (higher is better) that ranks the net and the baselines of a run."""

    # -- what a person sees (plain data; the Prefect layer turns it into artifacts) ----

    @abstractmethod
    def impute_summary(self, report: Report) -> list[Artifact]: ...

    @abstractmethod
    def balance_summary(self, report: Report) -> list[Artifact]: ...

    @abstractmethod
    def baseline_row(self, scores: Report) -> dict[str, str]:
        """One baseline's figures as a row of the baselines table."""

    @abstractmethod
    def metrics_summary(self, report: Report) -> tuple[str, str]:
        """The test metrics as Markdown, and a caption of the plots."""


def gather(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``images[rows]`` in the order of ``rows``, read from a memory map in file order."""
    return np.asarray(images[np.sort(rows)])[np.argsort(np.argsort(rows))]
