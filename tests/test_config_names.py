"""The config's name lists agree with the modules that own them; the config imports no domain code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from skysort.config import ConfigError, validate_params
from skysort.config import names as config_names
from skysort.config.sources import is_loopback_host as config_loopback


def test_photometry_columns_and_galaxy_zoo_labels_are_the_schemas():
    try:
        from skysort.data.schema import GALAXY_ZOO_LABELS, PHOTOMETRY_COLUMNS
    except ImportError:
        from skysort.schema import GALAXY_ZOO_LABELS, PHOTOMETRY_COLUMNS

    assert config_names.PHOTOMETRY_COLUMNS == PHOTOMETRY_COLUMNS
    assert config_names.GALAXY_ZOO_LABELS == GALAXY_ZOO_LABELS


def test_image_encoders_are_the_models():
    try:
        from skysort.model.encoders import ENCODERS
    except ImportError:
        from skysort.encoders import ENCODERS

    assert tuple(ENCODERS) == config_names.IMAGE_ENCODERS


def test_task_names_are_the_targets():
    try:
        from skysort.targets import TARGETS
    except ImportError as exc:
        pytest.skip(f"skysort.targets does not import yet: {exc}")
    assert sorted(config_names.TASK_NAMES) == sorted(TARGETS)


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST.", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "0.0.0.0", "::",
     "sky.example.org", "10.0.0.5", "localhost.example.org", "", None],
)  # fmt: skip
def test_the_loopback_check_is_the_url_modules(host):
    from skysort.sources.urls import is_loopback_host

    assert is_loopback_host is config_loopback  # one check, used by the config and the fetchers
    assert config_loopback(host) is (
        host is not None
        and host.strip("[]").lower().rstrip(".") in {"localhost", "127.0.0.1", "127.1.2.3", "::1"}
    )


def test_the_task_is_checked_against_the_names_when_validated(monkeypatch):
    with pytest.raises(ConfigError, match=r"task: Input should be 'multiclass' or 'multilabel'"):
        validate_params({"task": "toy"})
    monkeypatch.setattr(config_names, "TASK_NAMES", (*config_names.TASK_NAMES, "toy"))
    assert validate_params({"task": "toy"}).task == "toy"


def test_importing_the_config_loads_no_other_skysort_module():
    code = (
        "import sys, skysort.config\n"
        "print(sorted(m for m in sys.modules if m.startswith('skysort.')"
        " and not m.startswith('skysort.config')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
