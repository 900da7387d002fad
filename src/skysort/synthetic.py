"""The built-in simulated survey: an SDSS-like catalog and gri colour cutouts, offline.

It exists so that a newcomer, CI and the tests can run the whole pipeline with no
network. Everything is deterministic from one seed, follows the same data contract
as SkyServer rows (:data:`skysort.schema.CATALOG_COLUMNS`), and is calibrated to the
real DR17 spectroscopic sample (class mix, colours, magnitudes, redshifts). It also
reproduces what makes the real survey hard: the classes overlap (faint objects with
large photometric errors, compact galaxies that look point-like, stars with quasar
colours, low-redshift quasars inside their host galaxy), labels are missing, and
cutouts go missing, arrive truncated or come back blank.

Magnitudes are SDSS asinh magnitudes ("luptitudes"), so a noise-dominated flux stays
finite. Fluxes are handled in nanomaggies (22.5 mag = 1 nmgy).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri  # scipy comes with scikit-learn

from skysort import io
from skysort.config import Cutouts, Data, Query, SyntheticSource
from skysort.images import JPEG_END, cutout_path, encode_jpeg
from skysort.progress import Progress
from skysort.schema import (
    BANDS,
    CATALOG_COLUMNS,
    GALAXY_ZOO_LABELS,
    MAGNITUDE_COLUMNS,
    MANIFEST_COLUMNS,
)

log = logging.getLogger(__name__)


SHAPE_COLUMNS: tuple[str, ...] = ("petroRad_r", "deVAB_r", "deVPhi_r", "fracDeV_r")
"""Real PhotoObj column names; the renderer draws each object from them."""

# --- photometry -----------------------------------------------------------------------
# SDSS asinh-magnitude softening b per band (maggies, Lupton et al. 1999); the flux noise
# of a point source is NOISE_FACTOR * b. Galaxies are noisier (larger aperture).
ASINH_SOFTENING: dict[str, float] = {
    "u": 1.4e-10,
    "g": 0.9e-10,
    "r": 1.2e-10,
    "i": 1.8e-10,
    "z": 7.4e-10,
}
NOISE_FACTOR = 1.0
CALIBRATION_ERROR_MAG = 0.02
POINT_FIBER_OFFSET = 0.35  # fiberMag_g - g of a point source (3" fiber, 2" seeing)
FIBER_RE_SCALE_ARCSEC = 1.5  # galaxies lose fiber light as re grows past this

# --- morphology -----------------------------------------------------------------------
PSF_PETRO_RAD = 1.35  # petroRad_r (arcsec) of a point source under typical seeing
PETRO_TO_RE = 2.0  # Petrosian radius / half-light radius, a blend of deV and exponential
GALAXY_PETRO_KPC = 10.0  # median physical Petrosian radius of an L* galaxy
GALAXY_SIZE_SCATTER_DEX = 0.2
MERGER_RATE = 0.05  # of galaxies
GZ_NO_VOTES_RATE = 0.2  # of galaxies: Galaxy Zoo labels NaN ("no votes")
EDGE_ON_AXIS_RATIO = 0.3
BLUE_STAR_FRACTION = 0.07  # white dwarfs / A / BHB stars with quasar-like colours
ZWARNING_BITS: tuple[int, ...] = (4, 4, 4, 16, 32, 128)  # SMALL_DELTA_CHI2 is most common

# --- rendering ------------------------------------------------------------------------
SEEING_FWHM_ARCSEC = 1.4
SEEING_SCATTER_ARCSEC = 0.12
BAND_SEEING = {"g": 1.06, "r": 1.0, "i": 0.95}  # seeing is worse in bluer bands
POINT_5SIGMA_MAG = {"g": 23.2, "r": 22.9, "i": 22.4}  # per-band depth -> sky noise per pixel
RGB_WEIGHTS = {"i": 1.0, "r": 1.25, "g": 1.9}  # i->R, r->G, g->B as on SkyServer
ASINH_Q = 8.0
ASINH_STRETCH_NMGY = 0.4
GAIN_E_PER_NMGY = 150.0  # photo-electrons per nanomaggy, for source shot noise
NEIGHBOUR_EXTRA_MEAN = 0.4  # a frame with neighbours has 1 + Poisson(this) of them
RENDER_SIZE_PAD = 0.25  # padding (fraction of the size) against FFT wrap-around

_RENDER_CHUNK_MAX = 50
_MAX_WORKERS = 8


@dataclass(frozen=True)
class _ClassModel:
    """Split-normal marginals (5 %, 50 %, 95 % points) and their Gaussian-copula correlations.

    Variables: r magnitude, redshift and four colours, before photometric noise. The
    values are tuned so that the *observed* distributions (after noise) match FACTS.
    """

    quantiles: dict[str, tuple[float, float, float]]
    correlations: dict[tuple[str, str], float]


_VARIABLES: tuple[str, ...] = ("r", "redshift", "ug", "gr", "ri", "iz")

_CLASS_MODELS: dict[str, _ClassModel] = {
    "GALAXY": _ClassModel(
        quantiles={
            "r": (16.6, 20.1, 21.95),
            "redshift": (0.05, 0.45, 0.86),
            "ug": (0.5, 1.85, 3.6),
            "gr": (0.45, 1.40, 2.0),
            "ri": (0.30, 0.70, 1.15),
            "iz": (0.10, 0.38, 0.62),
        },
        correlations={
            ("r", "redshift"): 0.75,
            ("redshift", "gr"): 0.55,
            ("redshift", "ri"): 0.8,
            ("redshift", "iz"): 0.5,
            ("redshift", "ug"): 0.3,
            ("ug", "gr"): 0.6,
            ("gr", "ri"): 0.55,
            ("ri", "iz"): 0.5,
        },
    ),
    "QSO": _ClassModel(
        quantiles={
            "r": (18.7, 20.8, 21.95),
            "redshift": (0.5, 1.61, 3.09),
            "ug": (-0.05, 0.30, 2.3),
            "gr": (-0.05, 0.18, 0.85),
            "ri": (-0.08, 0.13, 0.55),
            "iz": (-0.2, 0.12, 0.45),
        },
        correlations={
            ("r", "redshift"): 0.3,
            ("redshift", "ug"): 0.6,
            ("redshift", "gr"): 0.35,
            ("ug", "gr"): 0.4,
            ("gr", "ri"): 0.3,
            ("ri", "iz"): 0.2,
        },
    ),
    "STAR": _ClassModel(
        quantiles={
            "r": (15.9, 19.0, 21.7),
            "redshift": (-0.0010, -0.0001, 0.0004),
            "ug": (0.75, 1.30, 2.8),
            "gr": (0.15, 0.55, 1.50),
            "ri": (0.02, 0.20, 1.35),
            "iz": (-0.02, 0.11, 0.80),
        },
        correlations={
            ("ug", "gr"): 0.9,
            ("gr", "ri"): 0.93,
            ("ri", "iz"): 0.93,
            ("ug", "ri"): 0.82,
            ("gr", "iz"): 0.85,
            ("ug", "iz"): 0.75,
        },
    ),
}

# Blue stars: bluer than the locus, overlapping the quasars (mean, sd per colour).
_BLUE_STAR_COLOURS: dict[str, tuple[float, float]] = {
    "ug": (0.45, 0.25),
    "gr": (0.02, 0.15),
    "ri": (0.0, 0.10),
    "iz": (-0.02, 0.12),
}


# ======================================================================================
# Catalog
# ======================================================================================


def simulate_catalog(
    query: Query, data: Data, synthetic: SyntheticSource, seed: int
) -> pd.DataFrame:
    """Simulate ``query.n_objects`` SDSS-like catalog rows, deterministically from ``seed``.

    Columns: the contract's :data:`~skysort.schema.CATALOG_COLUMNS`, the PhotoObj
    shape columns the renderer needs (:data:`SHAPE_COLUMNS`) and the Galaxy Zoo
    flags (:data:`~skysort.schema.GALAXY_ZOO_LABELS`). ``class`` is pd.NA for the
    injected missing labels; one magnitude is NaN for the injected missing features.
    """
    n = query.n_objects
    truth = _draw_classes(n, data.classes, synthetic.class_mix, _stream(seed, "classes"))
    rng = _stream(seed, "catalog")
    ra, dec = _draw_positions(n, query, rng)
    df = pd.DataFrame({"objid": _draw_objids(n, _stream(seed, "objid")), "ra": ra, "dec": dec})

    true = _draw_intrinsic(truth, query, rng)
    shapes = _draw_shapes(truth, true, rng)
    mags = _observe_photometry(true, shapes, rng)
    # The query selects on the observed r: noise must not carry objects outside its limits.
    mags["r"] = np.clip(mags["r"], query.r_min, query.r_max)
    for col in MAGNITUDE_COLUMNS:
        df[col] = mags[col]
    df["redshift"] = true["redshift"]
    df["zWarning"] = np.zeros(n, dtype=np.int64)
    df["class"] = pd.array(truth, dtype="string")
    df["provenance"] = pd.array([f"synthetic seed={seed}"] * n, dtype="string")
    for col in SHAPE_COLUMNS:
        df[col] = shapes[col]
    gz = _draw_galaxy_zoo(truth, shapes, _stream(seed, "galaxy_zoo"))
    for col in GALAXY_ZOO_LABELS:
        df[col] = gz[col]

    _inject_missing_labels(df, synthetic.missing_label_rate, _stream(seed, "missing_labels"))
    _inject_missing_features(df, synthetic.missing_feature_rate, _stream(seed, "missing_feat"))
    df = df.astype({c: t for c, t in CATALOG_COLUMNS.items() if t != "string"})
    log.info(
        "simulated %d objects (seed %d): %s",
        n,
        seed,
        df["class"].fillna("unknown").value_counts().to_dict(),
    )
    return df


def _stream(seed: int, *names: str) -> np.random.Generator:
    """An independent generator per purpose, so changing one draw does not shift the others."""
    return np.random.default_rng([int(seed), *(zlib.crc32(name.encode()) for name in names)])


def _draw_classes(
    n: int, classes: Sequence[str], mix: Mapping[str, float], rng: np.random.Generator
) -> np.ndarray:
    """True classes, drawn from ``mix`` restricted to ``classes`` and renormalised."""
    names = [c for c in classes if mix.get(c, 0.0) > 0]
    if not names:
        raise ValueError(f"class_mix {dict(mix)} gives no weight to any of the classes {classes}")
    p = np.array([mix[c] for c in names], dtype=float)
    return rng.choice(np.array(names, dtype=object), size=n, p=p / p.sum())


def _draw_positions(n: int, query: Query, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Uniform on the sphere inside the box: uniform in ra and in sin(dec)."""
    ra = rng.uniform(query.ra_min, query.ra_max, n)
    lo, hi = np.sin(np.radians([query.dec_min, query.dec_max]))
    dec = np.degrees(np.arcsin(rng.uniform(lo, hi, n)))
    return ra, dec


