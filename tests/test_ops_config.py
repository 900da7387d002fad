"""The ``runner``, ``record`` and ``train.distribute`` parameters: defaults, and bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skysort.config import ConfigError, load_params, validate_params

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_run_locally_and_commit_nothing_to_git():
    params = load_params(ROOT / "params.yaml")
    assert params.runner.kind == "local" and params.runner.address is None
    assert params.record.push is True and params.record.git_commit is False
    assert params.train.distribute == "none"
    # the sections sit in params.yaml, so that users see and set them
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert {"runner", "record"} <= set(raw) and "distribute" in raw["train"]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"runner": {"kind": "ray"}}, "runner.kind"),
        ({"runner": {"address": "10.0.0.5:8786"}}, "runner.address"),
        ({"runner": {"shard_size": 0}}, "runner.shard_size"),
        ({"record": {"git_commit": "maybe"}}, "record.git_commit"),
        ({"record": {"commit": True}}, "record.commit"),
        ({"train": {"distribute": "tpu"}}, "train.distribute"),
        ({"ui": {"keep_runs": 0}}, "ui.keep_runs"),
        ({"ui": {"runs_dir": "reports"}}, "ui.runs_dir"),  # it would hold paths.metrics
        ({"schedule": {"allowed_overrides": ["ui.runs_dir"]}}, "schedule.allowed_overrides"),
    ],
)
def test_bad_values_fail_at_load_time_naming_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_params(raw)


def test_a_scheduler_address_is_accepted():
    params = validate_params({"runner": {"kind": "dask", "address": "tcp://10.0.0.5:8786"}})
    assert params.runner.address == "tcp://10.0.0.5:8786"
