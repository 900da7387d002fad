from pathlib import Path

import pytest
import yaml

from skysort.config import ConfigError, Params, apply_overrides, load_params, parse_override

ROOT = Path(__file__).resolve().parents[1]


def test_params_yaml_is_valid_and_complete():
    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    # Every section of the model is spelled out in params.yaml: one visible source.
    assert set(raw) == set(Params.model_fields)
    assert params.source.kind == "synthetic"


def test_overrides_are_typed_and_validated():
    params = load_params(ROOT / "params.yaml", ["train.epochs=3", "data.features=[u, g, r]"])
    assert params.train.epochs == 3
    assert params.data.features == ("u", "g", "r")


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.epochs=0", "train.epochs"),
        ("train.epoch=3", "train.epoch: unknown key"),
        ("query.ra_min=400", "query.ra_min"),
        ("source.kind=sdss", "source.kind"),
        ("data.features=[u, colour]", "unknown feature"),
        ("query.r_min=23", "r_min (23.0) must be below r_max"),
        ("cutouts.scale=100", "cutouts.scale"),
        ("clean.val_fraction=0.45", "leaves too little"),
        ("source.skyserver.base_url=ftp://x", "base_url must start with http"),
    ],
)
def test_bad_values_name_the_dotted_key(override, needle):
    with pytest.raises(ConfigError) as exc:
        load_params(ROOT / "params.yaml", [override])
    assert needle in str(exc.value)


def test_params_are_frozen():
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(Exception, match="frozen"):
        params.train.epochs = 5  # type: ignore[misc]


def test_parse_override_rejects_missing_equals():
    with pytest.raises(ConfigError, match="dotted.key=value"):
        parse_override("train.epochs")


def test_override_into_scalar_is_an_error():
    with pytest.raises(ConfigError, match="seed is not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_non_finite_numbers_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="timeout_s"):
        load_params(ROOT / "params.yaml", ["source.skyserver.timeout_s=.inf"])
