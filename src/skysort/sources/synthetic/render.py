"""Cutout rendering: one catalog object (plus field neighbours) as an SDSS-like gri image.

Point sources and bulge + disc galaxies (arms, dust lanes, merging companions where
the galaxy truly has them, or, in the multiclass survey, where its Galaxy Zoo flags say so), convolved with a PSF of three Gaussians (core and wings),
with sky and shot noise, through the Lupton et al. (2004) asinh colour stretch used by
SkyServer. Fluxes are in nanomaggies (22.5 mag = 1 nmgy).

The seeing, the PSF's wings and the stretch are calibrated on real SkyServer ImgCutout
JPEGs (``benchmarks/sim_vs_real_cutouts.py``): sky level and noise, the profile of
point sources, and the peak brightness of stars and quasars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from skysort.sources.synthetic.catalog import EDGE_ON_AXIS_RATIO, PSF_PETRO_RAD, half_light_radius
from skysort.sources.synthetic.galaxyzoo import TRUE_MORPHOLOGY

# The PSF as ImgCutout JPEGs show it (resampled, and through the JPEG), wider than the
# survey's median r seeing of about 1.4": real point sources measure 4.2-4.4 px FWHM at 0.4"/px.
SEEING_FWHM_ARCSEC = 1.6
SEEING_SCATTER_ARCSEC = 0.12
BAND_SEEING = {"g": 1.06, "r": 1.0, "i": 0.95}  # seeing is worse in bluer bands
POINT_5SIGMA_MAG = {"g": 23.2, "r": 22.9, "i": 22.4}  # per-band depth -> sky noise per pixel
SKY_NOISE_SCATTER = 0.15  # ln-scatter of the sky noise between frames (sky brightness, seeing)
RGB_WEIGHTS = {"i": 1.0, "r": 1.25, "g": 1.9}  # i->R, r->G, g->B as on SkyServer
# Calibrated on real cutouts: the linear slope (255 / stretch) sets the sky noise in grey
# levels (median 2.4 there), Q how fast bright cores saturate. Q 5 (was 3) leaves fewer
# stars flat-topped and wide, nearer the real cutouts; at 3 a CNN trained on simulated
# cutouts read over half the real stars as quasars (docs/simulated-survey.md).
ASINH_Q = 5.0
ASINH_STRETCH_NMGY = 0.62
GAIN_E_PER_NMGY = 150.0  # photo-electrons per nanomaggy, for source shot noise
# Field objects: down to about the survey's depth, counts rising 0.36 dex per magnitude;
# with source.synthetic.neighbour_density these match the real cutouts' neighbours by brightness.
NEIGHBOUR_FAINT_MAG = 23.5
NEIGHBOUR_MAG_SCALE = 1.2  # mag; 1 / (0.36 ln 10)
RENDER_SIZE_PAD = 0.25  # padding (fraction of the size) against FFT wrap-around

# Part of every file's fingerprint: raise it whenever a change here alters the pixels a
# catalog row gives, so files rendered before it are made again rather than kept.
RENDERER_VERSION = 2

_RENDER_BANDS: tuple[str, ...] = ("g", "r", "i")
_FLAGS = {label: label for label in TRUE_MORPHOLOGY}  # the multiclass survey draws its flags


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
    a dust lane or a companion where its true morphology (``true_*`` columns) has
    them, or, for a row without it (the multiclass survey), where the ``gz_*`` flags say so. Seeing, sky noise
    and shot noise follow the magnitudes: fainter objects are dimmer and noisier.
    ``scale`` is arcsec/pixel. ``row["n_neighbours"]`` (default 0) adds field objects.
    """
    offset = rng.uniform(-0.5, 0.5, 2)
    sources = _main_sources(row, offset, scale, rng)
    sources += [_neighbour(size, rng) for _ in range(int(row.get("n_neighbours", 0) or 0))]
    seeing = float(np.clip(rng.normal(SEEING_FWHM_ARCSEC, SEEING_SCATTER_ARCSEC), 0.9, 2.2))
    fwhm_px = [seeing * BAND_SEEING[band] / scale for band in _RENDER_BANDS]
    # Not below 0.8: fainter sky noise vanishes in the JPEG, and clean would call the frame blank.
    sky_factor = float(np.clip(np.exp(rng.normal(0.0, SKY_NOISE_SCATTER)), 0.8, 1.5))
    images = _noiseless_images(sources, size, scale, fwhm_px)
    _add_noise(images, fwhm_px, sky_factor, rng)
    return _asinh_rgb(dict(zip(_RENDER_BANDS, images, strict=True)))


def _noiseless_images(
    sources: list[_Source], size: int, scale: float, fwhm_px: list[float]
) -> np.ndarray:
    """All sources' g, r, i images (3×size×size, nmgy), each band seen through its PSF."""
    points = [s for s in sources if s.re <= 0]
    galaxies = [s for s in sources if s.re > 0]
    if galaxies:
        n = _padded_size(size, max(s.re for s in sources) / scale)
        pad = (n - size) // 2
        images = _extended_images(galaxies, n, scale, fwhm_px)[
            :, pad : pad + size, pad : pad + size
        ]
    else:
        images = np.zeros((3, size, size))
    for k, band in enumerate(_RENDER_BANDS):
        for s in points:
            images[k] += s.flux[band] * _psf_image(size, s.x, s.y, fwhm_px[k])
    return images


