"""The one typed configuration, loaded from ``params.yaml``.

Every stage receives the section it reads, never the raw dict. A bad value or an
unknown key fails at load time with the key's dotted path and the reason.

Files the parameters name (``query.sql_file``, ``train.weights``) are checked when
parameters are loaded (:func:`load_params`, :func:`validate_params`), relative to the
project root: the working directory, where ``dvc.yaml`` runs every stage. Sections
built directly in code (``Query(...)``, ``Train(...)``) skip those file checks.
"""

from __future__ import annotations

import math
import re
import string
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from skysort.data.schema import GALAXY_ZOO_LABELS, PHOTOMETRY_COLUMNS
from skysort.model.encoders import ENCODERS
from skysort.sources.skyserver.sqlcheck import UnsafeSQLError, check_select
from skysort.sources.urls import is_loopback_host

SDSS_CLASSES: tuple[str, ...] = ("GALAXY", "QSO", "STAR")

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

QUERIES_DIR = Path("queries")
"""Where ``query.sql_file`` must live: a dependency of the query stage in ``dvc.yaml``."""


def _project_root(info: ValidationInfo) -> Path | None:
    """The root file checks are made against, or None when a section is built in code."""
    root = (info.context or {}).get("root")
    return Path(root) if root is not None else None


class ConfigError(ValueError):
    """A parameter is missing, unknown or out of range; the message names its dotted path."""


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Paths(Section):
    """Every file the stages read or write, relative to the project root."""

    catalog: Path = Path("data/raw/catalog.parquet")
    cutouts_dir: Path = Path("data/raw/cutouts")
    manifest: Path = Path("data/raw/cutouts.parquet")
    dataset: Path = Path("data/interim/dataset.parquet")
    images: Path = Path("data/interim/images.npy")
    clean_report: Path = Path("reports/clean.json")
    labels: Path = Path("data/processed/labels.parquet")
    impute_report: Path = Path("reports/impute.json")
    train_index: Path = Path("data/processed/train_index.npy")
    balance_report: Path = Path("reports/balance.json")
    baselines_report: Path = Path("reports/baselines.json")
    model: Path = Path("models/model.keras")
    thresholds: Path = Path("models/thresholds.json")
    dvclive: Path = Path("dvclive")
    train_report: Path = Path("reports/train.json")
    metrics: Path = Path("reports/metrics.json")
    plots: Path = Path("reports/plots")
    predictions: Path = Path("reports/predictions.parquet")
    # The files source's inputs (source.kind: files), DVC deps of query and cutouts. Other
    # sources ignore them; the defaults are a folder kept in git, so the deps always exist.
    source_catalog: Path = Path("data/external")
    source_images: Path = Path("data/external")

    def under(self, root: Path) -> Paths:
        """The same layout rooted at ``root`` (absolute paths stay as they are)."""
        return Paths(**{k: Path(root) / v for k, v in self.model_dump().items()})


