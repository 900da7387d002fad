"""What a stage is: one unit that owns its function, its wiring and its summary.

Each module in :mod:`skysort.stages` ends with a ``STAGE = Stage(...)`` that says
what the stage reads and writes (names of :class:`~skysort.config.Paths` fields),
which parameters it reads (dotted keys, exactly as ``dvc.yaml`` lists them), how to
run it from the validated :class:`~skysort.config.Params`, what a run of it is
called and what a person sees of its report. :mod:`skysort.pipeline.registry` lists the
stages in order; the CLI, the Prefect tasks and flows, the Dask path and the guard
tests all iterate that list, so adding a stage is one module, one registry line and
one ``dvc.yaml`` entry.

Summaries are plain data (:class:`Table`, :class:`Markdown`, :class:`Link`,
:class:`Images`): the library never imports Prefect; ``skysort.tasks.artifacts``
turns them into Prefect artifacts.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skysort.config import Params
from skysort.pipeline.outputs import replaced_together
from skysort.pipeline.progress import Progress

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


@dataclass(frozen=True)
class Picture:
    """One picture of an :class:`Images` summary: a PNG file and what it shows."""

    caption: str
    path: Path


@dataclass(frozen=True)
class Images:
    """Pictures shown in the UI: ``text`` (Markdown), then each picture with its caption.

    The Prefect layer embeds each one as a small thumbnail, so the artifact keeps this
    run's pictures after a later run has overwritten the files.
    """

    key: str
    text: str
    pictures: tuple[Picture, ...]
    description: str


Artifact = Table | Markdown | Link | Images


@dataclass(frozen=True)
class Shards:
    """A stage that works through the catalog in shards of rows.

    ``prepare`` checks the inputs and empties the work folder, returning the row
    count; ``shard`` processes rows ``[start, stop)`` and returns the path of the part
    it wrote; ``merge`` joins the parts, in catalog order, into the stage's outputs
    (given by name, staged as :meth:`Stage.run` stages a function's) and returns its
    report. A run in this process is the same three calls with one shard, so the
    local and the Dask path (``runner.kind: dask``) run the same code.
    """

    prepare: Callable[[Params], int]
    shard: Callable[..., Path]  # (params, shard, start, stop, progress=None)
    merge: Callable[..., Report]  # (params, parts, n_rows, outputs: dict[name, Path])


SPECIAL_KEYWORDS = frozenset({"progress"})
"""Keywords a stage function may take besides its paths and parameters."""


@dataclass(frozen=True)
class Stage:
    """One stage of the DAG and all of its wiring.

    ``function`` is the stage's work. It takes keyword-only arguments, bound by name:
    one per path it ``reads`` and ``writes`` (named exactly as the ``paths.*`` key),
    and its parameters: ``seed``, ``task``, a params section (``data``, ``train``,
    ...), the last part of a dotted key in ``params`` (``min_pixel_std`` for
    ``clean.min_pixel_std``), or ``progress``. Every declared path must be a keyword
    and every keyword must be declared, and every parameter must be covered by
    ``params``, the keys ``dvc.yaml`` lists, so a stage cannot read a parameter DVC
    does not track; all of this is checked when the stage is declared, not when it
    runs. A stage with ``shards`` has no ``function``: it runs as prepare, shards, merge.

    Outputs are written under staged names and swapped in together when the stage has
    written all of them (:mod:`skysort.pipeline.outputs`), except the ``persistent``
    ones, which the stage updates in place (the cutouts folder a rerun resumes into).

    ``progress`` names the progress bar of a stage that reports progress.
    ``retry_delays_s``: the stage does network I/O, and a failed run is retried after
    these delays (a rerun resumes; it never redoes finished work).
    """

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    params: tuple[str, ...]
    describe: Callable[[Params], str]
    summarize: Callable[[Report, Params], list[Artifact]]
    function: Callable[..., Report] | None = None
    shards: Shards | None = None
    persistent: tuple[str, ...] = ()
    progress: str | None = None
    retry_delays_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if (self.function is None) == (self.shards is None):
            raise ValueError(f"stage {self.name!r}: give exactly one of function and shards")
        paths = set(Params.model_fields["paths"].annotation.model_fields)  # type: ignore[union-attr]
        unknown = sorted(set(self.reads + self.writes) - paths)
        if unknown:
            raise ValueError(f"stage {self.name!r}: {unknown} are not paths.* keys")
        if set(self.reads) & set(self.writes):
            raise ValueError(
                f"stage {self.name!r} reads and writes {set(self.reads) & set(self.writes)}"
            )
        if not set(self.persistent) <= set(self.writes):
            raise ValueError(f"stage {self.name!r}: persistent {self.persistent} are not writes")
        if self.function is not None:
            self._check_signature(self.function)

    @property
    def module(self) -> str:
        """The module that defines the stage (its code deps start there)."""
        fn = self.function or self.shards.merge  # type: ignore[union-attr]
        return fn.__module__

    def run(self, params: Params, progress: Progress | None = None) -> Report:
        """Run the stage in this process; its report."""
        if self.shards is not None:
            n_rows = self.shards.prepare(params)
            parts = [self.shards.shard(params, 0, 0, n_rows, progress)] if n_rows else []
            return self.merge(params, parts, n_rows)
        assert self.function is not None
        with self.staged_outputs(params) as outputs:
            kwargs = {name: self._keyword(name, params, progress, outputs)
                      for name in inspect.signature(self.function).parameters}  # fmt: skip
            return self.function(**kwargs)

    def merge(self, params: Params, parts: list[Path], n_rows: int) -> Report:
        """Join a sharded stage's parts into its outputs (staged, then swapped in together)."""
        assert self.shards is not None
        with self.staged_outputs(params) as outputs:
            return self.shards.merge(params, parts, n_rows, outputs)

    @contextlib.contextmanager
    def staged_outputs(self, params: Params) -> Iterator[dict[str, Path]]:
        """Each output's path to write, by name; all swapped in together on success.

        The function writes under staged names; a failure or a kill never leaves a mix
        of old and new outputs. ``persistent`` outputs are their final paths.
        """
        staged = [k for k in self.writes if k not in self.persistent]
        with replaced_together([getattr(params.paths, k) for k in staged]) as paths:
            kept = {k: Path(getattr(params.paths, k)) for k in self.persistent}
            yield {**kept, **dict(zip(staged, paths))}

    def upstream(self, stages: tuple[Stage, ...]) -> tuple[str, ...]:
        """The names of the ``stages`` that write what this stage reads."""
        return tuple(s.name for s in stages if s is not self and set(s.writes) & set(self.reads))

    def _keyword(
        self, name: str, params: Params, progress: Progress | None, outputs: dict[str, Path]
    ) -> Any:
        if name == "progress":
            return progress
        if name in outputs:
            return outputs[name]
        if name in self.reads:
            return getattr(params.paths, name)
        if name in Params.model_fields:
            return getattr(params, name)
        (key,) = [k for k in self.params if k.rsplit(".", 1)[-1] == name]
        value: Any = params
        for part in key.split("."):
            value = getattr(value, part)
        return value

    def _check_signature(self, function: Callable[..., Report]) -> None:
        where = f"stage {self.name!r}: {function.__name__}()"
        parameters = inspect.signature(function).parameters.values()
        positional = [p.name for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        if positional:
            raise ValueError(
                f"{where} must take keyword-only arguments (bound by name): {positional}"
            )
        names = {p.name for p in parameters}
        paths = set(self.reads + self.writes)
        if paths - names:
            raise ValueError(
                f"{where} takes no argument for the paths {sorted(paths - names)} it declares "
                "(a path argument is named as its paths.* key)"
            )
        for name in sorted(names - paths - SPECIAL_KEYWORDS):
            covered = any(k == name or k.startswith(f"{name}.") for k in self.params)
            leaf = [k for k in self.params if "." in k and k.rsplit(".", 1)[-1] == name]
            if not covered and len(leaf) != 1:
                raise ValueError(
                    f"{where} reads {name!r}, which is neither a path it declares "
                    f"{sorted(paths)} nor covered by its params {list(self.params)} "
                    "(they are what dvc.yaml tracks)"
                )


def counts_table(counts: dict[str, int], label: str) -> list[dict[str, Any]]:
    """Rows of ``label``, count and share, for a table of counts."""
    total = sum(counts.values()) or 1
    return [{label: k, "count": v, "share": f"{100 * v / total:.1f} %"} for k, v in counts.items()]


def fmt(value: Any) -> str:
    """A figure as a person reads it in a summary (floats to 4 decimals)."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)
