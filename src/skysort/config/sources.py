"""Where the catalog and the cutouts come from: ``source:`` and its three kinds."""

from __future__ import annotations

import ipaddress
import string
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from skysort.config.base import Fraction, Section
from skysort.config.names import GALAXY_ZOO_LABELS, SDSS_CLASSES


class SyntheticSource(Section):
    """The built-in offline survey and the faults it injects (rates are per object)."""

    class_mix: dict[str, Annotated[float, Field(gt=0)]] = Field(
        {"GALAXY": 0.58, "STAR": 0.22, "QSO": 0.20}, description="DR17 spectroscopic mix"
    )
    missing_cutout_rate: Fraction = 0.03
    corrupt_cutout_rate: Fraction = 0.02
    blank_cutout_rate: Fraction = 0.02
    missing_label_rate: Fraction = 0.10
    missing_feature_rate: Fraction = 0.01
    neighbour_density: float = Field(
        25.0,
        ge=0,
        le=1000,
        description="field stars and galaxies per arcmin², Poisson (4.5 in a 64 px frame)",
    )
    zoo_missing_per_level: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="multilabel: each level deeper in Galaxy Zoo's decision tree, this share "
        "more of the voted galaxies lack the question's votes (label unknown)",
    )

    @model_validator(mode="after")
    def _check(self) -> SyntheticSource:
        bad = [c for c in self.class_mix if c not in SDSS_CLASSES]
        if bad:
            raise ValueError(f"class_mix has unknown class(es) {bad}")
        return self


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): this machine only."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


DEFAULT_ZOO_THRESHOLD = 0.8
"""The vote fraction a Galaxy Zoo label needs, unless ``zoo_threshold`` names the label."""
DEFAULT_ZOO_THRESHOLDS: dict[str, float] = {
    "gz_elliptical": 0.8,
    "gz_spiral": 0.8,
    "gz_edge_on": 0.8,
    "gz_merger": 0.4,  # volunteers split on mergers: GZ1 merger samples cut p_mg near 0.4
}


def _check_threshold(value: float, where: str) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{where}a vote-fraction threshold must be in (0, 1], got {value}")


class SkyServerSource(Section):
    """Where SkyServer lives and how patiently to talk to it.

    In the multilabel task a Galaxy Zoo label is 1 where its vote fraction reaches its
    ``zoo_threshold`` (one number for every label, or one per label: mergers are usually
    cut near 0.4, the clearer shapes near 0.8), 0 below, and unknown (NaN) with fewer than
    ``zoo_min_votes`` votes. The simulated survey's votes are read the same way.
    """

    base_url: str = Field(
        "https://skyserver.sdss.org", description="http:// only for localhost / 127.0.0.1 / ::1 ..."
    )
    allow_insecure_http: bool = Field(
        False, description="... unless this is true (queries then travel unencrypted)"
    )
    data_release: int = Field(17, ge=8, le=19)
    timeout_s: float = Field(120.0, gt=0, le=600)
    max_rows_per_request: int = Field(
        50_000, ge=1, le=500_000, description="pages above this (server limit 500,000)"
    )
    min_query_interval_s: float = Field(
        1.0, ge=0, le=600, description="SkyServer allows 60 SQL queries per minute"
    )
    zoo_threshold: float | dict[str, float] = Field(
        dict(DEFAULT_ZOO_THRESHOLDS),
        description="multilabel: label = 1 where its Galaxy Zoo vote fraction >= this; one "
        f"number, or label: threshold (a label left out: {DEFAULT_ZOO_THRESHOLD})",
    )
    zoo_min_votes: int = Field(
        10, ge=0, le=10_000, description="multilabel: label unknown (NaN) with fewer votes"
    )

    def zoo_threshold_for(self, label: str) -> float:
        """The vote fraction at which ``label`` is 1 (one number, or the label's own)."""
        if isinstance(self.zoo_threshold, dict):
            return self.zoo_threshold.get(label, DEFAULT_ZOO_THRESHOLD)
        return self.zoo_threshold

    @field_validator("zoo_threshold")
    @classmethod
    def _zoo_threshold(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        if not isinstance(value, dict):
            _check_threshold(value, "")
            return value
        unknown = sorted(set(value) - set(GALAXY_ZOO_LABELS))
        if unknown:
            raise ValueError(
                f"unknown Galaxy Zoo label(s) {unknown}; known: {list(GALAXY_ZOO_LABELS)}"
            )
        for label, threshold in value.items():
            _check_threshold(threshold, f"{label}: ")
        return value

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

    id_column: str | None = Field(
        None, description="64-bit integer ids; null = number the rows 1..N"
    )
    bad_ids: Literal["error", "row_ids"] = Field(
        "error",
        description="ids not exact integers (1.23766E+18) or repeated: error | row_ids "
        "(warn, number the rows)",
    )
    label_column: str | None = Field(
        "class",
        description="the class of each row (blank = unknown); names as in data.classes",
    )
    label_columns: tuple[str, ...] = Field(
        (), description="multi-label: binary 0/1 columns, blank or NaN = unknown"
    )
    ra_column: str | None = Field(None, description="optional sky position columns")
    dec_column: str | None = None
    images: Literal["none", "folder", "column"] = Field(
        "none", description="none (tabular only) | folder (image_pattern) | column (image_column)"
    )
    image_pattern: str = Field(
        "{id}.jpg", description="under paths.source_images; {id}, {row} or any {column}"
    )
    image_column: str | None = Field(
        None, description="images: column: each row's path, relative to paths.source_images"
    )
    resize: Literal["pad", "crop", "stretch"] = Field(
        "pad", description="to data.image_size squares: pad | crop | stretch"
    )
    sentinels: tuple[float, ...] = Field(
        (-9999.0,), description='feature values that mean "missing"'
    )

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
    kind: Literal["synthetic", "skyserver", "files"] = Field(
        "synthetic",
        description="synthetic (offline) | skyserver | files (your own catalog + images)",
    )
    synthetic: SyntheticSource = SyntheticSource()
    skyserver: SkyServerSource = SkyServerSource()
    files: FilesSource = Field(
        FilesSource(),
        description="source.kind files: paths.source_catalog (+ paths.source_images)",
    )

    @property
    def has_images(self) -> bool:
        """False only for a files source without images (tabular-only data)."""
        return self.kind != "files" or self.files.images != "none"
