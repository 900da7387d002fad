"""What a stage is: one unit that owns its function, its wiring and its summary.

Each module in :mod:`skysort.stages` ends with a ``STAGE = Stage(...)`` that says
what the stage reads and writes (names of :class:`~skysort.config.Paths` fields),
which parameters it reads (dotted keys, exactly as ``dvc.yaml`` lists them), how to
run it from the validated :class:`~skysort.config.Params`, what a run of it is
called and what a person sees of its report. :mod:`skysort.registry` lists the
stages in order; the CLI, the Prefect tasks and flows, the Dask path and the guard
tests all iterate that list, so adding a stage is one module, one registry line and
one ``dvc.yaml`` entry.

Summaries are plain data (:class:`Table`, :class:`Markdown`, :class:`Link`): the
library never imports Prefect; ``skysort.tasks.artifacts`` turns them into Prefect
artifacts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skysort.config import Params
from skysort.progress import Progress

Report = dict[str, Any]


@dataclass(frozen=True)
class Table:
    """A table artifact: one dict per row."""

    key: str
    rows: list[dict[str, Any]]
    description: str


@dataclass(frozen=True)
class Markdown:
    key: str
    text: str
    description: str


@dataclass(frozen=True)
class Link:
    key: str
    url: str
    text: str
    description: str


Artifact = Table | Markdown | Link


@dataclass(frozen=True)
class Shards:
    """How a stage splits into shards of catalog rows (for ``runner.kind: dask``).

    ``prepare`` checks the inputs and empties the work folder, returning the row
    count; ``shard`` processes rows ``[start, stop)`` and returns the path of the part
    it wrote; ``merge`` joins the parts, in catalog order, into the stage's outputs
    and returns its report. They live in the stage's own module and call the same
    functions as its one-process ``run``, so both give the same outputs.
    """

    prepare: Callable[[Params], int]
    shard: Callable[[Params, int, int, int], Path]
    merge: Callable[[Params, list[Path], int], Report]


@dataclass(frozen=True)
class Stage:
    """One stage of the DAG and all of its wiring.

    ``run`` unpacks the params the stage needs and calls its function in this
    process; ``shards``, where given, is how ``runner.kind: dask`` runs it instead.
    ``progress`` names the progress bar of a stage that reports progress.
    ``retry_delays_s``: the stage does network I/O, and a failed run is retried after
    these delays (a rerun resumes; it never redoes finished work).
    """

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    params: tuple[str, ...]
    run: Callable[[Params, Progress | None], Report]
    describe: Callable[[Params], str]
    summarize: Callable[[Report, Params], list[Artifact]]
    shards: Shards | None = None
    progress: str | None = None
    retry_delays_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        paths = set(Params.model_fields["paths"].annotation.model_fields)  # type: ignore[union-attr]
        unknown = sorted(set(self.reads + self.writes) - paths)
        if unknown:
            raise ValueError(f"stage {self.name!r}: {unknown} are not paths.* keys")

    def upstream(self, stages: tuple[Stage, ...]) -> tuple[str, ...]:
        """The names of the ``stages`` that write what this stage reads."""
        return tuple(s.name for s in stages if s is not self and set(s.writes) & set(self.reads))


def counts_table(counts: dict[str, int], label: str) -> list[dict[str, Any]]:
    """Rows of ``label``, count and share, for a table of counts."""
    total = sum(counts.values()) or 1
    return [{label: k, "count": v, "share": f"{100 * v / total:.1f} %"} for k, v in counts.items()]


def fmt(value: Any) -> str:
    """A figure as a person reads it in a summary (floats to 4 decimals)."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)
