"""Catalog simulation: SDSS-like rows, calibrated to the real DR17 spectroscopic sample.

Each class (galaxy, quasar, star) draws its r magnitude, redshift and colours jointly
from a Gaussian mixture fitted to the real DR17 sample
(:mod:`skysort.sources.synthetic.dr17_photometry`, written by ``benchmarks/calibrate_sim.py``),
so the colours co-vary as in the real sky: the curved stellar locus, white dwarfs
among the quasars, quasar colours that change with redshift, red and blue galaxies.
Shapes follow a physical size-luminosity relation seen at each redshift, so compact
galaxies that look like stars arise by themselves; photometric noise is added in asinh
magnitudes ("luptitudes"), so a noise-dominated flux stays finite. Missing labels and
magnitudes are injected by :mod:`skysort.sources.synthetic.faults`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from skysort.config import Data, Query, SyntheticSource
from skysort.data.schema import BANDS, CATALOG_COLUMNS, GALAXY_ZOO_LABELS, MAGNITUDE_COLUMNS
from skysort.sources.synthetic.dr17_photometry import MIXTURES, VARIABLES
from skysort.sources.synthetic.faults import inject_catalog_faults
from skysort.sources.synthetic.galaxyzoo import draw_votes, true_morphology
from skysort.sources.synthetic.seeding import stream

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
MAX_REDRAW_ROUNDS = 8  # rejection rounds to keep r inside the query limits


def simulate_catalog(
    query: Query, data: Data, synthetic: SyntheticSource, seed: int, *, zoo: bool = False
) -> pd.DataFrame:
    """Simulate ``query.n_objects`` SDSS-like catalog rows, deterministically from ``seed``.

    Columns: the contract's :data:`~skysort.data.schema.CATALOG_COLUMNS`, the PhotoObj
    shape columns the renderer needs (:data:`SHAPE_COLUMNS`) and morphology. ``class``
    is pd.NA for the injected missing labels; one magnitude is NaN for the injected
    missing features.

    Morphology: without ``zoo`` (the multiclass survey, unchanged since it was pinned)
    the Galaxy Zoo flags (:data:`~skysort.data.schema.GALAXY_ZOO_LABELS`), which the
    renderer also draws. With ``zoo`` (the multilabel task, as SkyServer joins Galaxy
    Zoo for it) each galaxy's true morphology, which the renderer draws, and Galaxy
    Zoo's votes drawn from it under zooSpec's names, to be thresholded into labels
    (:mod:`skysort.sources.synthetic.galaxyzoo`). Nothing else differs: the other
    columns are drawn from their own streams either way.
    """
    truth = _draw_classes(
        query.n_objects, data.classes, synthetic.class_mix, stream(seed, "classes")
    )
    df = _observed_rows(truth, query, seed, synthetic if zoo else None)
    inject_catalog_faults(df, synthetic, seed)
    df = df.astype({c: t for c, t in CATALOG_COLUMNS.items() if t != "string"})
    log.info(
        "simulated %d objects (seed %d): %s",
        len(df),
        seed,
        df["class"].fillna("unknown").value_counts().to_dict(),
    )
    return df


def _observed_rows(
    truth: np.ndarray, query: Query, seed: int, zoo: SyntheticSource | None
) -> pd.DataFrame:
    """The rows as the survey measures them (position, id, photometry, shape, morphology).

    No fault yet: every class and magnitude is present. ``zoo``: true morphology and
    Galaxy Zoo votes instead of flags (:func:`simulate_catalog`).
    """
    n = len(truth)
    rng = stream(seed, "catalog")
    ra, dec = _draw_positions(n, query, rng)
    df = pd.DataFrame({"objid": _draw_objids(n, stream(seed, "objid")), "ra": ra, "dec": dec})

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
    if zoo is not None:
        morphology = true_morphology(truth, shapes, MERGER_RATE, EDGE_ON_AXIS_RATIO, seed)
        re = half_light_radius(shapes["petroRad_r"].to_numpy())
        votes = draw_votes(morphology, truth == "GALAXY", re, GZ_NO_VOTES_RATE,
                           zoo.zoo_missing_per_level, seed)  # fmt: skip
        return pd.concat([df, morphology, votes], axis=1)
    gz = _draw_galaxy_zoo(truth, shapes, stream(seed, "galaxy_zoo"))
    for col in GALAXY_ZOO_LABELS:
        df[col] = gz[col]
    return df


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


def _draw_intrinsic(truth: np.ndarray, query: Query, rng: np.random.Generator) -> pd.DataFrame:
    """r, redshift and colours per object, from each class's DR17 mixture.

    The mixtures (:mod:`skysort.sources.synthetic.dr17_photometry`) describe the real sample
    jointly: the stellar locus and its white dwarfs, the quasars' colours changing
    with redshift as emission lines cross the bands, the galaxies' red sequence and
    blue cloud and their reddening with redshift. Draws outside the query's r
    limits are redrawn, so the sample obeys them without piling up at the edges.
    """
    n = len(truth)
    out = {v: np.zeros(n) for v in VARIABLES}
    lo, hi = query.r_min + 0.05, query.r_max - 0.05
    for cls, mixture in MIXTURES.items():
        idx = np.flatnonzero(truth == cls)
        draws = _draw_in_r_range(mixture, len(idx), lo, hi, rng)
        for k, var in enumerate(VARIABLES):
            out[var][idx] = draws[:, k]
    out["redshift"] = np.where(truth == "STAR", out["redshift"], np.abs(out["redshift"]))
    frame = pd.DataFrame(out)
    frame["class"] = truth
    return frame


def _draw_in_r_range(
    mixture: Mapping[str, tuple], n: int, lo: float, hi: float, rng: np.random.Generator
) -> np.ndarray:
    """``n`` draws (rows of :data:`VARIABLES`) with r in [lo, hi].

    Rejection in rounds; a range the class barely reaches is filled by clipping r
    after a few rounds rather than looping for long.
    """
    kept = np.empty((0, len(VARIABLES)))
    for _ in range(MAX_REDRAW_ROUNDS):
        if len(kept) >= n:
            break
        x = _draw_mixture(mixture, max(n - len(kept), 16) * 2, rng)
        kept = np.concatenate([kept, x[(x[:, 0] >= lo) & (x[:, 0] <= hi)]])
    if len(kept) < n:
        x = _draw_mixture(mixture, n - len(kept), rng)
        x[:, 0] = np.clip(x[:, 0], lo, hi)
        kept = np.concatenate([kept, x])
    return kept[:n]


def _draw_mixture(mixture: Mapping[str, tuple], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from one class's Gaussian mixture, in natural units."""
    weights = np.asarray(mixture["weights"], dtype=float)
    means = np.asarray(mixture["means"], dtype=float)
    k, d = means.shape
    chol = np.zeros((k, d, d))
    chol[:, *np.tril_indices(d)] = np.asarray(mixture["chol"], dtype=float)
    component = rng.choice(k, size=n, p=weights / weights.sum())
    eps = rng.standard_normal((n, d))
    x = means[component] + np.einsum("nij,nj->ni", chol[component], eps)
    return np.asarray(mixture["loc"]) + np.asarray(mixture["scale"]) * x


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
    """PhotoObj-like shapes: point sources at the PSF's size, galaxies sized by redshift."""
    n = len(truth)
    intrinsic = _draw_true_sizes(truth, true, rng)
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
            "early": early & (truth == "GALAXY"),
        }
    )