LABEL_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class Data(Section):
    """What a sample is: its tabular features, its classes or labels, its image size.

    ``classes`` are the multiclass task's target; ``labels`` the multilabel task's
    binary label columns (0 / 1, NaN where unknown), and ``label_classes`` the
    classes those labels describe: in the multilabel task, rows of another known
    class are dropped by ``clean`` (Galaxy Zoo describes galaxies, not stars).
    With SkyServer or the simulated survey, features are catalog photometry columns
    and classes SDSS's; with ``source.kind: files`` they are any column and class
    names of the user's catalog (checked against the file when it is read), and
    ``features`` may be empty for image-only data (``train.model: image``).

    ``asinh_scales`` names features every model reads as ``asinh(x / scale)``
    instead of ``x``: a log scale that stays defined at zero and below, for a
    feature spanning decades. Redshift is the case: stars sit at 0 to 1e-3,
    galaxies from 0.02, quasars up to 7, so standardised by its spread the
    star/galaxy gap is a few hundredths of a unit, which a net blurs (a tree
    splits it exactly); ``{redshift: 0.001}`` opens it to several units.
    """

    features: tuple[str, ...] = ("u", "g", "r", "i", "z", "fiberMag_g")
    classes: tuple[str, ...] = SDSS_CLASSES
    labels: tuple[Annotated[str, Field(pattern=LABEL_NAME)], ...] = GALAXY_ZOO_LABELS
    label_classes: tuple[str, ...] = ("GALAXY",)
    image_size: int = Field(64, ge=64, le=2048)
    asinh_scales: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = {}

    @model_validator(mode="after")
    def _check(self) -> Data:
        stray = sorted(set(self.asinh_scales) - set(self.features))
        if stray:
            raise ValueError(f"asinh_scales names {stray}, which data.features does not list")
        if len(set(self.features)) != len(self.features):
            raise ValueError("features are listed twice")
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be two or more distinct names")
        if not all(c.strip() for c in (*self.features, *self.classes)):
            raise ValueError("feature and class names must not be empty")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must list one or more distinct column names")
        if set(self.labels) & {*PHOTOMETRY_COLUMNS, *self.features, "objid", "class", "split"}:
            raise ValueError("labels must not name a feature or a catalog key column")
        if not self.label_classes:
            raise ValueError("label_classes must name at least one class")
        return self

    def check_sdss_names(self) -> None:
        """Raise ``ValueError`` (naming the key) unless features and classes are SDSS's own."""
        unknown = [f for f in self.features if f not in PHOTOMETRY_COLUMNS]
        if unknown:
            raise ValueError(
                f"data.features: unknown feature(s) {unknown}; choose from "
                f"{list(PHOTOMETRY_COLUMNS)} (any column names need source.kind: files)"
            )
        bad = [c for c in self.classes if c not in SDSS_CLASSES]
        if bad:
            raise ValueError(
                f"data.classes: classes must be two or more distinct names from "
                f"{list(SDSS_CLASSES)}, not {bad} (any class names need source.kind: files)"
            )
        bad = [c for c in self.label_classes if c not in SDSS_CLASSES]
        if bad:
            raise ValueError(
                f"data.label_classes: must name classes from {list(SDSS_CLASSES)}, not {bad}"
            )


class SyntheticSource(Section):
    """The built-in offline survey and the faults it injects (rates are per object)."""

    class_mix: dict[str, Annotated[float, Field(gt=0)]] = {
        "GALAXY": 0.58,
        "STAR": 0.22,
        "QSO": 0.20,
    }
    missing_cutout_rate: Fraction = 0.03
    corrupt_cutout_rate: Fraction = 0.02
    blank_cutout_rate: Fraction = 0.02
    missing_label_rate: Fraction = 0.10
    missing_feature_rate: Fraction = 0.01
    neighbour_density: float = Field(
        25.0, ge=0, le=1000, description="field objects per square arcminute around each object"
    )

    @model_validator(mode="after")
    def _check(self) -> SyntheticSource:
        bad = [c for c in self.class_mix if c not in SDSS_CLASSES]
        if bad:
            raise ValueError(f"class_mix has unknown class(es) {bad}")
        return self


class SkyServerSource(Section):
    """Where SkyServer lives and how patiently to talk to it."""

    base_url: str = "https://skyserver.sdss.org"
    allow_insecure_http: bool = Field(
        False, description="allow a plain http:// base_url on a host other than this machine"
    )
    data_release: int = Field(17, ge=8, le=19)
    timeout_s: float = Field(120.0, gt=0, le=600)
    max_rows_per_request: int = Field(50_000, ge=1, le=500_000)
    min_query_interval_s: float = Field(1.0, ge=0, le=600, description="60 SQL queries/min limit")
    # Multilabel task: a Galaxy Zoo label is 1 where its vote fraction reaches
    # zoo_threshold, 0 below, and unknown (NaN) with fewer than zoo_min_votes votes.
    zoo_threshold: float = Field(0.8, gt=0, le=1)
    zoo_min_votes: int = Field(10, ge=0, le=10_000)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        parts = urlsplit(value)
        if not parts.hostname:
            raise ValueError("has no host (e.g. https://skyserver.sdss.org)")
        try:
            parts.port  # noqa: B018  (raises on a port that is not a number in range)
        except ValueError:
            raise ValueError("has an invalid port") from None
        if parts.query or parts.fragment:
            raise ValueError("must not have a ?query or #fragment (paths are appended to it)")
        return value

    @model_validator(mode="after")
    def _check(self) -> SkyServerSource:
        parts = urlsplit(self.base_url)
        insecure = parts.scheme == "http" and not is_loopback_host(parts.hostname)
        if insecure and not self.allow_insecure_http:
            raise ValueError(
                f"base_url: plain http:// is allowed only for this machine (localhost, "
                f"127.0.0.1, ::1), not {parts.hostname!r}: use https://, or set "
                "source.skyserver.allow_insecure_http: true to send queries unencrypted"
            )
        return self


