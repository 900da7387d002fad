"""The stage sections but ``train``: files, data, query, cutouts, clean, impute, balance, baselines, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator

from skysort.config.base import Fraction, Section, check_ranges, project_root
from skysort.config.files import check_sql_file
from skysort.config.names import GALAXY_ZOO_LABELS, PHOTOMETRY_COLUMNS, SDSS_CLASSES


class Paths(Section):
    """Every file the stages read or write, relative to the project root.

    ``source_catalog`` and ``source_images`` are the files source's inputs
    (``source.kind: files``), DVC deps of query and cutouts. Other sources ignore
    them; the defaults are a folder kept in git, so the deps always exist.

    Every key but the user's own files (:attr:`INPUTS`) is an output: each in a place of
    its own (not the same as, inside or around another path here) and, when parameters
    are loaded, inside the project (:mod:`skysort.config.paths_rules`).
    """

    INPUTS: ClassVar[tuple[str, ...]] = ("source_images", "source_catalog", "predict_objects")
    """The user's own files: read, never written, and allowed outside the project."""

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
    thresholds: Path = Field(
        Path("models/thresholds.json"),
        description="per-label decision thresholds, tuned on val (multilabel)",
    )
    dvclive: Path = Path("dvclive")
    train_report: Path = Path("reports/train.json")
    metrics: Path = Path("reports/metrics.json")
    plots: Path = Path("reports/plots")
    predictions: Path = Path("reports/predictions.parquet")
    contract: Path = Field(
        Path("models/contract.json"),
        description="what the model needs as input and how its outputs read (predict checks it)",
    )
    predicted: Path = Field(
        Path("data/predicted"), description="predict: one part per batch of classified objects"
    )
    unclassified: Path = Field(
        Path("reports/unclassified.parquet"),
        description="predict: objects it could not classify, and why",
    )
    needs_spectrum: Path = Field(
        Path("reports/needs_spectrum.parquet"),
        description="predict: objects below predict.min_confidence",
    )
    predict_report: Path = Path("reports/predict.json")
    predict_objects: Path = Field(
        Path("data/external"),
        description="predict.objects file: your objid or ra/dec list, or catalog (a DVC dep)",
    )
    source_catalog: Path = Field(
        Path("data/external"),
        description="source.kind files: your CSV / Parquet catalog (a DVC dep)",
    )
    source_images: Path = Field(
        Path("data/external"),
        description="source.kind files: the folder your image paths start from (a DVC dep)",
    )

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
    feature spanning decades, such as redshift (stars near 0, quasars up to 7),
    whose small values standardisation by its spread would squeeze together.
    """

    features: tuple[str, ...] = Field(
        ("u", "g", "r", "i", "z", "fiberMag_g"),
        description="SDSS columns: u, g, r, i, z, fiberMag_g, redshift (any with source.kind files)",
    )
    classes: tuple[str, ...] = SDSS_CLASSES
    labels: tuple[Annotated[str, Field(pattern=LABEL_NAME)], ...] = Field(
        GALAXY_ZOO_LABELS, description="multilabel: binary columns, NaN = unknown"
    )
    label_classes: tuple[str, ...] = Field(
        ("GALAXY",), description="multilabel: rows of other known classes are dropped"
    )
    image_size: int = Field(
        64, ge=64, le=2048, description="cutout width = height in pixels (64-2048)"
    )
    asinh_scales: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        {}, description="feature: scale, read as asinh(x / scale); e.g. {redshift: 0.001}"
    )

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
    sql_file: Path | None = Field(
        None, description="your own SELECT in queries/, e.g. queries/example.sql (skyserver only)"
    )

    @field_validator("sql_file")
    @classmethod
    def _sql_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        root = project_root(info)
        if value is not None and root is not None:
            check_sql_file(value, root, (info.context or {}).get("check_sql"))
        return value

    @model_validator(mode="after")
    def _check(self) -> Query:
        check_ranges(self, "ra", "dec", "r")
        return self


class Cutouts(Section):
    """Image cutouts: pixel scale (arcsec/pixel), service options, fetch etiquette."""

    scale: float = Field(0.396127, ge=0.015, le=60, description="arcsec/pixel (SDSS native)")
    opt: str = Field(
        "", pattern=r"^[A-Z]*$", description="ImgCutout drawing options, e.g. G (grid), L (label)"
    )
    concurrency: int = Field(8, ge=1, le=64)
    pack_size: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="0: a JPEG file per object; N: N objects' JPEGs per file, with an index "
        "(from about 100k objects: a fast dvc status)",
    )
    retries: int = Field(4, ge=0, le=20)
    backoff_s: float = Field(1.0, ge=0, le=60)
    timeout_s: float = Field(
        30.0, gt=0, le=600, description="longest wait for any one read of an answer"
    )
    deadline_s: float = Field(
        120.0, gt=0, le=3600, description="whole request, first byte sent to last received"
    )
    max_retry_after_s: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="cap on a 429/503 Retry-After wait (never below backoff_s)",
    )


class Clean(Section):
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    min_pixel_std: float = Field(2.0, ge=0, description="images flatter than this are blank")
    max_drop_fraction: Fraction = Field(
        0.25, description="more dropped rows than this fails the stage, naming the reasons"
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
    holdout_max_rows: int = Field(
        20000,
        ge=100,
        description="the masked hold-out (a diagnostic) self-trains on at most this many train "
        "rows, drawn at random",
    )
    max_iter: int = Field(10, ge=1, le=100)
    n_estimators: int = Field(100, ge=1, le=5000)
    missing_labels: Literal["impute", "mask", "drop"] = Field(
        "impute",
        description="multilabel: impute (self-training) | mask (masked loss) | drop (rows with "
        "any NaN)",
    )
    image_features: bool = Field(True, description="multilabel imputer: cutout morphology features")
    tabular_features: bool = Field(True, description="multilabel imputer: photometry too")

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

    method: Literal["none", "random_over", "ml_ros"] = Field(
        "random_over", description="none | random_over | ml_ros (multilabel)"
    )
    sampling_strategy: SamplingStrategy | float = "not majority"
    ml_ros_percent: float = Field(
        25.0,
        gt=0,
        le=400,
        description="multilabel (ML-ROS): clone at most this % of train rows",
    )

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
    models: tuple[Literal["logreg", "tree", "forest", "adaboost", "gboost", "lightgbm"], ...] = (
        "logreg",
        "tree",
        "forest",
        "adaboost",
        "gboost",
        "lightgbm",
    )
    cv_folds: int = Field(3, ge=2, le=20)


class Evaluate(Section):
    """Scoring on the test split, and the explanations of a sample of its objects.

    ``explain``: how many test objects get a Grad-CAM and a LIME picture (0 = none);
    each costs about ``lime_samples`` extra model calls on perturbed cutouts.
    """

    batch_size: int = Field(256, ge=1, le=65536)
    explain: int = Field(
        0,
        ge=0,
        le=1000,
        description="test objects explained (Grad-CAM + LIME PNGs in plots/explain); 0 = off",
    )
    lime_samples: int = Field(
        200, ge=10, le=10000, description="perturbed cutouts LIME scores per explained object"
    )
