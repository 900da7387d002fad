"""What draws an edge in the Prefect UI's task graph, and what must not.

Prefect links a task run to every earlier run in the flow whose result it finds in
the task's inputs, by object identity, walking the inputs all the way down (a
``State`` in ``wait_for`` included, with the result it carries). Every stage task
receives the same parameters, and a report's strings (``"synthetic"``, a label's
name) are the very objects the parameters hold, so a plain call draws edges that do
not follow the data. Here: parameters go in unwalked (:func:`unlinked`), and the
edges are exactly the upstream runs given to :func:`after`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from prefect.utilities.annotations import opaque, quote

T = TypeVar("T")


def unlinked(value: T) -> T:
    """``value`` as a task or flow argument that Prefect neither walks nor links to a run."""
    return quote(value)  # type: ignore[return-value]  # the task receives the value itself


def after(upstream: Iterable[Any]) -> list[Any] | None:
    """``wait_for`` for these upstream states or futures: one edge each, nothing inside them."""
    entries = [opaque(u) for u in upstream]
    return entries or None
