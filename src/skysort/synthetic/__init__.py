"""The built-in simulated survey: an SDSS-like catalog and gri colour cutouts, offline.

It exists so that a newcomer, CI and the tests can run the whole pipeline with no
network. Everything is deterministic from one seed, follows the same data contract
as SkyServer rows (:data:`skysort.schema.CATALOG_COLUMNS`), and is calibrated to the
real DR17 spectroscopic sample (class mix, colours, magnitudes, redshifts). It also
reproduces what makes the real survey hard: the classes overlap (faint objects with
large photometric errors, compact galaxies that look point-like, stars with quasar
colours, low-redshift quasars inside their host galaxy), labels are missing, and
cutouts go missing, arrive truncated or come back blank.

- :mod:`~skysort.synthetic.catalog`: the catalog rows (:func:`simulate_catalog`)
- :mod:`~skysort.synthetic.render`: one object as a gri image (:func:`render_cutout`)
- :mod:`~skysort.synthetic.cutouts`: the JPEG files and manifest
  (:func:`write_synthetic_cutouts`)
- :mod:`~skysort.synthetic.faults`: the damage injected on purpose
- :mod:`~skysort.synthetic.seeding`: one random stream per purpose
"""

from skysort.synthetic.catalog import GZ_NO_VOTES_RATE, SHAPE_COLUMNS, simulate_catalog
from skysort.synthetic.cutouts import write_synthetic_cutouts
from skysort.synthetic.render import render_cutout

__all__ = [
    "GZ_NO_VOTES_RATE",
    "SHAPE_COLUMNS",
    "render_cutout",
    "simulate_catalog",
    "write_synthetic_cutouts",
]