class FilesSource(Section):
    """The user's own catalog file and, optionally, images (``source.kind: files``).

    The catalog is ``paths.source_catalog`` (CSV or Parquet); image files live under
    ``paths.source_images``. Both are DVC deps, so editing a row or an image reruns
    the stages that read it.

    ``id_column``: 64-bit integer object ids; null numbers the rows 1..N instead.
    ``bad_ids``: what ids that are not exact integers (``1.23766E+18``, blanks) or
    repeat do: ``error``, or ``row_ids`` (a warning naming them, then row numbers).
    ``label_column``: the class of each row (multiclass; empty = unknown; optional in
    the multilabel task, where ``data.label_classes`` then keeps rows of those classes);
    ``label_columns``: binary label columns (empty or NaN = unknown), stored under their
    own names. The multilabel task reads ``data.labels``: leave ``label_columns`` empty,
    or list the same columns. ``ra_column`` / ``dec_column``: optional sky
    positions. ``images``: ``none`` (tabular only), ``folder`` (``image_pattern``
    under ``paths.source_images``, with ``{id}``, ``{row}`` or ``{COLUMN}`` taken
    from the row as written) or ``column`` (``image_column`` holds each row's path,
    relative to ``paths.source_images``). Images of any size and aspect ratio
    become ``data.image_size`` squares by ``resize``: ``pad`` (whole image, black
    borders), ``crop`` (centre square) or ``stretch``. A feature equal to one of
    ``sentinels`` counts as missing.
    """

    id_column: str | None = None
    bad_ids: Literal["error", "row_ids"] = "error"
    label_column: str | None = "class"
    label_columns: tuple[str, ...] = ()
    ra_column: str | None = None
    dec_column: str | None = None
    images: Literal["none", "folder", "column"] = "none"
    image_pattern: str = "{id}.jpg"
    image_column: str | None = None
    resize: Literal["pad", "crop", "stretch"] = "pad"
    sentinels: tuple[float, ...] = (-9999.0,)

    @model_validator(mode="after")
    def _check(self) -> FilesSource:
        if len(set(self.label_columns)) != len(self.label_columns):
            raise ValueError("label_columns: a column is listed twice")
        if self.images == "column" and not self.image_column:
            raise ValueError("image_column: images: column needs the column of image paths")
        if self.images == "folder":
            fields = [f for _, f, _, _ in string.Formatter().parse(self.image_pattern) if f]
            if not fields:
                raise ValueError(
                    "image_pattern: must name the row's file, e.g. '{id}.jpg' or '{class}/{id}.jpg'"
                )
            if "{id}" in self.image_pattern and self.id_column is None:
                raise ValueError("image_pattern: {id} needs source.files.id_column (or use {row})")
        return self


class Source(Section):
    kind: Literal["synthetic", "skyserver", "files"] = "synthetic"
    synthetic: SyntheticSource = SyntheticSource()
    skyserver: SkyServerSource = SkyServerSource()
    files: FilesSource = FilesSource()

    @property
    def has_images(self) -> bool:
        """False only for a files source without images (tabular-only data)."""
        return self.kind != "files" or self.files.images != "none"


class Query(Section):
    """Which objects to take: sample size, sky region, magnitude limits (both sources obey them)."""

    n_objects: int = Field(2000, ge=1, le=5_000_000)
    ra_min: float = Field(0.0, ge=0, le=360)
    ra_max: float = Field(360.0, ge=0, le=360)
    dec_min: float = Field(-90.0, ge=-90, le=90)
    dec_max: float = Field(90.0, ge=-90, le=90)
    r_min: float = Field(14.0, ge=0, le=40)
    r_max: float = Field(22.0, ge=0, le=40)
    random_sample: bool = True
    sql_file: Path | None = None

    @field_validator("sql_file")
    @classmethod
    def _sql_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        root = _project_root(info)
        if value is not None and root is not None:
            check_sql_file(value, root)
        return value

    @model_validator(mode="after")
    def _check(self) -> Query:
        if self.ra_min >= self.ra_max:
            raise ValueError(f"ra_min ({self.ra_min}) must be below ra_max ({self.ra_max})")
        if self.dec_min >= self.dec_max:
            raise ValueError(f"dec_min ({self.dec_min}) must be below dec_max ({self.dec_max})")
        if self.r_min >= self.r_max:
            raise ValueError(f"r_min ({self.r_min}) must be below r_max ({self.r_max})")
        return self