def _draw_objids(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unique 64-bit ids packed like SDSS's (skyVersion, rerun, run, camcol, field, obj).

    Built with integer shifts only: a 19-digit id must never pass through float.
    """
    ids = np.empty(0, dtype=np.int64)
    while len(ids) < n:
        m = n - len(ids)
        run = rng.integers(94, 8163, m, dtype=np.int64)
        camcol = rng.integers(1, 7, m, dtype=np.int64)
        field = rng.integers(11, 1000, m, dtype=np.int64)
        obj = rng.integers(1, 2000, m, dtype=np.int64)
        new = (
            (np.int64(2) << np.int64(59))  # skyVersion 2
            | (np.int64(301) << np.int64(48))  # rerun 301
            | (run << np.int64(32))
            | (camcol << np.int64(29))
            | (field << np.int64(16))
            | obj
        )
        ids = np.concatenate([ids, new])
        _, first = np.unique(ids, return_index=True)
        ids = ids[np.sort(first)]
    return ids[:n]


def _split_normal(latent: np.ndarray, q: tuple[float, float, float]) -> np.ndarray:
    """Map standard-normal draws to a skewed marginal with the given 5/50/95 % points."""
    p5, p50, p95 = q
    return np.where(
        latent < 0, p50 + latent * (p50 - p5) / 1.645, p50 + latent * (p95 - p50) / 1.645
    )


def _inverse_split_normal(value: float, q: tuple[float, float, float]) -> float:
    p5, p50, p95 = q
    return (value - p50) / ((p50 - p5) if value < p50 else (p95 - p50)) * 1.645


def _correlation_factor(model: _ClassModel) -> np.ndarray:
    """Cholesky factor of the copula's correlation matrix (nudged to positive definite)."""
    k = len(_VARIABLES)
    corr = np.eye(k)
    for (a, b), rho in model.correlations.items():
        i, j = _VARIABLES.index(a), _VARIABLES.index(b)
        corr[i, j] = corr[j, i] = rho
    vals, vecs = np.linalg.eigh(corr)
    if vals.min() < 1e-3:
        corr = vecs @ np.diag(np.clip(vals, 1e-3, None)) @ vecs.T
        d = np.sqrt(np.diag(corr))
        corr = corr / np.outer(d, d)
    return np.linalg.cholesky(corr)


def _draw_intrinsic(truth: np.ndarray, query: Query, rng: np.random.Generator) -> pd.DataFrame:
    """True r, redshift and colours per object, from each class's copula.

    The r latent is drawn truncated to the query's magnitude limits, so the sample
    obeys them without piling up at the edges.
    """
    n = len(truth)
    out = {v: np.zeros(n) for v in _VARIABLES}
    for cls, model in _CLASS_MODELS.items():
        idx = np.flatnonzero(truth == cls)
        if len(idx) == 0:
            continue
        eps = rng.standard_normal((len(idx), len(_VARIABLES)))
        lo = _phi(_inverse_split_normal(query.r_min + 0.05, model.quantiles["r"]))
        hi = _phi(_inverse_split_normal(query.r_max - 0.05, model.quantiles["r"]))
        eps[:, 0] = _inverse_phi(rng.uniform(lo, hi, len(idx)))
        latent = eps @ _correlation_factor(model).T
        for k, var in enumerate(_VARIABLES):
            out[var][idx] = _split_normal(latent[:, k], model.quantiles[var])
        if cls == "STAR":
            _make_blue_stars(idx, out, rng)
    out["redshift"] = np.where(truth == "STAR", out["redshift"], np.abs(out["redshift"]))
    frame = pd.DataFrame(out)
    frame["class"] = truth
    return frame


def _make_blue_stars(idx: np.ndarray, out: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Recolour a fraction of stars as white dwarfs / A stars: they sit among the quasars."""
    blue = idx[rng.random(len(idx)) < BLUE_STAR_FRACTION]
    for colour, (mean, sd) in _BLUE_STAR_COLOURS.items():
        out[colour][blue] = rng.normal(mean, sd, len(blue))


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _inverse_phi(p: np.ndarray) -> np.ndarray:
    return ndtri(np.clip(p, 1e-12, 1 - 1e-12))


@lru_cache(maxsize=1)
def _cosmology_grid() -> tuple[np.ndarray, np.ndarray]:
    """Comoving distance (Mpc) on a redshift grid; flat LCDM, H0 = 70, Omega_m = 0.3."""
    z = np.linspace(0.0, 6.0, 1201)
    inv_e = 1.0 / np.sqrt(0.3 * (1 + z) ** 3 + 0.7)
    dc = 299792.458 / 70.0 * np.concatenate([[0.0], np.cumsum((inv_e[1:] + inv_e[:-1]) / 2)])
    return z, dc * (z[1] - z[0])


def _kpc_per_arcsec(z: np.ndarray) -> np.ndarray:
    grid, dc = _cosmology_grid()
    da_kpc = np.interp(z, grid, dc) / (1 + z) * 1000.0
    return da_kpc * math.pi / (180 * 3600)


def _distance_modulus(z: np.ndarray) -> np.ndarray:
    grid, dc = _cosmology_grid()
    dl_pc = np.interp(z, grid, dc) * (1 + z) * 1e6
    return 5 * np.log10(np.maximum(dl_pc, 10.0) / 10.0)


def _draw_shapes(truth: np.ndarray, true: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """PhotoObj-like shapes: point sources at the PSF's size, galaxies sized by redshift.

    Galaxy sizes follow a physical size-luminosity relation seen through the angular
    scale at their redshift, so distant galaxies shrink to the PSF: compact galaxies
    that look like stars arise by themselves. Low-redshift quasars get an extended host.
    """
    n = len(truth)
    galaxy = truth == "GALAXY"
    z = np.clip(true["redshift"].to_numpy(), 0.005, None)
    absmag = true["r"].to_numpy() - _distance_modulus(z)
    log_r = (
        np.log10(GALAXY_PETRO_KPC)
        - 0.12 * (absmag + 21.5)
        + rng.normal(0, GALAXY_SIZE_SCATTER_DEX, n)
    )
    intrinsic = np.where(galaxy, 10**log_r / _kpc_per_arcsec(z), 0.0)
    qso_host = (truth == "QSO") & (z < 0.6)
    host_size = rng.uniform(0.8, 2.5, n) * np.clip((0.6 - z) / 0.4, 0, 1)
    intrinsic = np.where(qso_host, host_size, intrinsic)

    early = _early_type(true, rng)
    frac_dev = np.where(early, rng.beta(8, 1.5, n), rng.beta(1.2, 4, n))
    cos_i = rng.uniform(0, 1, n)
    disc_q = np.sqrt(0.12**2 + (1 - 0.12**2) * cos_i**2)
    q = np.where(early, np.clip(rng.normal(0.75, 0.15, n), 0.3, 1.0), disc_q)
    point = intrinsic < 0.05
    petro = np.sqrt(intrinsic**2 + PSF_PETRO_RAD**2)
    petro = np.where(point, PSF_PETRO_RAD * rng.uniform(0.93, 1.0, n), petro)
    q = np.where(point, 1 - np.abs(rng.normal(0, 0.04, n)), q)
    frac_dev = np.where(point, rng.beta(1, 3, n), frac_dev)
    return pd.DataFrame(
        {
            "petroRad_r": petro,
            "deVAB_r": q,
            "deVPhi_r": rng.uniform(0, 180, n),
            "fracDeV_r": frac_dev,
            "early": early & galaxy,
            "qso_host": qso_host,
        }
    )


def _early_type(true: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Early types are the galaxies redder than usual for their redshift."""
    gr = true["gr"].to_numpy()
    expected = 0.6 + 1.6 * np.clip(true["redshift"].to_numpy(), 0, 0.5)
    p = 1 / (1 + np.exp(-(gr - expected + 0.1) / 0.15))
    return rng.random(len(gr)) < p


def _intrinsic_radius(petro: np.ndarray) -> np.ndarray:
    """Half-light radius (arcsec) before seeing, from the observed Petrosian radius."""
    return np.sqrt(np.clip(petro**2 - PSF_PETRO_RAD**2, 0, None)) / PETRO_TO_RE


def _fiber_offset(re: np.ndarray, frac_dev: np.ndarray) -> np.ndarray:
    """fiberMag_g - g: the point-source aperture loss plus what a galaxy spills outside 3"."""
    concentration = 1.0 - 0.3 * frac_dev  # deV profiles keep more light in the centre
    spill = 2.5 * np.log10(1 + (concentration * re / FIBER_RE_SCALE_ARCSEC) ** 1.5)
    return POINT_FIBER_OFFSET + spill


def _observe_photometry(
    true: pd.DataFrame, shapes: pd.DataFrame, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Observed asinh magnitudes: true fluxes plus sky noise (larger for bigger objects)."""
    n = len(true)
    r = true["r"].to_numpy()
    g = r + true["gr"].to_numpy()
    mags = {"r": r, "g": g}
    mags["u"] = g + true["ug"].to_numpy()
    mags["i"] = r - true["ri"].to_numpy()
    mags["z"] = mags["i"] - true["iz"].to_numpy()
    re = _intrinsic_radius(shapes["petroRad_r"].to_numpy())
    host = shapes["qso_host"].to_numpy()
    _redden_quasar_hosts(mags, host, re, rng)
    area_noise = np.sqrt(1 + (re / 1.0) ** 2)
    fiber_true = mags["g"] + _fiber_offset(re, shapes["fracDeV_r"].to_numpy())
    fiber_true = fiber_true + rng.normal(0, 0.05, n)
    observed = {}
    for band in BANDS:
        observed[band] = _noisy_luptitude(mags[band], band, area_noise, rng)
    observed["fiberMag_g"] = _noisy_luptitude(fiber_true, "g", np.full(n, 0.8), rng)
    return observed


def _redden_quasar_hosts(
    mags: dict[str, np.ndarray], host: np.ndarray, re: np.ndarray, rng: np.random.Generator
) -> None:
    """A nearby quasar's host galaxy adds red light: it drifts towards galaxy colours."""
    w = np.where(host, np.clip(re / 1.2, 0, 1) * rng.uniform(0.3, 1.0, len(re)), 0.0)
    shift = {"u": 0.0, "g": -0.0, "r": -0.35, "i": -0.5, "z": -0.6}
    for band, dm in shift.items():
        mags[band] = mags[band] + w * dm
    mags["u"] = mags["u"] + w * 0.5


def _noisy_luptitude(
    mag: np.ndarray, band: str, noise_scale: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    b = ASINH_SOFTENING[band]
    flux = 10 ** (-0.4 * mag) * (1 + rng.normal(0, CALIBRATION_ERROR_MAG, len(mag)))
    flux = flux + rng.normal(0, 1, len(mag)) * NOISE_FACTOR * b * noise_scale
    return -2.5 / math.log(10) * (np.arcsinh(flux / (2 * b)) + math.log(b))


def _draw_galaxy_zoo(
    truth: np.ndarray, shapes: pd.DataFrame, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Galaxy Zoo flags for galaxies; NaN for other classes and for galaxies without votes.

    Small galaxies are often voted "uncertain" (neither elliptical nor spiral), as in GZ1.
    """
    n = len(truth)
    galaxy = truth == "GALAXY"
    early = shapes["early"].to_numpy()
    re = _intrinsic_radius(shapes["petroRad_r"].to_numpy())
    uncertain = rng.random(n) < 0.1 + 0.5 * np.exp(-re / 0.7)
    edge = ~early & (shapes["deVAB_r"].to_numpy() < EDGE_ON_AXIS_RATIO) & ~uncertain
    flags = {
        "gz_elliptical": early & ~uncertain,
        "gz_spiral": ~early & ~uncertain,
        "gz_edge_on": edge,
        "gz_merger": rng.random(n) < MERGER_RATE,
    }
    voted = galaxy & (rng.random(n) >= GZ_NO_VOTES_RATE)
    return {col: np.where(voted, flags[col].astype(float), np.nan) for col in GALAXY_ZOO_LABELS}


def _exact_count(n: int, rate: float) -> int:
    return min(n, int(round(n * rate)))


def _inject_missing_labels(df: pd.DataFrame, rate: float, rng: np.random.Generator) -> None:
    """Blank ``class`` for ``rate`` of rows: half failed redshifts (zWarning set), half unknown.

    Failed redshifts favour faint objects (low signal-to-noise spectra), and their
    redshift is often wrong, as in the real pipeline.
    """
    n = len(df)
    k = _exact_count(n, rate)
    if k == 0:
        return
    rows = rng.permutation(n)[:k]
    faintness = 10 ** (0.4 * (df["r"].to_numpy()[rows] - 20.0))
    failed = rng.choice(rows, (k + 1) // 2, replace=False, p=faintness / faintness.sum())
    df.loc[df.index[rows], "class"] = pd.NA
    df.loc[df.index[failed], "zWarning"] = rng.choice(ZWARNING_BITS, len(failed))
    wrong = failed[rng.random(len(failed)) < 0.5]
    df.loc[df.index[wrong], "redshift"] = rng.uniform(0.0, 3.0, len(wrong))


def _inject_missing_features(df: pd.DataFrame, rate: float, rng: np.random.Generator) -> None:
    """One magnitude becomes NaN for ``rate`` of rows (a failed measurement in one band)."""
    k = _exact_count(len(df), rate)
    rows = rng.permutation(len(df))[:k]
    cols = rng.choice(len(MAGNITUDE_COLUMNS), k)
    for j, col in enumerate(MAGNITUDE_COLUMNS):
        df.loc[df.index[rows[cols == j]], col] = np.nan


# ======================================================================================
# Rendering
# ======================================================================================


@dataclass(frozen=True)
class _Source:
    """One object in a frame: position (pixels from centre), gri fluxes (nmgy), shape."""

    x: float
    y: float
    flux: dict[str, float]
    re: float = 0.0  # arcsec; 0 = point source
    q: float = 1.0
    phi: float = 0.0
    frac_dev: float = 0.0
    arms: float = 0.0  # spiral-arm contrast
    dust_lane: bool = False


def render_cutout(
    row: Mapping[str, Any], size: int, scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Render one object as an SDSS-like gri colour image (uint8 size×size×3).

    Point sources when ``petroRad_r`` is at the PSF's size, otherwise a bulge + disc
    galaxy from ``fracDeV_r``, ``petroRad_r``, ``deVAB_r``, ``deVPhi_r``, with arms,
    a dust lane or a companion where the ``gz_*`` flags say so. Seeing, sky noise
    and shot noise follow the magnitudes: fainter objects are dimmer and noisier.
    ``scale`` is arcsec/pixel. ``row["n_neighbours"]`` (default 0) adds field objects.
    """
    offset = rng.uniform(-0.5, 0.5, 2)
    sources = _main_sources(row, offset, scale, rng)
    sources += [_neighbour(size, rng) for _ in range(int(row.get("n_neighbours", 0) or 0))]
    seeing = float(np.clip(rng.normal(SEEING_FWHM_ARCSEC, SEEING_SCATTER_ARCSEC), 0.9, 2.2))
    n = _padded_size(size, max((s.re for s in sources), default=0.0) / scale)
    fwhm_px = [seeing * BAND_SEEING[band] / scale for band in _RENDER_BANDS]
    points = [s for s in sources if s.re <= 0]
    galaxies = [s for s in sources if s.re > 0]
    if galaxies:
        pad = (n - size) // 2
        images = _extended_images(galaxies, n, scale, fwhm_px)[
            :, pad : pad + size, pad : pad + size
        ]
    else:
        images = np.zeros((3, size, size))
    for k, band in enumerate(_RENDER_BANDS):
        for s in points:
            images[k] += s.flux[band] * _psf_image(size, s.x, s.y, fwhm_px[k])
    bands = dict(zip(_RENDER_BANDS, images, strict=True))
    noise = rng.standard_normal((3, size, size))
    for k, (band, image) in enumerate(bands.items()):
        sky2 = _sky_sigma(band, fwhm_px[k]) ** 2
        image += np.sqrt(sky2 + np.maximum(image, 0) / GAIN_E_PER_NMGY) * noise[k]
    return _asinh_rgb(bands)


def _padded_size(size: int, re_px: float) -> int:
    """Frame size for the FFT: room for the PSF, and for a big galaxy's wings, to not wrap."""
    pad = int(min(max(8, math.ceil(2.5 * re_px)), max(8, size * RENDER_SIZE_PAD)))
    return size + 2 * pad + size % 2


def _band_fluxes(row: Mapping[str, Any]) -> dict[str, float]:
    """gri fluxes (nmgy); a missing magnitude borrows its neighbour band's."""
    mags = {b: _finite(row.get(b)) for b in ("g", "r", "i")}
    fallback = next((m for m in (mags["r"], mags["g"], mags["i"]) if m is not None), 21.0)
    return {b: 10 ** (-0.4 * ((m if m is not None else fallback) - 22.5)) for b, m in mags.items()}


def _finite(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _flag(row: Mapping[str, Any], key: str) -> bool:
    value = _finite(row.get(key))
    return value is not None and value >= 0.5


def _main_sources(
    row: Mapping[str, Any], offset: np.ndarray, scale: float, rng: np.random.Generator
) -> list[_Source]:
    """The catalog object itself (plus a nucleus or a merging companion where it has one)."""
    flux = _band_fluxes(row)
    petro = _finite(row.get("petroRad_r")) or PSF_PETRO_RAD
    re = float(_intrinsic_radius(np.array(petro)))
    x, y = float(offset[0]), float(offset[1])
    if re < 0.05:
        return [_Source(x, y, flux)]
    q = float(np.clip(_finite(row.get("deVAB_r")) or 1.0, 0.05, 1.0))
    frac_dev = float(np.clip(_finite(row.get("fracDeV_r")) or 0.5, 0.0, 1.0))
    phi = math.radians(_finite(row.get("deVPhi_r")) or 0.0)
    edge_on = _flag(row, "gz_edge_on") or (q < EDGE_ON_AXIS_RATIO and frac_dev < 0.5)
    arms = 0.9 if _flag(row, "gz_spiral") and not edge_on else 0.25 * (1 - frac_dev)
    if str(row.get("class")) == "QSO":
        nucleus = {b: 0.6 * f for b, f in flux.items()}
        host = {b: 0.4 * f for b, f in flux.items()}
        return [_Source(x, y, nucleus), _Source(x, y, host, re, q, phi, frac_dev, arms)]
    main = _Source(x, y, flux, re, q, phi, frac_dev, arms, edge_on)
    if not _flag(row, "gz_merger"):
        return [main]
    angle = rng.uniform(0, 2 * math.pi)
    dist = rng.uniform(1.2, 2.5) * max(re, 0.8) / scale
    ratio = rng.uniform(0.3, 0.9)
    companion = _Source(
        x + dist * math.cos(angle),
        y + dist * math.sin(angle),
        {b: ratio * f for b, f in flux.items()},
        re * rng.uniform(0.5, 1.0),
        float(rng.uniform(0.4, 1.0)),
        float(rng.uniform(0, math.pi)),
        float(rng.uniform(0, 1)),
    )
    return [main, companion]


def _neighbour(size: int, rng: np.random.Generator) -> _Source:
    """A random field star or galaxy somewhere in the frame."""
    x, y = rng.uniform(-size / 2, size / 2, 2)
    r = 22.5 - rng.exponential(1.5)
    r = max(r, 15.0)
    if rng.random() < 0.6:
        gr = rng.uniform(0.2, 1.4)
        ri = 0.1 + 0.4 * gr * rng.uniform(0.5, 1.5)
        flux = _fluxes_from_colours(r, gr, ri)
        return _Source(float(x), float(y), flux)
    gr, ri = rng.uniform(0.6, 1.7), rng.uniform(0.3, 0.8)
    return _Source(
        float(x),
        float(y),
        _fluxes_from_colours(r, gr, ri),
        float(rng.uniform(0.3, 2.0)),
        float(rng.uniform(0.3, 1.0)),
        float(rng.uniform(0, math.pi)),
        float(rng.uniform(0, 1)),
    )


def _fluxes_from_colours(r: float, gr: float, ri: float) -> dict[str, float]:
    mags = {"g": r + gr, "r": r, "i": r - ri}
    return {b: 10 ** (-0.4 * (m - 22.5)) for b, m in mags.items()}


@lru_cache(maxsize=16)
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets from the frame centre (x right, y up)."""
    c = np.arange(n, dtype=np.float64) - (n - 1) / 2
    return np.meshgrid(c, -c)


@lru_cache(maxsize=16)
def _frequencies(n: int) -> tuple[np.ndarray, np.ndarray]:
    """rfft2 frequencies (cycles/pixel) along x (columns) and y (rows)."""
    return np.fft.rfftfreq(n), np.fft.fftfreq(n)


# The PSF: a double Gaussian, core plus 10 % wings at twice the width. It is separable,
# so both its image and its Fourier transform are outer products of two vectors.
_PSF_COMPONENTS: tuple[tuple[float, float], ...] = ((0.9, 1.0), (0.1, 2.0))


def _psf_transfer(n: int, fwhm_px: float) -> np.ndarray:
    """The PSF's Fourier transform on the rfft2 grid of an n×n frame."""
    kx, ky = _frequencies(n)
    sigma = fwhm_px / 2.3548
    total = np.zeros((n, n // 2 + 1))
    for weight, width in _PSF_COMPONENTS:
        s2 = -2 * math.pi**2 * (sigma * width) ** 2
        total += weight * np.outer(np.exp(s2 * ky**2), np.exp(s2 * kx**2))
    return total


def _psf_image(size: int, x: float, y: float, fwhm_px: float) -> np.ndarray:
    """A unit-flux point source at (x, y) pixels from the centre (y up), sampled at pixels.

    The same function as :func:`_psf_transfer`, so stars and compact galaxies share one
    PSF and differ only in their true size.
    """
    c = np.arange(size, dtype=np.float64) - (size - 1) / 2
    sigma = fwhm_px / 2.3548
    total = np.zeros((size, size))
    for weight, width in _PSF_COMPONENTS:
        s = sigma * width
        gx = np.exp(-((c - x) ** 2) / (2 * s**2))
        gy = np.exp(-((-c - y) ** 2) / (2 * s**2))
        total += weight / (2 * math.pi * s**2) * np.outer(gy, gx)
    return total


def _extended_images(
    galaxies: list[_Source], n: int, scale: float, fwhm_px: list[float]
) -> np.ndarray:
    """The galaxies' noiseless g, r, i images (3×n×n, padded), convolved with each band's PSF.

    One batched FFT pair for all bands and galaxies: per-call overhead dominates here.
    """
    images = np.zeros((3, n, n))
    for s in galaxies:
        bulge, disc = _galaxy_components(s, n, scale)
        for k, band in enumerate(_RENDER_BANDS):
            fb = min(max(s.frac_dev * (1 + _BULGE_TILT[band]), 0.0), 1.0)
            images[k] += s.flux[band] * (fb * bulge + (1 - fb) * disc)
    transfer = np.stack([_psf_transfer(n, f) for f in fwhm_px])
    return np.fft.irfft2(np.fft.rfft2(images) * transfer, s=(n, n))


_RENDER_BANDS: tuple[str, ...] = ("g", "r", "i")
# The bulge holds a larger share of the light in redder bands: spirals are bluer outside.
_BULGE_TILT = {"g": -0.25, "r": 0.0, "i": 0.1}


def _galaxy_components(s: _Source, n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-flux bulge (de Vaucouleurs) and disc (exponential) images of one galaxy."""
    gx, gy = _grid(n)
    x = (gx - s.x) * scale
    y = (gy - s.y) * scale
    c, sn = math.cos(s.phi), math.sin(s.phi)
    major = x * sn + y * c  # position angle measured from north (up) towards east
    minor = -x * c + y * sn
    soft2 = (0.5 * scale) ** 2
    radius = np.sqrt(major**2 + (minor / s.q) ** 2 + soft2)
    bulge_q = s.q + (1 - s.q) * 0.5 * (1 - s.frac_dev)
    bulge_r = np.sqrt(major**2 + (minor / bulge_q) ** 2 + soft2)
    re_bulge = s.re * (0.5 + 0.5 * s.frac_dev)
    bulge = np.exp(-7.669 * (np.sqrt(np.sqrt(bulge_r / re_bulge)) - 1))
    disc = np.exp(-1.678 * (radius / s.re - 1))
    visible = s.re > 3 * scale  # arms and lanes are lost in the PSF below a few pixels
    if s.arms > 0 and visible:
        theta = np.arctan2(minor / s.q, major)
        winding = 2.75 * np.log(radius / s.re + 0.05)
        disc *= 1 + s.arms * np.cos(2 * (theta - winding)) * (1 - np.exp(-radius / s.re))
    if s.dust_lane and visible:
        disc *= 1 - 0.6 * np.exp(-((minor / (0.08 * s.re + 0.3 * scale)) ** 2))
    return bulge / bulge.sum(), disc / disc.sum()


def _sky_sigma(band: str, fwhm_px: float) -> float:
    """Sky noise per pixel (nmgy) that puts a point source's 5 sigma limit at the band's depth."""
    f5 = 10 ** (-0.4 * (POINT_5SIGMA_MAG[band] - 22.5))
    n_eff = 4 * math.pi * (fwhm_px / 2.3548) ** 2
    return f5 / 5 / math.sqrt(n_eff)


def _asinh_rgb(bands: dict[str, np.ndarray]) -> np.ndarray:
    """Lupton et al. (2004) asinh colour stretch (i->R, r->G, g->B), hue kept at saturation."""
    channels = [bands[b] * RGB_WEIGHTS[b] for b in ("i", "r", "g")]
    # arcsinh(x)/x -> 1 as x -> 0, so a floor on the intensity gives the linear regime.
    scaled = np.maximum((channels[0] + channels[1] + channels[2]) * (ASINH_Q / 3), 1e-9)
    scaled /= ASINH_STRETCH_NMGY
    gain = np.arcsinh(scaled) / scaled * (255 / ASINH_STRETCH_NMGY)
    channels = [np.maximum(c * gain, 0) for c in channels]
    # Saturated pixels are scaled down as a whole, so bright cores keep their colour.
    norm = np.maximum(np.maximum(np.maximum(channels[0], channels[1]), channels[2]), 255) / 255
    out = np.empty((*gain.shape, 3), dtype=np.uint8)
    for k, c in enumerate(channels):
        out[..., k] = np.rint(c / norm)
    return out


# ======================================================================================
# Cutout files
# ======================================================================================


@dataclass(frozen=True)
class _Job:
    index: int
    objid: int
    fault: str  # "", "missing", "corrupt" or "blank"
    row: dict[str, Any]


def write_synthetic_cutouts(
    catalog: pd.DataFrame,
    cutouts_dir: Path,
    data: Data,
    cutouts: Cutouts,
    synthetic: SyntheticSource,
    seed: int,
    progress: Progress | None = None,
    rows: slice | None = None,
) -> pd.DataFrame:
    """Render one JPEG per catalog row and return the manifest (catalog order).

    ``rows`` renders only that slice of the catalog (one shard of a distributed
    run); faults are still planned over the whole catalog, so a shard's files and
    manifest rows are exactly those of a whole run.

    Faults at the configured rates, fixed by the seed: *missing* (no file, status
    ``missing``), *corrupt* (a truncated JPEG that the manifest calls ``ok`` — the
    clean stage must catch it) and *blank* (a flat image, also ``ok``). A file that
    already holds exactly the bytes this run would write is left untouched, so a
    re-run rewrites nothing and a killed run resumes.
    """
    cutouts_dir = Path(cutouts_dir)
    cutouts_dir.mkdir(parents=True, exist_ok=True)
    jobs = _plan_jobs(catalog, synthetic, seed)
    if rows is not None:
        jobs = [replace(job, index=k) for k, job in enumerate(jobs[rows])]
    total = len(jobs)
    results: list[tuple[Any, ...] | None] = [None] * total
    chunk = max(1, min(_RENDER_CHUNK_MAX, math.ceil(total / 100)))
    chunks = [jobs[i : i + chunk] for i in range(0, total, chunk)]

    def work(part: list[_Job]) -> list[tuple[int, tuple[Any, ...]]]:
        return [(job.index, _make_cutout(job, cutouts_dir, data, cutouts, seed)) for job in part]

    done = 0
    workers = min(_MAX_WORKERS, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render") as pool:
        for part in pool.map(work, chunks):
            for index, record in part:
                results[index] = record
            done += len(part)
            if progress is not None:
                progress(done, total)
    if progress is not None and total == 0:
        progress(0, 0)
    manifest = pd.DataFrame(results, columns=list(MANIFEST_COLUMNS))
    manifest = manifest.astype(MANIFEST_COLUMNS)
    log.info(
        "synthetic cutouts: %s in %s", manifest["status"].value_counts().to_dict(), cutouts_dir
    )
    return manifest


def _plan_jobs(catalog: pd.DataFrame, synthetic: SyntheticSource, seed: int) -> list[_Job]:
    """Decide each row's fault and neighbour count up front, deterministically from the seed."""
    n = len(catalog)
    rng = _stream(seed, "cutout_faults")
    order = rng.permutation(n)
    faults = np.full(n, "", dtype=object)
    start = 0
    for fault, rate in (
        ("missing", synthetic.missing_cutout_rate),
        ("corrupt", synthetic.corrupt_cutout_rate),
        ("blank", synthetic.blank_cutout_rate),
    ):
        k = min(_exact_count(n, rate), n - start)
        faults[order[start : start + k]] = fault
        start += k
    has_neighbours = _stream(seed, "neighbours").random(n) < synthetic.neighbour_rate
    extra = _stream(seed, "neighbour_count").poisson(NEIGHBOUR_EXTRA_MEAN, n)
    n_neighbours = np.where(has_neighbours, 1 + extra, 0)
    columns = [
        c
        for c in (*MAGNITUDE_COLUMNS, "class", *SHAPE_COLUMNS, *GALAXY_ZOO_LABELS)
        if c in catalog.columns
    ]
    records = catalog[columns].astype(object).to_dict("records")
    objids = catalog["objid"].to_numpy(dtype=np.int64)
    return [
        _Job(
            i, int(objids[i]), str(faults[i]), {**records[i], "n_neighbours": int(n_neighbours[i])}
        )
        for i in range(n)
    ]


def _make_cutout(
    job: _Job, cutouts_dir: Path, data: Data, cutouts: Cutouts, seed: int
) -> tuple[Any, ...]:
    """Produce one manifest record, writing the file unless it already holds these bytes."""
    path = cutout_path(cutouts_dir, job.objid)
    if job.fault == "missing":
        path.unlink(missing_ok=True)  # a stale file from another run would contradict us
        return (job.objid, "missing", 0, "", 1, "no cutout from the service")
    rng = np.random.default_rng([int(seed), zlib.crc32(b"render"), job.objid & (2**63 - 1)])
    payload = _cutout_bytes(job, data.image_size, cutouts.scale, rng)
    digest = hashlib.sha256(payload).hexdigest()
    if not _same_file(path, digest):
        io.write_bytes(path, payload)
    return (job.objid, "ok", len(payload), digest, 1, "")


def _cutout_bytes(job: _Job, size: int, scale: float, rng: np.random.Generator) -> bytes:
    if job.fault == "blank":
        # Outside the footprint the service sends a flat frame, not an error.
        return encode_jpeg(np.full((size, size, 3), 0, dtype=np.uint8))
    payload = encode_jpeg(render_cutout(job.row, size, scale, rng))
    if job.fault == "corrupt":
        return _truncate(payload, rng)
    return payload


def _truncate(payload: bytes, rng: np.random.Generator) -> bytes:
    """Cut a JPEG short, as a dropped connection does; never leave a valid end marker."""
    cut = payload[: int(len(payload) * rng.uniform(0.3, 0.8))]
    while cut.rstrip(b"\x00").endswith(JPEG_END):
        cut = cut[:-1]
    return cut


def _same_file(path: Path, digest: str) -> bool:
    try:
        existing = path.read_bytes()
    except FileNotFoundError:
        return False
    return hashlib.sha256(existing).hexdigest() == digest
