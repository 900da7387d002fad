"""How the pipeline is run rather than what it computes: runner, record, ui, schedule, compare.

None of these sections changes an output, so none is a DVC parameter of a stage.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from skysort.config.base import Section
from skysort.config.names import IMAGE_ENCODERS, MODEL_KINDS

# Prefect names: what `prefect deployment run FLOW/NAME` and `prefect worker start --pool` accept.
PREFECT_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"

NEVER_OVERRIDDEN_IN_DEPLOYMENTS: tuple[str, ...] = (
    "paths",
    "query.sql_file",
    "source.skyserver.base_url",
    "source.skyserver.allow_insecure_http",
    "train.weights",
    "runner",
    "ui.runs_dir",
    "schedule",
)
"""Keys (and sections) naming files, hosts or clusters: a deployment run may never change them."""


def check_cron(expr: str) -> None:
    """Raise ``ValueError`` unless ``expr`` is a standard 5-field cron expression.

    Checked here with ``cronsim`` (no Prefect import in the library), so a typo fails
    at load time instead of when the deployment is registered. Prefect's own random
    and hashed forms (``H``, ``R``) and ``@daily``-style names are refused, as
    Prefect refuses them.
    """
    from cronsim import CronSim, CronSimError

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError("cron needs 5 fields: minute hour day-of-month month day-of-week")
    try:
        CronSim(expr, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"{str(exc).lower()} in {expr!r}") from None


class Runner(Section):
    """Where the cutout fetch and the clean stage's image checks run.

    ``local``: in this process (threads). ``dask``: sharded into tasks of
    ``shard_size`` objects on a Dask cluster through prefect-dask's
    ``DaskTaskRunner``: the scheduler at ``address``, or a temporary LocalCluster
    of ``n_workers`` workers when ``address`` is null. The outputs are the same
    either way, so this section is not a DVC parameter of any stage.
    """

    kind: Literal["local", "dask"] = Field(
        "local", description="local | dask (prefect-dask DaskTaskRunner, sharded)"
    )
    address: str | None = Field(
        None,
        description="Dask scheduler, e.g. tcp://10.0.0.5:8786; null = a temporary LocalCluster",
    )
    n_workers: int = Field(2, ge=1, le=1024, description="LocalCluster only")
    threads_per_worker: int = Field(1, ge=1, le=256, description="LocalCluster only")
    processes: bool = Field(
        True, description="LocalCluster only: workers as processes (false = threads)"
    )
    shard_size: int = Field(
        500,
        ge=1,
        le=10_000_000,
        description="objects per Dask task (never one task per image)",
    )

    @field_validator("address")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(tcp|tls|inproc|ws|wss|ucx)://\S+", value):
            raise ValueError("must be a Dask scheduler address such as tcp://host:8786")
        return value


class Record(Section):
    """What ``skysort run`` records after the stages (not ``dvc repro``, which records itself).

    The outputs are always committed to the DVC cache (``dvc commit``) and
    ``dvc.lock`` updated. ``push``: then ``dvc push`` when a DVC remote is
    configured. ``git_commit``: then commit ``dvc.lock`` (and only that) to git with
    a message naming the flow run, so that the run can be checked out later.
    """

    push: bool = Field(True, description="dvc push when a DVC remote is configured")
    git_commit: bool = Field(
        False, description="git commit dvc.lock (only) naming the run; needs a git repo"
    )


class Ui(Section):
    """What the Prefect UI's artifacts link to.

    A run's plots and explanations are shown as thumbnails that link to their full-size
    files. The stages write those to ``paths.plots``, which the next run replaces, so
    each flow run links to its own copies instead, under ``runs_dir/<flow run id>/``;
    the ``keep_runs`` newest run folders are kept and older ones removed. ``runs_dir``
    is neither a DVC output nor a dep (``dvc repro`` never looks at it) and lies apart
    from every ``paths.*`` key (:func:`check_runs_dir`).
    """

    runs_dir: Path = Field(
        Path("reports/runs"),
        description="each flow run's copies of the pictures its artifacts link to",
    )
    keep_runs: int = Field(
        20, ge=1, le=100_000, description="run folders kept in runs_dir; older ones are removed"
    )


def check_runs_dir(runs_dir: Path, paths: Mapping[str, Path], root: Path | None) -> None:
    """Raise ``ValueError`` (``ui.runs_dir: ...``) unless ``runs_dir`` is a place of its own.

    Old run folders are removed, and a folder inside a DVC output or dep would change it
    with every run: so it is neither the same as, nor inside, nor around any ``paths.*``
    (outputs or inputs). With ``root`` (parameters loaded from a file) it must also lie
    inside the project, links followed.
    """

    def place(path: Path) -> Path:
        if root is None:
            return Path(os.path.abspath(path))
        return Path(os.path.realpath(Path(root) / path))

    mine = place(runs_dir)
    if root is not None:
        home = Path(os.path.realpath(root))
        if home not in mine.parents:
            raise ValueError(
                f"ui.runs_dir: {str(runs_dir)!r} is not inside the project ({home}): "
                "use a folder inside it, such as reports/runs"
            )
    for key, path in paths.items():
        other = place(path)
        if mine == other or mine in other.parents or other in mine.parents:
            raise ValueError(
                f"ui.runs_dir: {str(runs_dir)!r} overlaps paths.{key} ({str(path)!r}): "
                "old run folders are removed, and DVC would see every run; give it a "
                "folder of its own, such as reports/runs"
            )


class Schedule(Section):
    """The scheduled deployment of the whole pipeline (``prefect.yaml`` and ``skysort serve``).

    ``deployment`` is the deployment's name (``skysort-pipeline/<deployment>``);
    ``work_pool`` the process work pool its worker polls. ``timezone`` is an IANA name.
    ``allowed_overrides``: the only dotted keys a run of the deployment may override
    (``prefect deployment run ... --param overrides=[...]``); anyone who can reach the
    Prefect API can start such a run, so keys naming files, hosts or clusters are never
    allowed (:data:`NEVER_OVERRIDDEN_IN_DEPLOYMENTS`).
    """

    deployment: str = Field(
        "scheduled",
        pattern=PREFECT_NAME,
        description="skysort-pipeline/scheduled (prefect.yaml; serve adds -serve)",
    )
    work_pool: str = Field(
        "skysort-process", pattern=PREFECT_NAME, description="process work pool its worker polls"
    )
    cron: str = "0 3 * * *"
    timezone: str = "UTC"
    allowed_overrides: tuple[str, ...] = Field(
        ("query.n_objects", "train.epochs"),
        description="the only --set keys a deployment run may pass",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        check_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone name (e.g. UTC, Europe/Paris)") from None
        return value


class Compare(Section):
    """The study grid ``skysort compare`` runs as DVC experiments.

    One run per combination of ``models`` x ``image_encoders`` x ``trainable_layers``,
    without the combinations that differ in nothing: a tabular model has no image
    encoder, and ``trainable_layers`` does not apply to ``small_cnn``. ``overrides``
    (dotted keys) apply to every run, e.g. ``{train.epochs: 30}``.
    """

    name_prefix: str = Field(
        "study",
        pattern=r"^[a-z0-9][a-z0-9-]{0,30}$",
        description="experiments are named study-<model>[-<encoder>[-<layers>]]",
    )
    models: tuple[Literal[MODEL_KINDS], ...] = (
        "tabular",
        "image",
        "fusion",
        "gboost",
        "forest",
        "ensemble",
    )  # type: ignore[valid-type]
    image_encoders: tuple[Literal[IMAGE_ENCODERS], ...] = ("small_cnn", "mobilenetv3small")  # type: ignore[valid-type]
    trainable_layers: tuple[Annotated[int, Field(ge=-1, le=10_000)], ...] = Field(
        (-1,), description="applies to keras.applications backbones only"
    )
    overrides: dict[str, Any] = Field({}, description="for every run, e.g. {train.epochs: 30}")

    @model_validator(mode="after")
    def _check(self) -> Compare:
        for name, values in (
            ("models", self.models),
            ("image_encoders", self.image_encoders),
            ("trainable_layers", self.trainable_layers),
        ):
            if not values:
                raise ValueError(f"{name} must list at least one value")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice")
        grid_keys = {"train.model", "train.image_encoder", "train.trainable_layers"}
        for key in self.overrides:
            if not all(key.split(".")) or key in grid_keys:
                raise ValueError(
                    f"overrides: {key!r} must be a dotted parameter key other than the grid's own "
                    f"{sorted(grid_keys)}"
                )
        return self