class Cutouts(Section):
    """Image cutouts: pixel scale (arcsec/pixel), service options, fetch etiquette."""

    scale: float = Field(0.396127, ge=0.015, le=60)
    opt: str = Field("", pattern=r"^[A-Z]*$")
    concurrency: int = Field(8, ge=1, le=64)
    retries: int = Field(4, ge=0, le=20)
    backoff_s: float = Field(1.0, ge=0, le=60)
    timeout_s: float = Field(30.0, gt=0, le=600, description="per read of the socket")
    deadline_s: float = Field(120.0, gt=0, le=3600, description="whole request, to the last byte")
    max_retry_after_s: float = Field(120.0, ge=0, le=3600)


class Clean(Section):
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    min_pixel_std: float = Field(2.0, ge=0, description="images flatter than this are blank")
    max_drop_fraction: Fraction = Field(
        0.25, description="fail rather than silently drop more than this share of the rows"
    )


class Impute(Section):
    """Missing labels: filled by self-training on the train split, or left for the loss.

    ``confidence`` is the probability a prediction must reach to be accepted: one
    number, or (multilabel) one per label name, the others taking ``0.9``.
    ``missing_labels`` (multilabel): ``impute`` fills NaN labels by self-training,
    ``mask`` leaves them NaN for the masked loss, ``drop`` trains only on rows with
    every label known. The test split is the same in all three.
    ``image_features``: the multilabel imputer's classifier also sees cheap
    morphology features of the cutout (concentration, asymmetry, shape);
    ``tabular_features`` adds the photometry.
    """

    enabled: bool = True
    confidence: (
        Annotated[float, Field(gt=0, le=1)] | dict[str, Annotated[float, Field(gt=0, le=1)]]
    ) = 0.9
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    max_iter: int = Field(10, ge=1, le=100)
    n_estimators: int = Field(100, ge=1, le=5000)
    missing_labels: Literal["impute", "mask", "drop"] = "impute"
    image_features: bool = True
    tabular_features: bool = True

    def confidence_for(self, label: str) -> float:
        """The acceptance threshold of ``label`` (multiclass: the one number)."""
        if isinstance(self.confidence, dict):
            return float(self.confidence.get(label, 0.9))
        return float(self.confidence)


SamplingStrategy = Literal["not majority", "all", "minority", "auto"]


class Balance(Section):
    """Oversampling of the train split by row index.

    ``random_over``: imbalanced-learn's RandomOverSampler (multiclass); in the
    multilabel task it means ML-ROS, as ``ml_ros`` does: rows carrying a label whose
    imbalance ratio is above the mean are cloned, ``ml_ros_percent`` % of the train
    rows at most. ``sampling_strategy`` is imbalanced-learn's: a name, or (with
    exactly two classes) the minority-to-majority ratio wanted after oversampling,
    in (0, 1].
    """

    method: Literal["none", "random_over", "ml_ros"] = "random_over"
    sampling_strategy: SamplingStrategy | float = "not majority"
    ml_ros_percent: float = Field(25.0, gt=0, le=400)

    @field_validator("sampling_strategy", mode="before")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        if isinstance(value, str) and value in get_args(SamplingStrategy):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1:
            return float(value)
        names = ", ".join(repr(v) for v in get_args(SamplingStrategy))
        raise ValueError(f"must be one of {names}, or a ratio in (0, 1] (two classes only)")


class Baselines(Section):
    models: tuple[Literal["logreg", "tree", "forest", "adaboost", "gboost"], ...] = (
        "logreg",
        "tree",
        "forest",
        "adaboost",
        "gboost",
    )
    cv_folds: int = Field(3, ge=2, le=20)


