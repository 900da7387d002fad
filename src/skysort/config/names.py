"""The names parameters are checked against: tasks, SDSS classes, columns, encoders.

The config imports no other skysort module, so the lists the domain modules own are
repeated here; ``tests/test_config_names.py`` holds each one equal to its owner's
(:mod:`skysort.data.schema`, :mod:`skysort.model.encoders`, :mod:`skysort.targets`).
Checks read these names when they run, so a test may register a toy task by
patching :data:`TASK_NAMES`.
"""

from __future__ import annotations

TASK_NAMES: tuple[str, ...] = ("multiclass", "multilabel")
"""Every ``task:``: one target per name in :mod:`skysort.targets`."""

SDSS_CLASSES: tuple[str, ...] = ("GALAXY", "QSO", "STAR")
"""SDSS's spectroscopic classes: those of SkyServer and the simulated survey."""

PHOTOMETRY_COLUMNS: tuple[str, ...] = ("u", "g", "r", "i", "z", "fiberMag_g", "redshift")
"""The catalog columns a model may use as tabular features (``skysort.data.schema``)."""

GALAXY_ZOO_LABELS: tuple[str, ...] = ("gz_elliptical", "gz_spiral", "gz_edge_on", "gz_merger")
"""The multilabel task's Galaxy Zoo morphology flags (``skysort.data.schema``)."""

MODEL_KINDS: tuple[str, ...] = ("fusion", "tabular", "image", "gboost", "forest", "ensemble")
"""Every ``train.model``: the Keras nets, the tree models, their ensemble
(``skysort.model.saved``)."""

IMAGE_ENCODERS: tuple[str, ...] = (
    "small_cnn",
    "resnet50",
    "densenet121",
    "vgg16",
    "vgg19",
    "xception",
    "efficientnetb0",
    "efficientnetb1",
    "efficientnetb2",
    "mobilenetv3small",
    "mobilenetv3large",
)
"""Every ``train.image_encoder`` (``skysort.model.encoders.ENCODERS``)."""