def _add_noise(
    images: np.ndarray, fwhm_px: list[float], sky_factor: float, rng: np.random.Generator
) -> None:
    """Add sky noise (``sky_factor`` times the band's nominal) and shot noise, in place."""
    noise = rng.standard_normal(images.shape)
    for k, band in enumerate(_RENDER_BANDS):
        sky = sky_factor * _sky_sigma(band, fwhm_px[k])
        shot2 = np.maximum(images[k], 0) / GAIN_E_PER_NMGY
        images[k] += np.sqrt(sky**2 + shot2) * noise[k]


def _padded_size(size: int, re_px: float) -> int:
    """Frame size for the FFT: room for the PSF, and for a big galaxy's wings, to not wrap."""
    pad = int(min(max(8, math.ceil(2.5 * re_px)), max(8, size * RENDER_SIZE_PAD)))
    return size + 2 * pad + size % 2


def _band_fluxes(row: Mapping[str, Any]) -> dict[str, float]:
    """gri fluxes (nmgy); a missing magnitude borrows its neighbour band's."""
    mags = {b: _finite(row.get(b)) for b in _RENDER_BANDS}
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
    re = float(half_light_radius(np.array(petro)))
    x, y = float(offset[0]), float(offset[1])
    if re < 0.05:
        return [_Source(x, y, flux)]
    q = float(np.clip(_finite(row.get("deVAB_r")) or 1.0, 0.05, 1.0))
    frac_dev = float(np.clip(_finite(row.get("fracDeV_r")) or 0.5, 0.0, 1.0))
    phi = math.radians(_finite(row.get("deVPhi_r")) or 0.0)
    names = TRUE_MORPHOLOGY if TRUE_MORPHOLOGY["gz_spiral"] in row else _FLAGS
    edge_on = _flag(row, names["gz_edge_on"]) or (q < EDGE_ON_AXIS_RATIO and frac_dev < 0.5)
    arms = 0.9 if _flag(row, names["gz_spiral"]) and not edge_on else 0.25 * (1 - frac_dev)
    if str(row.get("class")) == "QSO":
        nucleus = {b: 0.6 * f for b, f in flux.items()}
        host = {b: 0.4 * f for b, f in flux.items()}
        return [_Source(x, y, nucleus), _Source(x, y, host, re, q, phi, frac_dev, arms)]
    main = _Source(x, y, flux, re, q, phi, frac_dev, arms, edge_on)
    if not _flag(row, names["gz_merger"]):
        return [main]
    return [main, _companion(main, scale, rng)]


def _companion(main: _Source, scale: float, rng: np.random.Generator) -> _Source:
    """A smaller galaxy next to a merging one, at a random angle, one to a few radii away."""
    angle = rng.uniform(0, 2 * math.pi)
    dist = rng.uniform(1.2, 2.5) * max(main.re, 0.8) / scale
    ratio = rng.uniform(0.3, 0.9)
    return _Source(
        main.x + dist * math.cos(angle),
        main.y + dist * math.sin(angle),
        {b: ratio * f for b, f in main.flux.items()},
        main.re * rng.uniform(0.5, 1.0),
        float(rng.uniform(0.4, 1.0)),
        float(rng.uniform(0, math.pi)),
        float(rng.uniform(0, 1)),
    )


def _neighbour(size: int, rng: np.random.Generator) -> _Source:
    """A random field star or galaxy somewhere in the frame.

    r from number counts rising by 10x per 2.8 mag (an exponential below the faint
    limit), so most are faint and a few are bright.
    """
    x, y = rng.uniform(-size / 2, size / 2, 2)
    r = NEIGHBOUR_FAINT_MAG - rng.exponential(NEIGHBOUR_MAG_SCALE)
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


# The PSF: three Gaussians (flux share, width relative to the core), a core with SDSS-like
# wings. Under the calibrated stretch a double Gaussian (10 % at twice the width) made
# point sources too compact (light within 2 px over that within 8: 0.50, real 0.34).
# Each component is separable, so both the PSF's image and its Fourier transform are
# sums of outer products of two vectors.
_PSF_COMPONENTS: tuple[tuple[float, float], ...] = ((0.6, 1.0), (0.33, 2.2), (0.07, 5.0))


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
    """Sky noise per pixel (nmgy) that puts a point source's 5 sigma limit at the band's depth.

    The PSF's effective area 1 / sum(psf^2) (optimal weighting) over its Gaussian components.
    """
    f5 = 10 ** (-0.4 * (POINT_5SIGMA_MAG[band] - 22.5))
    sigma = fwhm_px / 2.3548
    psf2 = sum(
        wi * wj / (2 * math.pi * sigma**2 * (si**2 + sj**2))
        for wi, si in _PSF_COMPONENTS
        for wj, sj in _PSF_COMPONENTS
    )
    return f5 / 5 * math.sqrt(psf2)


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