IMAGE_ENCODERS: tuple[str, ...] = tuple(ENCODERS)


class Train(Section):
    """Which Keras model to train and how.

    ``weights`` is ``none``, ``imagenet`` (needs the network once) or a path to a
    local weights file. ``trainable_layers`` counts the backbone's top layers left
    trainable (-1 = all); it does not apply to ``small_cnn``, which always trains.
    ``backbone_input_size`` resizes cutouts in the input pipeline (0 = the
    backbone's own minimum, or the cutout size when that is larger).
    ``convs_per_block`` and ``pooling`` shape the small CNN: 3x3 convs before each
    max-pool, and how its last map becomes a vector (``avg``: global average,
    position-blind; ``flatten``: every position kept, for centred objects).
    ``center_crop`` feeds the encoder only the central N x N pixels of each cutout, at
    the cutout's own scale (0 = the whole cutout): the object sits at the centre, and
    what lies further out is mostly sky and unrelated neighbours. On the real SDSS
    cutouts (0.4 arcsec/px) the central 32 pixels beat the whole 128 (see the README).
    ``colour_inputs`` gives the net's tabular input the colours of adjacent bands
    among ``data.features`` (u-g, g-r, ...), the matrix the baselines read: a net can
    form differences itself but learns them slowly; on the real DR17 magnitudes the
    colours are worth 0.008 in accuracy (see the README). An image model has no
    tabular input and ignores it (as the tabular model ignores the image settings),
    so one ``params.yaml`` serves every variant of ``skysort compare``.
    """

    model: Literal["fusion", "tabular", "image"] = "fusion"
    image_encoder: Literal[IMAGE_ENCODERS] = "small_cnn"  # type: ignore[valid-type]
    weights: str = "none"
    trainable_layers: int = Field(-1, ge=-1, le=10_000)
    backbone_input_size: int = Field(0, ge=0, le=1024)
    center_crop: int = Field(0, ge=0, le=2048, description="central N x N pixels (0 = all)")
    head_conv_filters: tuple[Annotated[int, Field(ge=1, le=4096)], ...] = ()
    loss: Literal["crossentropy", "focal"] = "crossentropy"
    focal_gamma: float = Field(2.0, ge=0, le=10)
    class_weight: Literal["none", "balanced"] = "none"
    epochs: int = Field(40, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=4096)
    optimizer: Literal["adam", "rmsprop", "adagrad", "adadelta"] = "adam"
    learning_rate: float = Field(1e-3, gt=0, le=1)
    lr_schedule: Literal["constant", "cosine", "plateau"] = "constant"
    patience: int = Field(10, ge=1, le=1000)
    monitor: Literal["auto", "val_loss", "val_accuracy", "val_auc"] = "auto"
    threshold_objective: Literal["f1", "gmean"] = "f1"
    augment: bool = True
    flips: tuple[Literal["horizontal", "vertical", "transpose"], ...] = (
        "horizontal",
        "vertical",
        "transpose",
    )
    conv_filters: tuple[Annotated[int, Field(ge=1, le=65_536)], ...] = Field(
        (32, 64, 128), min_length=1
    )
    convs_per_block: int = Field(1, ge=1, le=4, description="small_cnn: 3x3 convs per block")
    pooling: Literal["avg", "flatten"] = "avg"
    dense_units: tuple[Annotated[int, Field(ge=1, le=65_536)], ...] = Field((64, 32), min_length=1)
    colour_inputs: bool = False
    dropout: Fraction = 0.3
    modality_dropout: float = Field(
        0.5, ge=0, lt=1, description="fusion: share of samples whose image vector is dropped"
    )
    threads: int = Field(0, ge=0, le=256, description="0 = TensorFlow's default")
    distribute: Literal["none", "mirrored", "multiworker"] = "none"

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: str, info: ValidationInfo) -> str:
        root = _project_root(info)
        if value in ("none", "imagenet") or root is None:
            return value
        path = Path(value).expanduser()
        if not (root / path).is_file():
            raise ValueError(
                "no such weights file (give none, imagenet or the path of an existing "
                ".weights.h5 / .h5 file, relative to the project root)"
            )
        return value

    @model_validator(mode="after")
    def _check_small_cnn_shape(self) -> Train:
        if self.image_encoder != "small_cnn":
            if self.convs_per_block != 1:
                raise ValueError("train.convs_per_block: shapes small_cnn only; leave it at 1")
            if self.pooling != "avg":
                raise ValueError(
                    f"train.pooling: {self.pooling!r} shapes small_cnn only; "
                    f"{self.image_encoder} pools by global average"
                )
        return self

    def describe(self) -> str:
        """The model as a person names it: ``tabular``, or ``fusion/small_cnn``."""
        return self.model if self.model == "tabular" else f"{self.model}/{self.image_encoder}"

    def monitored(self, task: str) -> str:
        """The validation metric early stopping and the checkpoint watch.

        ``auto``: validation loss for multiclass, validation AUC for multilabel.
        """
        if self.monitor != "auto":
            return self.monitor
        return "val_auc" if task == "multilabel" else "val_loss"


