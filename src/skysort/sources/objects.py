"""The objects predict classifies: a region of the sky or a file of objects, from any source.

Returns the catalog cutouts are made from and the positions, in it, of the objects to
classify. For the simulated survey the catalog is the whole simulated sample, so
that each object's cutout is the very file the survey renders for it (faults and
field neighbours are planned over the whole sample): an object of the training
survey is classified from the cutout it was trained or tested on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skysort.config import Data, Predict, Query, Source
from skysort.data.schema import GALAXY_ZOO_LABELS

log = logging.getLogger(__name__)

SKY_SEED_OFFSET = 7919
"""The simulated sky predict draws a region from is seeded apart from the training sample."""
NOT_FOUND = "not_in_survey"
"""Reason of a listed objid the survey does not have (as predict classifies it)."""
NO_MATCH = "no_match"
"""Reason of a listed position with no object within ``predict.match_arcsec``."""


@dataclass(frozen=True)
class Objects:
    """The catalog cutouts are made from, the rows to classify, and what was not found."""

    catalog: pd.DataFrame
    rows: np.ndarray  # positions in ``catalog``, in output order
    seed: int  # the simulated survey's seed for this catalog (rendering, faults)
    not_found: pd.DataFrame  # objid, ra, dec, reason: listed objects with no match
    described: str


def objects_to_classify(
    predict: Predict,
    source: Source,
    query: Query,
    data: Data,
    seed: int,
    objects_file: Path,
    *,
    zoo: bool = False,
) -> Objects:
    """The objects ``predict`` names (with their labels: see :func:`without_labels`).

    ``zoo``: the model's task reads Galaxy Zoo (the target's ``galaxy_zoo``), so the
    simulated survey is drawn as for that task (true morphology in its cutouts).
    """
    if source.kind == "files" and Path(objects_file).is_dir():
        # your own data: the objects are your catalog file; the default is a folder in git
        log.info("predict: paths.predict_objects %s is a folder, not a file: nothing to "
                 "classify", objects_file)  # fmt: skip
        empty = pd.DataFrame({"objid": pd.array([], dtype="int64"), "ra": [], "dec": []})
        return Objects(empty, np.empty(0, np.int64), seed, _none(),
                       f"no objects: paths.predict_objects {objects_file} is a folder")  # fmt: skip
    if source.kind == "files":
        objects = _from_files(predict, source, data, objects_file)
    elif predict.objects == "file":
        objects = _from_list(predict, source, query, data, seed, _read_list(objects_file), zoo)
    elif source.kind == "synthetic":
        objects = _synthetic_region(predict, source, data, seed, zoo)
    else:
        from skysort.sources.skyserver.sql_photo import photometric_catalog

        catalog = photometric_catalog(predict, data, source.skyserver)
        objects = Objects(catalog, np.arange(len(catalog)), seed, _none(), _region(predict))
    log.info("predict: %d objects (%s)", len(objects.rows), objects.described)
    return objects


def without_labels(catalog: pd.DataFrame, data: Data) -> pd.DataFrame:
    """``catalog`` as predict may see it: class unknown, every label column NaN.

    The simulated survey draws each object's picture from what it truly is, so its
    cutouts are made from the catalog with labels; the checks and the model only
    ever get this copy.
    """
    out = catalog.copy()
    out["class"] = pd.array([pd.NA] * len(out), dtype="string")
    for column in dict.fromkeys((*data.labels, *(c for c in GALAXY_ZOO_LABELS if c in out))):
        out[column] = np.nan
    return out


def _region(predict: Predict) -> str:
    if predict.shape == "cone":
        return f"cone ra {predict.ra} dec {predict.dec} radius {predict.radius_arcmin}'"
    return f"box ra {predict.ra_min}..{predict.ra_max} dec {predict.dec_min}..{predict.dec_max}"


def _none() -> pd.DataFrame:
    return pd.DataFrame({"objid": pd.array([], dtype="int64"), "ra": [], "dec": [],
                         "reason": pd.array([], dtype="string")})  # fmt: skip


def _synthetic_region(
    predict: Predict, source: Source, data: Data, seed: int, zoo: bool = False
) -> Objects:
    """Photometric objects of the simulated sky in the box, or in the box around the cone.

    The simulated sky holds ``predict.sky_density`` objects per square degree (a
    Poisson count, at most ``max_objects``): a small enough region holds none.
    """
    from skysort.sources.synthetic import simulate_catalog

    if predict.shape == "cone":
        half = predict.radius_arcmin / 60
        dec_min, dec_max = max(-90.0, predict.dec - half), min(90.0, predict.dec + half)
        widen = half / max(np.cos(np.radians(max(abs(dec_min), abs(dec_max)))), 1e-6)
        ra_min, ra_max = max(0.0, predict.ra - widen), min(360.0, predict.ra + widen)
    else:
        ra_min, ra_max = predict.ra_min, predict.ra_max
        dec_min, dec_max = predict.dec_min, predict.dec_max
    sky_seed = seed + SKY_SEED_OFFSET
    expected = predict.sky_density * box_area_deg2(ra_min, ra_max, dec_min, dec_max)
    n = min(predict.max_objects, int(np.random.default_rng(sky_seed).poisson(expected)))
    region = Query(n_objects=max(n, 1), ra_min=ra_min, ra_max=ra_max, dec_min=dec_min,
                   dec_max=dec_max, r_min=predict.r_min, r_max=predict.r_max)  # fmt: skip
    catalog = simulate_catalog(region, data, source.synthetic, sky_seed, zoo=zoo).iloc[:n]
    rows = np.arange(len(catalog))
    if predict.shape == "cone":
        inside = separation_deg(catalog["ra"], catalog["dec"], predict.ra, predict.dec)
        rows = np.flatnonzero(inside <= predict.radius_arcmin / 60)
    return Objects(catalog, rows, sky_seed, _none(), f"simulated sky, {_region(predict)}")


def box_area_deg2(ra_min: float, ra_max: float, dec_min: float, dec_max: float) -> float:
    """The area of an ra/dec box on the sphere, in square degrees."""
    band = np.sin(np.radians(dec_max)) - np.sin(np.radians(dec_min))
    return float((ra_max - ra_min) * band * 180 / np.pi)


def separation_deg(ra: pd.Series, dec: pd.Series, ra0: float, dec0: float) -> np.ndarray:
    """Angular distance in degrees of each (ra, dec) from (ra0, dec0) (haversine)."""
    ra1, dec1 = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    ra0r, dec0r = np.radians(ra0), np.radians(dec0)
    h = (
        np.sin((dec1 - dec0r) / 2) ** 2
        + np.cos(dec1) * np.cos(dec0r) * np.sin((ra1 - ra0r) / 2) ** 2
    )
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def _read_list(path: Path) -> pd.DataFrame:
    """A file of objects: an ``objid`` column, or ``ra`` and ``dec`` columns (CSV or Parquet)."""
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise ValueError(
            f"paths.predict_objects {path} is not a file: predict.objects: file needs a CSV "
            "or Parquet file with an objid column, or ra and dec columns"
        )
    if path.suffix.lower() == ".parquet":
        table = pd.read_parquet(path)
    else:
        table = pd.read_csv(path, dtype={"objid": "string"}, comment="#")
    table.columns = [str(c).strip().lower() for c in table.columns]
    if "objid" in table.columns:
        ids = table["objid"].astype("string").str.strip()
        bad = ids.isna() | ~ids.str.fullmatch(r"[0-9]{1,19}").fillna(False)
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise ValueError(f"{path}: objid on line {line} ({ids.iloc[line - 2]!r}) is not an id")
        return pd.DataFrame({"objid": ids.astype("int64")})
    if {"ra", "dec"} <= set(table.columns):
        coords = table[["ra", "dec"]].apply(pd.to_numeric, errors="coerce")
        bad = (
            coords.isna().any(axis=1)
            | ~coords["dec"].between(-90, 90)
            | ~coords["ra"].between(0, 360)
        )
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise ValueError(f"{path}: line {line} has no valid ra (0..360) and dec (-90..90)")
        return coords.astype(float)
    raise ValueError(
        f"{path} has neither an objid column nor ra and dec columns: {list(table.columns)}"
    )


def _from_list(
    predict: Predict,
    source: Source,
    query: Query,
    data: Data,
    seed: int,
    wanted: pd.DataFrame,
    zoo: bool = False,
) -> Objects:
    """Objects of the survey by id or by position (nearest within ``predict.match_arcsec``).

    An object listed twice (or nearest to two positions) is classified once.
    """
    by_id = "objid" in wanted.columns
    if source.kind == "synthetic":
        from skysort.sources.synthetic import simulate_catalog

        survey = simulate_catalog(query, data, source.synthetic, seed, zoo=zoo)
        match = (
            _by_objid(survey, wanted) if by_id else _nearest(survey, wanted, predict.match_arcsec)
        )
        described = "objects of the simulated survey"
    elif by_id:
        from skysort.sources.skyserver.sql_photo import photometric_catalog

        survey = photometric_catalog(predict, data, source.skyserver, wanted["objid"].to_numpy())
        match = _by_objid(survey, wanted)
        described = "SkyServer photometric objects by objid"
    else:
        from skysort.sources.skyserver.sql_match import match_positions

        survey, match = match_positions(predict, data, source.skyserver, wanted)
        described = "SkyServer photometric objects"
    if not by_id:
        described += f' nearest to {len(wanted)} positions (within {predict.match_arcsec}")'
    found = match >= 0
    rows = pd.unique(match[found])
    if len(rows) < found.sum():
        log.info("predict: %d listed %s name an object listed before: each object is "
                 "classified once", int(found.sum()) - len(rows),
                 "objids" if by_id else "positions")  # fmt: skip
    missing = wanted.loc[~found]
    not_found = pd.DataFrame({
        "objid": pd.array(missing["objid"] if by_id else [pd.NA] * len(missing), dtype="Int64"),
        "ra": missing["ra"].to_numpy(float) if not by_id else np.full(len(missing), np.nan),
        "dec": missing["dec"].to_numpy(float) if not by_id else np.full(len(missing), np.nan),
        "reason": pd.array([NOT_FOUND if by_id else NO_MATCH] * len(missing), dtype="string"),
    })  # fmt: skip
    return Objects(survey, np.asarray(rows, dtype=np.int64), seed, not_found, described)


def _by_objid(survey: pd.DataFrame, wanted: pd.DataFrame) -> np.ndarray:
    """For each listed objid, its row in ``survey``, or -1."""
    position = pd.Series(np.arange(len(survey)), index=survey["objid"].to_numpy())
    return position.reindex(wanted["objid"].to_numpy()).fillna(-1).to_numpy(np.int64)


def _nearest(survey: pd.DataFrame, wanted: pd.DataFrame, arcsec: float) -> np.ndarray:
    """For each position, the survey row nearest to it within ``arcsec``, or -1."""
    match = np.full(len(wanted), -1, dtype=np.int64)
    if not len(survey):
        return match
    for n, (ra, dec) in enumerate(wanted[["ra", "dec"]].itertuples(index=False)):
        distance = separation_deg(survey["ra"], survey["dec"], ra, dec)
        best = int(np.argmin(distance))
        if distance[best] * 3600 <= arcsec:
            match[n] = best
    return match


def _from_files(predict: Predict, source: Source, data: Data, objects_file: Path) -> Objects:
    """The user's own catalog file (``source.kind: files``), read as the training one is."""
    from skysort.sources.files.catalog import load_catalog

    unlabelled = source.files.model_copy(update={"label_column": None, "label_columns": ()})
    catalog, _ = load_catalog(objects_file, unlabelled, data, labels=())
    return Objects(catalog, np.arange(len(catalog)), 0, _none(), f"your catalog {objects_file}")
