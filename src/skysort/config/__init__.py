"""The one typed configuration, loaded from ``params.yaml``.

Every stage receives the section it reads, never the raw dict. A bad value or an
unknown key fails at load time with the key's dotted path and the reason.

Files the parameters name (``query.sql_file``, ``train.weights``) are checked when
parameters are loaded (:func:`load_params`, :func:`validate_params`), relative to the
project root: the working directory, where ``dvc.yaml`` runs every stage. Sections
built directly in code (``Query(...)``, ``Train(...)``) skip those file checks.

One source for every default: the models. Code builds sections without a file
(``Params()``, ``Train(epochs=3)``), so the models need defaults anyway; had
``params.yaml`` held them too, the two copies could drift apart unseen. So
``params.yaml`` is written from the models (:mod:`skysort.config.render`): each
key's default, and its ``Field(description=...)`` as the comment beside it. A test
holds the committed file equal to what the models write.

The package imports no other skysort module: the names it checks against live in
:mod:`skysort.config.names` (a test holds them equal to their owners'), and the
check of ``query.sql_file``'s SQL text is the SkyServer source's, imported only
when a file is checked (:func:`skysort.config.files.skyserver_sql_check`) or passed
in by the caller (``check_sql=``).

Modules: ``names`` (name lists), ``base`` (Section, ConfigError), ``files`` (file
parameters), ``sections`` and ``train`` (the stage sections), ``sources``,
``operations`` (runner, record, schedule, compare), ``rules`` (checks across
sections), ``paths_rules`` (where outputs may go), ``params`` (Params), ``loader`` (reading and validating), ``render``
(writing ``params.yaml``).
"""

from skysort.config.base import ConfigError, Fraction, Section
from skysort.config.files import QUERIES_DIR, SQLCheck, check_sql_file
from skysort.config.loader import (
    apply_overrides,
    load_params,
    parse_override,
    read_params_file,
    validate_params,
)
from skysort.config.names import (
    GALAXY_ZOO_LABELS,
    IMAGE_ENCODERS,
    PHOTOMETRY_COLUMNS,
    SDSS_CLASSES,
    TASK_NAMES,
)
from skysort.config.operations import (
    NEVER_OVERRIDDEN_IN_DEPLOYMENTS,
    PREFECT_NAME,
    Compare,
    Record,
    Runner,
    Schedule,
    check_cron,
)
from skysort.config.params import Params, is_parameter
from skysort.config.predict import Predict
from skysort.config.sections import (
    LABEL_NAME,
    Balance,
    Baselines,
    Clean,
    Cutouts,
    Data,
    Evaluate,
    Impute,
    Paths,
    Query,
    SamplingStrategy,
)
from skysort.config.sources import FilesSource, SkyServerSource, Source, SyntheticSource
from skysort.config.train import Train

__all__ = [
    "GALAXY_ZOO_LABELS",
    "IMAGE_ENCODERS",
    "LABEL_NAME",
    "NEVER_OVERRIDDEN_IN_DEPLOYMENTS",
    "PHOTOMETRY_COLUMNS",
    "PREFECT_NAME",
    "QUERIES_DIR",
    "SDSS_CLASSES",
    "TASK_NAMES",
    "Balance",
    "Baselines",
    "Clean",
    "Compare",
    "ConfigError",
    "Cutouts",
    "Data",
    "Evaluate",
    "Predict",
    "FilesSource",
    "Fraction",
    "Impute",
    "Params",
    "Paths",
    "Query",
    "Record",
    "Runner",
    "SQLCheck",
    "SamplingStrategy",
    "Schedule",
    "Section",
    "SkyServerSource",
    "Source",
    "SyntheticSource",
    "Train",
    "apply_overrides",
    "check_cron",
    "check_sql_file",
    "is_parameter",
    "load_params",
    "parse_override",
    "read_params_file",
    "validate_params",
]