class Evaluate(Section):
    """Scoring on the test split, and the explanations of a sample of its objects.

    ``explain``: how many test objects get a Grad-CAM and a LIME picture (0 = none);
    each costs about ``lime_samples`` extra model calls on perturbed cutouts.
    """

    batch_size: int = Field(256, ge=1, le=65536)
    explain: int = Field(0, ge=0, le=1000)
    lime_samples: int = Field(200, ge=10, le=10000)


# Prefect names: what `prefect deployment run FLOW/NAME` and `prefect worker start --pool` accept.
PREFECT_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


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

    kind: Literal["local", "dask"] = "local"
    address: str | None = None
    n_workers: int = Field(2, ge=1, le=1024)
    threads_per_worker: int = Field(1, ge=1, le=256)
    processes: bool = True
    shard_size: int = Field(500, ge=1, le=10_000_000)

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

    push: bool = True
    git_commit: bool = False


NEVER_OVERRIDDEN_IN_DEPLOYMENTS: tuple[str, ...] = (
    "paths",
    "query.sql_file",
    "source.skyserver.base_url",
    "source.skyserver.allow_insecure_http",
    "train.weights",
    "runner",
    "schedule",
)
"""Keys (and sections) naming files, hosts or clusters: a deployment run may never change them."""


class Schedule(Section):
    """The scheduled deployment of the whole pipeline (``prefect.yaml`` and ``skysort serve``).

    ``deployment`` is the deployment's name (``skysort-pipeline/<deployment>``);
    ``work_pool`` the process work pool its worker polls. ``timezone`` is an IANA name.
    ``allowed_overrides``: the only dotted keys a run of the deployment may override
    (``prefect deployment run ... --param overrides=[...]``); anyone who can reach the
    Prefect API can start such a run, so keys naming files, hosts or clusters are never
    allowed (:data:`NEVER_OVERRIDDEN_IN_DEPLOYMENTS`).
    """

    deployment: str = Field("scheduled", pattern=PREFECT_NAME)
    work_pool: str = Field("skysort-process", pattern=PREFECT_NAME)
    cron: str = "0 3 * * *"
    timezone: str = "UTC"
    allowed_overrides: tuple[str, ...] = ("query.n_objects", "train.epochs")

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

    name_prefix: str = Field("study", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    models: tuple[Literal["tabular", "image", "fusion"], ...] = ("tabular", "image", "fusion")
    image_encoders: tuple[Literal[IMAGE_ENCODERS], ...] = ("small_cnn", "mobilenetv3small")  # type: ignore[valid-type]
    trainable_layers: tuple[Annotated[int, Field(ge=-1, le=10_000)], ...] = (-1,)
    overrides: dict[str, Any] = {}

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


class Params(Section):
    """The whole of ``params.yaml``."""

    seed: int = Field(42, ge=0, le=2**32 - 1)
    task: Literal["multiclass", "multilabel"] = "multiclass"
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
    runner: Runner = Runner()
    record: Record = Record()
    schedule: Schedule = Schedule()
    compare: Compare = Compare()

    @model_validator(mode="after")
    def _check(self) -> Params:
        if self.clean.test_fraction + self.clean.val_fraction > 0.6:
            raise ValueError(
                "clean.test_fraction + clean.val_fraction leaves too little to train on"
            )
        if self.query.sql_file is not None and self.source.kind != "skyserver":
            raise ValueError(
                f"query.sql_file: is used only with source.kind: skyserver (source.kind is "
                f"{self.source.kind!r}); set it to null or switch the source"
            )
        for key in self.schedule.allowed_overrides:
            if not is_parameter(key):
                raise ValueError(
                    f"schedule.allowed_overrides: {key!r} is not the dotted key of one parameter"
                )
            if any(key == k or key.startswith(f"{k}.") for k in NEVER_OVERRIDDEN_IN_DEPLOYMENTS):
                raise ValueError(
                    f"schedule.allowed_overrides: {key!r} names a file, a host, a cluster or "
                    "the schedule: a deployment run may never override it"
                )
        strategy = self.balance.sampling_strategy
        if isinstance(strategy, float) and len(self.data.classes) != 2:
            raise ValueError(
                f"balance.sampling_strategy: a ratio ({strategy}) works only with two classes, "
                f"and data.classes has {len(self.data.classes)}; use 'not majority', 'all', "
                "'minority' or 'auto'"
            )
        if self.source.kind != "files":
            self.data.check_sdss_names()
        else:
            self._check_files_labels()
        if not self.data.features:
            self._check_image_only()
        if not self.source.has_images and self.train.model != "tabular":
            raise ValueError(
                f"train.model: {self.train.model!r} needs images, but source.files.images is "
                "'none' (tabular-only data): use train.model: tabular (the baselines run too), "
                "or point source.files.images at your image files"
            )
        if self.train.center_crop > self.data.image_size:
            raise ValueError(
                f"train.center_crop: {self.train.center_crop} pixels is larger than the "
                f"cutouts (data.image_size: {self.data.image_size}); use at most "
                f"{self.data.image_size}, or 0 for the whole cutout"
            )
        if isinstance(self.impute.confidence, dict):
            unknown = sorted(set(self.impute.confidence) - set(self.data.labels))
            if unknown:
                raise ValueError(f"impute.confidence names {unknown}, which are not in data.labels")
            if self.task == "multiclass":
                raise ValueError("impute.confidence: one number for the multiclass task")
        if self.task == "multiclass" and self.balance.method == "ml_ros":
            raise ValueError("balance.method: ml_ros is for the multilabel task")
        if self.task == "multilabel" and self.train.monitor == "val_accuracy":
            raise ValueError("train.monitor: use val_auc or val_loss for the multilabel task")
        if self.task == "multiclass" and self.train.monitor == "val_auc":
            raise ValueError("train.monitor: val_auc is for the multilabel task")
        return self

    def _check_image_only(self) -> None:
        """No tabular features: only images can be learnt from, so only the image model."""
        if self.source.kind != "files" or not self.source.has_images:
            raise ValueError(
                "data.features: at least one feature is needed (image-only data, with no "
                "feature columns, needs source.kind: files with images)"
            )
        if self.train.model != "image":
            raise ValueError(
                f"train.model: {self.train.model!r} needs tabular features, but data.features "
                "is empty (image-only data): use train.model: image, or name numeric columns "
                "of your catalog in data.features"
            )
        if (
            self.task == "multilabel"
            and self.impute.missing_labels == "impute"
            and not self.impute.image_features
        ):
            raise ValueError(
                "impute.image_features: false leaves the multilabel imputer nothing to learn "
                "from, as data.features is empty: set it to true, or impute.missing_labels: mask"
            )

    def _check_files_labels(self) -> None:
        """The files source's label columns agree with the task's targets (``data.*``)."""
        files, data = self.source.files, self.data
        if self.task == "multiclass":
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


def is_parameter(key: str) -> bool:
    """True when ``key`` is the dotted path of one parameter (not of a whole section)."""
    model: type[BaseModel] = Params
    parts = key.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        is_section = isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        if is_section == (i == len(parts) - 1):
            return False
        if is_section:
            model = field.annotation
    return True


def check_sql_file(path: Path, root: Path) -> None:
    """Raise ``ValueError`` unless ``path`` is a readable single SELECT inside ``root/queries``.

    No ``..``, and no link leading out of the folder: the file must be the one ``dvc.yaml``
    tracks as the query stage's dependency, and nothing else on the machine can be sent.
    """
    if ".." in path.parts:
        raise ValueError(f"'..' is not allowed: name a file in the project's {QUERIES_DIR}/ folder")
    queries = (root / QUERIES_DIR).resolve()
    if not queries.is_relative_to(root.resolve()):
        raise ValueError(f"the project's {QUERIES_DIR}/ folder links outside the project")
    full = root / path
    if not full.resolve().is_relative_to(queries):
        inside = full.absolute().is_relative_to((root / QUERIES_DIR).absolute())
        where = "links outside" if inside else "is outside"
        raise ValueError(
            f"the file {where} the project's {QUERIES_DIR}/ folder: put your SQL in "
            f"{QUERIES_DIR}/ (dvc.yaml tracks that folder, so editing the SQL reruns the query)"
        )
    if not full.is_file():
        raise ValueError(f"no such file in {root.resolve() / QUERIES_DIR}")
    try:
        check_select(full.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except UnsafeSQLError as exc:
        raise ValueError(f"the SQL {exc}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``dotted.key=value``; the value is read as YAML (so ``3``, ``true``, ``[u, g]`` work)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form dotted.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return key, value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``dotted.key=value`` set (intermediate dicts are created)."""
    out = _deep_copy(raw)
    for text in overrides:
        key, value = parse_override(text)
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(parts[: i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in raw.items()}


# A check on a whole section names the key it is about first: "base_url: ...".
_KEY_FIRST = re.compile(r"([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*): (.*)", re.DOTALL)


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key (check its spelling and section)"
        elif err["type"].startswith("value_error"):
            reason = reason.removeprefix("Value error, ")
            match = _KEY_FIRST.fullmatch(reason)
            key = match and (f"{path}.{match[1]}" if path else match[1])
            if key and is_parameter(key):
                path, reason = key, match[2]
        value = err.get("input")
        shown = (
            ""
            if err["type"] == "extra_forbidden" or isinstance(value, dict | BaseModel)
            else f" (got {value!r})"
        )
        lines.append(f"  {path or '(top level)'}: {reason}{shown}")
    return f"invalid parameters in {origin}:\n" + "\n".join(lines)


def validate_params(
    raw: dict[str, Any], origin: str = "params", root: Path | str | None = None
) -> Params:
    """Validate a raw mapping; raise :class:`ConfigError` naming each bad key's dotted path.

    Files named by parameters are checked relative to ``root`` (default: the working
    directory, the project root every stage runs in).
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(raw).__name__}")
    context = {"root": Path(root) if root is not None else Path.cwd()}
    try:
        params = Params.model_validate(raw, context=context)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None
    _check_finite(params.model_dump(), "")
    return params


def _check_finite(node: Any, path: str) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _check_finite(v, f"{path}.{k}" if path else k)
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"invalid parameters: {path}: must be a finite number (got {node})")


def read_params_file(path: Path | str) -> dict[str, Any]:
    """The raw mapping in a parameter file; refuse what cannot be meant.

    An empty file (it would silently mean "all defaults": write ``{}`` for that), a key
    given twice (YAML would keep the last one without a word), text that is not UTF-8
    and invalid YAML each fail with a message naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file {path} not found (pass --params PATH)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8"
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _refuse_duplicate_keys(node, path, "")
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if raw is None:
        raise ConfigError(
            f"{path} holds no parameters (empty, or only comments); write {{}} to use every default"
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return raw


def _refuse_duplicate_keys(node: yaml.Node, path: Path, where: str) -> None:
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, path, where)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        dotted = f"{where}.{key}" if where else key
        line = key_node.start_mark.line + 1
        if isinstance(key_node, yaml.ScalarNode) and key != "<<":
            if key in seen:
                raise ConfigError(
                    f"{path}: {dotted} is given twice (lines {seen[key]} and {line}); "
                    "YAML would silently keep the last one: remove one"
                )
            seen[key] = line
        _refuse_duplicate_keys(value_node, path, dotted)


def load_params(
    path: Path | str = "params.yaml", overrides: list[str] | tuple[str, ...] = ()
) -> Params:
    """Read ``params.yaml``, apply ``dotted.key=value`` overrides, and validate the result."""
    raw = read_params_file(path)
    return validate_params(apply_overrides(raw, overrides), origin=str(path))
