"""Rules that tie sections together: checked once the whole of ``params.yaml`` is read.

A section checks its own keys; what one section may hold given another (the task
and the balancer, the source and the features, the images and the model) is
checked here, on the validated :class:`~skysort.config.params.Params`. Each rule
raises ``ValueError`` whose message starts with the dotted key it is about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticCustomError

from skysort.config import names
from skysort.config.base import is_key_of
from skysort.config.operations import NEVER_OVERRIDDEN_IN_DEPLOYMENTS

if TYPE_CHECKING:
    from skysort.config.params import Params


def check_task(value: Any) -> str:
    """``value`` if it names a task of :data:`skysort.config.names.TASK_NAMES` (read now).

    Refused as a ``Literal`` of the names would be, with the same error.
    """
    if isinstance(value, str) and value in names.TASK_NAMES:
        return value
    quoted = [repr(n) for n in names.TASK_NAMES]
    either = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": either})


def check(params: Params) -> None:
    """Every rule across sections, in the order a reader would fix them."""
    _check_splits(params)
    _check_sql_source(params)
    _check_allowed_overrides(params)
    _check_sampling(params)
    if params.source.kind != "files":
        params.data.check_sdss_names()
    else:
        _check_files_labels(params)
    if not params.data.features:
        _check_image_only(params)
    _check_images(params)
    _check_task_keys(params)


def _check_splits(params: Params) -> None:
    if params.clean.test_fraction + params.clean.val_fraction > 0.6:
        raise ValueError("clean.test_fraction + clean.val_fraction leaves too little to train on")


def _check_sql_source(params: Params) -> None:
    if params.query.sql_file is not None and params.source.kind != "skyserver":
        raise ValueError(
            f"query.sql_file: is used only with source.kind: skyserver (source.kind is "
            f"{params.source.kind!r}); set it to null or switch the source"
        )


def _check_allowed_overrides(params: Params) -> None:
    for key in params.schedule.allowed_overrides:
        if not is_key_of(type(params), key):
            raise ValueError(
                f"schedule.allowed_overrides: {key!r} is not the dotted key of one parameter"
            )
        if any(key == k or key.startswith(f"{k}.") for k in NEVER_OVERRIDDEN_IN_DEPLOYMENTS):
            raise ValueError(
                f"schedule.allowed_overrides: {key!r} names a file, a host, a cluster or "
                "the schedule: a deployment run may never override it"
            )


def _check_sampling(params: Params) -> None:
    strategy = params.balance.sampling_strategy
    if isinstance(strategy, float) and len(params.data.classes) != 2:
        raise ValueError(
            f"balance.sampling_strategy: a ratio ({strategy}) works only with two classes, "
            f"and data.classes has {len(params.data.classes)}; use 'not majority', 'all', "
            "'minority' or 'auto'"
        )


def _check_images(params: Params) -> None:
    if not params.source.has_images and params.train.model in ("image", "fusion"):
        raise ValueError(
            f"train.model: {params.train.model!r} needs images, but source.files.images is "
            "'none' (tabular-only data): use train.model: tabular, gboost, forest or ensemble "
            "(the baselines run too), or point source.files.images at your image files"
        )
    if params.train.center_crop > params.data.image_size:
        raise ValueError(
            f"train.center_crop: {params.train.center_crop} pixels is larger than the "
            f"cutouts (data.image_size: {params.data.image_size}); use at most "
            f"{params.data.image_size}, or 0 for the whole cutout"
        )


def _check_task_keys(params: Params) -> None:
    """Keys whose allowed values depend on the task."""
    task, train = params.task, params.train
    if isinstance(params.impute.confidence, dict):
        unknown = sorted(set(params.impute.confidence) - set(params.data.labels))
        if unknown:
            raise ValueError(f"impute.confidence names {unknown}, which are not in data.labels")
        if task == "multiclass":
            raise ValueError("impute.confidence: one number for the multiclass task")
    if task == "multiclass" and params.balance.method == "ml_ros":
        raise ValueError("balance.method: ml_ros is for the multilabel task")
    if task == "multilabel" and train.monitor == "val_accuracy":
        raise ValueError("train.monitor: use val_auc or val_loss for the multilabel task")
    if task == "multiclass" and train.monitor == "val_auc":
        raise ValueError("train.monitor: val_auc is for the multilabel task")


def _check_image_only(params: Params) -> None:
    """No tabular features: only images can be learnt from, so only the image model."""
    if params.source.kind != "files" or not params.source.has_images:
        raise ValueError(
            "data.features: at least one feature is needed (image-only data, with no "
            "feature columns, needs source.kind: files with images)"
        )
    if params.train.model != "image":
        raise ValueError(
            f"train.model: {params.train.model!r} needs tabular features, but data.features "
            "is empty (image-only data): use train.model: image, or name numeric columns "
            "of your catalog in data.features"
        )
    if (
        params.task == "multilabel"
        and params.impute.missing_labels == "impute"
        and not params.impute.image_features
    ):
        raise ValueError(
            "impute.image_features: false leaves the multilabel imputer nothing to learn "
            "from, as data.features is empty: set it to true, or impute.missing_labels: mask"
        )


def _check_files_labels(params: Params) -> None:
    """The files source's label columns agree with the task's targets (``data.*``)."""
    files, data = params.source.files, params.data
    if params.task == "multiclass":
        if files.label_column is None:
            raise ValueError(
                "source.files.label_column: the multiclass task needs the column of "
                "classes (data.classes); for binary label columns set task: multilabel "
                "and data.labels"
            )
        return
    if files.label_columns and set(files.label_columns) != set(data.labels):
        raise ValueError(
            f"source.files.label_columns: {list(files.label_columns)} differ from data.labels "
            f"{list(data.labels)}, which the multilabel task trains on: list your label "
            "columns in data.labels and leave source.files.label_columns empty ([])"
        )
    outside = [c for c in data.label_classes if c not in data.classes]
    if files.label_column is not None and outside:
        raise ValueError(
            f"data.label_classes: {list(outside)} are not in data.classes "
            f"{list(data.classes)}, so clean would drop every row of a known class in "
            f"source.files.label_column {files.label_column!r}: name the classes your "
            "labels describe, or set source.files.label_column: null (no class column)"
        )
