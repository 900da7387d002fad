"""Simulated Galaxy Zoo: each galaxy's true morphology, and the volunteers' votes on it.

The multilabel task's survey (``simulate_catalog(..., zoo=True)``) keeps the two apart,
as the real sky does: the renderer draws a galaxy's *true* morphology
(:data:`TRUE_MORPHOLOGY` columns), and the labels come from votes drawn from that truth,
with what makes real votes imperfect:

- vote fractions, not flags, under SkyServer's ``zooSpec`` names (``nvote``, ``p_el``,
  ``p_cs``, ``p_edge``, ``p_mg``), thresholded like SkyServer's by
  ``source.skyserver.zoo_threshold`` (:func:`skysort.sources.skyserver.galaxyzoo.zoo_labels`):
  a small galaxy draws "don't know" votes, so its clear shape may fall below the
  threshold; volunteers split on mergers, so a true merger's fraction is often near 0.5;
- galaxies nobody voted on (``GZ_NO_VOTES_RATE``: every label unknown);
- questions deeper in the decision tree (:data:`QUESTION_DEPTH`) reached by fewer
  volunteers: each level deeper, ``source.synthetic.zoo_missing_per_level`` more of the
  voted galaxies lack the question's votes, nested (a galaxy that lacks a question lacks
  every deeper one), so its fraction is NaN and the label unknown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysort.sources.synthetic.seeding import stream

TRUE_MORPHOLOGY: dict[str, str] = {
    "gz_elliptical": "true_elliptical",
    "gz_spiral": "true_spiral",
    "gz_edge_on": "true_edge_on",
    "gz_merger": "true_merger",
}
"""Each label's latent truth column (0/1; 0 for stars and quasars): what the renderer draws."""

QUESTION_DEPTH: dict[str, int] = {
    "gz_elliptical": 1,  # smooth or features: everyone answers it
    "gz_edge_on": 2,  # asked of those who saw features
    "gz_spiral": 3,  # asked of those who saw a disc not edge-on
    "gz_merger": 4,  # "anything odd?" then "which odd feature?"
}
"""How deep in Galaxy Zoo's decision tree each label's question sits (1 = the first)."""

VOTE_COLUMNS: dict[str, str] = {
    "gz_elliptical": "p_el",
    "gz_spiral": "p_cs",
    "gz_edge_on": "p_edge",
    "gz_merger": "p_mg",
}
"""zooSpec's vote-fraction column per label (as in ``skyserver.galaxyzoo.VOTE_FRACTIONS``)."""

MIN_VOTES, MEAN_EXTRA_VOTES = 10, 30  # a voted galaxy's nvote: 10 + Poisson(30)


def true_morphology(
    truth: np.ndarray, shapes: pd.DataFrame, merger_rate: float, edge_on_ratio: float, seed: int
) -> pd.DataFrame:
    """Each object's true morphology as 0/1 columns (:data:`TRUE_MORPHOLOGY` names).

    Early types are ellipticals, the other galaxies discs (spirals), a disc seen with an
    axis ratio below ``edge_on_ratio`` is edge-on, and ``merger_rate`` of galaxies merge.
    """
    galaxy = truth == "GALAXY"
    early = shapes["early"].to_numpy(dtype=bool)
    disc = galaxy & ~early
    merger = galaxy & (stream(seed, "galaxy_zoo", "truth").random(len(truth)) < merger_rate)
    flags = {
        "gz_elliptical": galaxy & early,
        "gz_spiral": disc,
        "gz_edge_on": disc & (shapes["deVAB_r"].to_numpy() < edge_on_ratio),
        "gz_merger": merger,
    }
    return pd.DataFrame({TRUE_MORPHOLOGY[k]: v.astype(float) for k, v in flags.items()})


def draw_votes(
    true: pd.DataFrame,
    galaxy: np.ndarray,
    re: np.ndarray,
    no_votes_rate: float,
    missing_per_level: float,
    seed: int,
) -> pd.DataFrame:
    """Galaxy Zoo vote columns (``nvote`` and one fraction per label) drawn from ``true``.

    ``re`` is each object's half-light radius (arcsec): the smaller, the more "don't
    know" votes dilute every fraction. Non-galaxies and ``no_votes_rate`` of galaxies
    get ``nvote`` 0 and NaN fractions; a question deeper than a galaxy's volunteers
    reached is NaN (see the module's notes).
    """
    rng = stream(seed, "galaxy_zoo", "votes")
    n = len(true)
    unsure = np.clip(0.5 * np.exp(-re / 0.7) * rng.uniform(0.5, 1.5, n), 0.0, 0.9)
    clear = 1.0 - unsure
    fractions = {}
    for label, column in VOTE_COLUMNS.items():
        has = true[TRUE_MORPHOLOGY[label]].to_numpy() > 0.5
        if label == "gz_merger":  # volunteers split on mergers; few see one that is not
            yes, no = rng.beta(5, 4, n), rng.beta(1, 25, n)
        else:
            yes, no = rng.beta(30, 1.5, n), rng.beta(1, 14, n)
        fractions[column] = clear * np.where(has, yes, no)
    voted = galaxy & (rng.random(n) >= no_votes_rate)
    reach = rng.random(n)  # a galaxy's volunteers reach deeper the higher this is
    out = {"nvote": np.where(voted, MIN_VOTES + rng.poisson(MEAN_EXTRA_VOTES, n), 0)}
    for label, column in VOTE_COLUMNS.items():
        unreached = reach < 1 - (1 - missing_per_level) ** (QUESTION_DEPTH[label] - 1)
        out[column] = np.where(voted & ~unreached, fractions[column], np.nan)
    return pd.DataFrame(out)