def _draw_true_sizes(truth: np.ndarray, true: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Petrosian radius before seeing (arcsec; 0: point source; a host for nearby quasars).

    Galaxy sizes follow a physical size-luminosity relation seen through the angular
    scale at their redshift, so distant galaxies shrink to the PSF: compact galaxies
    that look like stars arise by themselves. Low-redshift quasars get an extended host.
    """
    n = len(truth)
    z = np.clip(true["redshift"].to_numpy(), 0.005, None)
    absmag = true["r"].to_numpy() - _distance_modulus(z)
    log_r = (
        np.log10(GALAXY_PETRO_KPC)
        - 0.12 * (absmag + 21.5)
        + rng.normal(0, GALAXY_SIZE_SCATTER_DEX, n)
    )
    intrinsic = np.where(truth == "GALAXY", 10**log_r / _kpc_per_arcsec(z), 0.0)
    qso_host = (truth == "QSO") & (z < 0.6)
    host_size = rng.uniform(0.8, 2.5, n) * np.clip((0.6 - z) / 0.4, 0, 1)
    return np.where(qso_host, host_size, intrinsic)


def _early_type(true: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Early types are the galaxies redder than usual for their redshift."""
    gr = true["gr"].to_numpy()
    expected = 0.6 + 1.6 * np.clip(true["redshift"].to_numpy(), 0, 0.5)
    p = 1 / (1 + np.exp(-(gr - expected + 0.1) / 0.15))
    return rng.random(len(gr)) < p


def half_light_radius(petro: np.ndarray) -> np.ndarray:
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
    re = half_light_radius(shapes["petroRad_r"].to_numpy())
    area_noise = np.sqrt(1 + (re / 1.0) ** 2)
    fiber_true = mags["g"] + _fiber_offset(re, shapes["fracDeV_r"].to_numpy())
    fiber_true = fiber_true + rng.normal(0, 0.05, n)
    observed = {}
    for band in BANDS:
        observed[band] = _noisy_luptitude(mags[band], band, area_noise, rng)
    observed["fiberMag_g"] = _noisy_luptitude(fiber_true, "g", np.full(n, 0.8), rng)
    return observed


def _noisy_luptitude(
    mag: np.ndarray, band: str, noise_scale: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    b = ASINH_SOFTENING[band]
    # The inverse of the asinh magnitude: a magnitude fainter than the softening's
    # (u ~ 24.6) is a negative flux, as in the real catalog, and stays that faint.
    flux = 2 * b * np.sinh(-mag * math.log(10) / 2.5 - math.log(b))
    flux = flux * (1 + rng.normal(0, CALIBRATION_ERROR_MAG, len(mag)))
    flux = flux + rng.normal(0, 1, len(mag)) * NOISE_FACTOR * b * noise_scale
    return -2.5 / math.log(10) * (np.arcsinh(flux / (2 * b)) + math.log(b))


def _draw_galaxy_zoo(
    truth: np.ndarray, shapes: pd.DataFrame, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Galaxy Zoo flags for galaxies; NaN for other classes and for galaxies without votes.

    Small galaxies are often voted "uncertain" (neither elliptical nor spiral), as in GZ1.
    The multiclass survey's morphology, kept as it was so that its figures stay
    comparable: the flags are drawn directly (no votes, a galaxy's four flags unknown
    together) and the renderer draws them, not the truth.
    """
    n = len(truth)
    galaxy = truth == "GALAXY"
    early = shapes["early"].to_numpy()
    re = half_light_radius(shapes["petroRad_r"].to_numpy())
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
