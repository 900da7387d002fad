from pathlib import Path

import pytest
import yaml

from skysort.config import (
    ConfigError,
    Params,
    apply_overrides,
    load_params,
    parse_override,
    validate_params,
)

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
        ("source.skyserver.base_url=ftp://x", "base_url: must start with http"),
        ("source.skyserver.base_url=https://", "base_url: has no host"),
        ("source.skyserver.base_url=https://:8080/x", "base_url: has no host"),
        ("source.skyserver.base_url=https://h.example/?cmd=x", "base_url: must not have a ?query"),
        ("source.skyserver.base_url=http://sky.example.org", "base_url: plain http:// is allowed"),
        ("balance.sampling_strategy=0.5", "balance.sampling_strategy: a ratio (0.5) works only"),
        ("balance.sampling_strategy=1.5", "balance.sampling_strategy: must be one of"),
        ("balance.sampling_strategy=true", "balance.sampling_strategy: must be one of"),
        ("balance.sampling_strategy=majority", "balance.sampling_strategy: must be one of"),
        ("train.conv_filters=[]", "train.conv_filters: Tuple should have at least 1 item"),
        ("train.conv_filters=[32, -64]", "train.conv_filters.1: Input should be greater than"),
        ("train.dense_units=[]", "train.dense_units: Tuple should have at least 1 item"),
        ("train.dense_units=[0]", "train.dense_units.0: Input should be greater than"),
        ("train.weights=no/such/file.weights.h5", "train.weights: no such weights file"),
        ("query.sql_file=queries/example.sql", "query.sql_file: is used only with source.kind"),
        ("query.sql_file=queries/nope.sql", "query.sql_file: no such file"),
        (
            "schedule.allowed_overrides=[paths.catalog]",
            "schedule.allowed_overrides: 'paths.catalog'",
        ),
        ("schedule.allowed_overrides=[train.epoch]", "'train.epoch' is not the dotted key"),
        ("data.asinh_scales={redshift: 0.001}", "asinh_scales names ['redshift'], which data"),
        ("data.asinh_scales={u: 0}", "data.asinh_scales.u: Input should be greater than 0"),
        ("data.asinh_scales={u: .nan}", "data.asinh_scales.u"),
    ],
)
def test_bad_values_name_the_dotted_key(override, needle, monkeypatch):
    monkeypatch.chdir(ROOT)  # files named by parameters are relative to the project root
    with pytest.raises(ConfigError) as exc:
        load_params(ROOT / "params.yaml", [override])
    assert needle in str(exc.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["source.skyserver.base_url=http://127.0.0.1:8080"],
        ["source.skyserver.base_url=http://localhost:8080/sky"],
        ["source.skyserver.base_url=http://[::1]:8080"],
        [
            "source.skyserver.base_url=http://mirror.lan",
            "source.skyserver.allow_insecure_http=true",
        ],
        ["data.classes=[GALAXY, STAR]", "balance.sampling_strategy=0.5"],
        ["data.classes=[QSO, STAR]", "balance.sampling_strategy=1"],
        ["train.weights=params.yaml"],  # any existing file (Keras judges its content)
        ["source.kind=skyserver", "query.sql_file=queries/example.sql"],
    ],
)
def test_good_values_pass(overrides, monkeypatch):
    monkeypatch.chdir(ROOT)
    load_params(ROOT / "params.yaml", overrides)


def test_file_parameters_are_relative_to_the_project_root(tmp_path, monkeypatch):
    (tmp_path / "w.weights.h5").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert load_params(ROOT / "params.yaml", ["train.weights=w.weights.h5"]).train.weights
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError, match="train.weights"):
        load_params(ROOT / "params.yaml", ["train.weights=w.weights.h5"])


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "holds no parameters"),
        (b"# all defaults, I thought\n", "holds no parameters"),
        (b"train:\n  epochs: 3\n  epochs: 30\n", "train.epochs is given twice (lines 2 and 3)"),
        (b"seed: 1\ntrain: {epochs: 3}\nseed: 2\n", "seed is given twice (lines 1 and 3)"),
        (b"train:\n  model: tabular\n  batch_size: 8\n  model: image\n", "train.model is given"),
        (b"seed: 1\n# caf\xe9\n", "is not UTF-8 text"),
    ],
)
def test_an_empty_ambiguous_or_undecodable_params_file_is_refused(tmp_path, content, needle):
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as exc:
        load_params(path)
    assert str(path) in str(exc.value) and needle in str(exc.value)


def test_an_explicit_empty_mapping_means_all_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("{}\n")
    assert load_params(path) == Params()


def test_the_cli_refuses_a_bad_params_file_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from skysort.flows.cli import app

    for content in (b"", b"seed: 1\nseed: 2\n", b"seed: \xff\n"):
        (tmp_path / "p.yaml").write_bytes(content)
        result = CliRunner().invoke(app, ["params", "--params", str(tmp_path / "p.yaml")])
        assert result.exit_code == 2 and "p.yaml" in result.output
        assert "Traceback" not in result.output


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


def test_the_package_exports_every_name_the_module_did():
    import skysort.config

    names = (
        "SDSS_CLASSES", "Fraction", "QUERIES_DIR", "ConfigError", "Section", "Paths",
        "LABEL_NAME", "Data", "SyntheticSource", "SkyServerSource", "FilesSource", "Source",
        "Query", "Cutouts", "Clean", "Impute", "SamplingStrategy", "Balance", "Baselines",
        "IMAGE_ENCODERS", "Train", "Evaluate", "PREFECT_NAME", "check_cron", "Runner", "Record",
        "NEVER_OVERRIDDEN_IN_DEPLOYMENTS", "Schedule", "Compare", "Params", "is_parameter",
        "check_sql_file", "parse_override", "apply_overrides", "validate_params",
        "read_params_file", "load_params", "GALAXY_ZOO_LABELS", "PHOTOMETRY_COLUMNS",
    )  # fmt: skip
    assert [n for n in names if not hasattr(skysort.config, n)] == []
    assert set(skysort.config.__all__) >= set(names)


def test_a_caller_may_pass_its_own_sql_check(tmp_path):
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries/q.sql").write_text("SELECT 1")
    raw = {"source": {"kind": "skyserver"}, "query": {"sql_file": "queries/q.sql"}}
    seen = []
    assert validate_params(raw, root=tmp_path, check_sql=seen.append).query.sql_file
    assert seen == ["SELECT 1"]

    def refuse(sql: str) -> None:
        raise ValueError("is not allowed here")

    with pytest.raises(ConfigError, match=r"query\.sql_file: the SQL is not allowed here"):
        validate_params(raw, root=tmp_path, check_sql=refuse)
