"""Galaxy Zoo 1 votes (SkyServer's ``zooSpec``) as the multilabel task's binary labels.

A label is 1 where its vote fraction reaches its ``zoo_threshold`` (one number, or one
per label), 0 below it, and
unknown (NaN) where the object has fewer than ``zoo_min_votes`` votes or no Galaxy
Zoo entry at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysort.config import SkyServerSource

VOTE_FRACTIONS: dict[str, str] = {
    "gz_elliptical": "p_el",
    "gz_spiral": "p_cs",  # combined spiral: clockwise + anticlockwise + edge-on
    "gz_edge_on": "p_edge",
    "gz_merger": "p_mg",
}
"""Which ``zooSpec`` vote fraction each label of :data:`skysort.data.schema.GALAXY_ZOO_LABELS` reads."""


def zoo_labels(catalog: pd.DataFrame, skyserver: SkyServerSource) -> pd.DataFrame:
    """``catalog`` with the ``gz_*`` label columns derived from its vote columns."""
    lowered = {str(c).lower(): c for c in catalog.columns}
    needed = ["nvote", *VOTE_FRACTIONS.values()]
    missing = [c for c in needed if c not in lowered]
    if missing:
        raise ValueError(f"the catalog lacks Galaxy Zoo column(s) {missing} (zooSpec)")
    out = catalog.copy()
    votes = pd.to_numeric(out[lowered["nvote"]], errors="coerce").to_numpy(dtype=float)
    enough = votes >= max(skyserver.zoo_min_votes, 1)
    for label, column in VOTE_FRACTIONS.items():
        fraction = pd.to_numeric(out[lowered[column]], errors="coerce").to_numpy(dtype=float)
        known = enough & ~np.isnan(fraction)
        positive = fraction >= skyserver.zoo_threshold_for(label)
        out[label] = np.where(known, positive.astype(float), np.nan)
    return out
