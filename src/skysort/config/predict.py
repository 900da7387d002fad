"""The ``predict`` section: which objects the trained model classifies, and how."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from skysort.config.base import Section, check_ranges
from skysort.config.operations import check_cron


class Predict(Section):
    """What ``skysort predict`` classifies: a region of the sky or a file of objects.

    ``objects: region`` takes the photometric objects (with or without spectra) in a
    box (``ra_min`` .. ``dec_max``) or a cone (``ra``, ``dec``, ``radius_arcmin``), at
    most ``max_objects`` of them, from SkyServer's PhotoObj or, offline, from the
    simulated sky. ``objects: file`` takes the objects ``paths.predict_objects`` lists
    (a CSV or Parquet file with an ``objid`` column, or ``ra`` and ``dec`` columns
    matched to the nearest object within ``match_arcsec``); with ``source.kind:
    files`` that file is a catalog like the training one, without labels. Offline, a
    region of the simulated sky holds ``sky_density`` objects per square degree.
    """

    objects: Literal["region", "file"] = Field(
        "region", description="region (box or cone of the sky) | file (paths.predict_objects)"
    )
    shape: Literal["box", "cone"] = Field("box", description="region: box (ra/dec limits) | cone")
    ra_min: float = Field(150.0, ge=0, le=360)
    ra_max: float = Field(151.0, ge=0, le=360)
    dec_min: float = Field(1.0, ge=-90, le=90)
    dec_max: float = Field(2.0, ge=-90, le=90)
    ra: float = Field(150.5, ge=0, le=360, description="cone: centre, degrees")
    dec: float = Field(1.5, ge=-90, le=90)
    radius_arcmin: float = Field(20.0, gt=0, le=600, description="cone: radius, arcminutes")
    r_min: float = Field(14.0, ge=0, le=40)
    r_max: float = Field(22.0, ge=0, le=40)
    max_objects: int = Field(500, ge=1, le=5_000_000, description="at most this many objects")
    match_arcsec: float = Field(
        2.0, gt=0, le=60, description="file of ra/dec: nearest object within this distance"
    )
    sky_density: float = Field(
        20_000.0, gt=0, le=10_000_000,
        description="offline (source.kind synthetic): objects per square degree of the simulated sky",
    )  # fmt: skip
    batch_size: int = Field(
        2000, ge=1, le=1_000_000, description="objects fetched, checked and classified at once"
    )
    min_confidence: float = Field(
        0.0, ge=0, le=1, description="below this top probability: the needs-a-spectrum list"
    )
    format: Literal["parquet", "csv"] = Field("parquet", description="the output parts' format")
    deployment: str = Field(
        "predict-scheduled", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="skysort-predict/<name> in prefect.yaml",
    )  # fmt: skip
    cron: str = Field("0 5 * * *", description="the predict deployment's schedule")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        check_cron(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> Predict:
        check_ranges(self, "ra", "dec", "r")
        return self
