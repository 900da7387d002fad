"""One target per task: everything that differs between tasks, behind one interface.

``params.task`` names the target; stages get it with :func:`get` and never test the
task themselves. A new task is a new :class:`~skysort.targets.base.Target` subclass
in a module here, one entry in :data:`TARGETS`, and its name in
``skysort.config.names.TASK_NAMES``.
"""

from __future__ import annotations

from skysort.targets.base import NothingToScore, Scored, Target
from skysort.targets.multiclass import Multiclass
from skysort.targets.multilabel import Multilabel

READS: tuple[str, ...] = (
    "task",
    "data.features",
    "data.asinh_scales",
    "data.classes",
    "data.labels",
)
"""The parameters a stage that hands the labelled table to its target lists (dvc.yaml)."""

TARGETS: dict[str, Target] = {t.name: t for t in (Multiclass(), Multilabel())}
"""The targets by task name."""


def get(task: str) -> Target:
    """The target of ``task`` (the value of ``task:`` in params.yaml)."""
    try:
        return TARGETS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; tasks are {', '.join(TARGETS)}") from None


__all__ = ["READS", "TARGETS", "NothingToScore", "Scored", "Target", "get"]
