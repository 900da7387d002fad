"""The comparison study: grid expansion, validation, the table, and a real two-run study."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from skysort.config import Compare, ConfigError, load_params
from skysort.pipeline.compare import Variant, check_variants, expand_grid, format_table, keras_row
from tests.conftest import ROOT
from tests.project import dvc, make_project, tool_env


def test_grid_collapses_combinations_that_differ_in_nothing():
    grid = expand_grid(
        Compare(
            models=("tabular", "image", "fusion"),
            image_encoders=("small_cnn", "resnet50"),
            trainable_layers=(-1, 0, 10),
            overrides={"train.epochs": 7},
        )
    )
    names = [v.name for v in grid]
    # tabular once; small_cnn once per kind; resnet50 once per (kind, trainable_layers)
    assert names == [
        "study-tabular",
        "study-image-small_cnn",
        "study-image-resnet50-all",
        "study-image-resnet50-top0",
        "study-image-resnet50-top10",
        "study-fusion-small_cnn",
        "study-fusion-resnet50-all",
        "study-fusion-resnet50-top0",
        "study-fusion-resnet50-top10",
    ]
    by_name = {v.name: v for v in grid}
    assert by_name["study-tabular"].overrides == {"train.epochs": 7, "train.model": "tabular"}
    assert by_name["study-fusion-resnet50-top10"].set_args() == [
        "-S",
        "train.epochs=7",
        "-S",
        "train.model=fusion",
        "-S",
        "train.image_encoder=resnet50",
        "-S",
        "train.trainable_layers=10",
    ]


def test_dvc_set_args_write_lists_and_booleans_as_yaml():
    v = Variant(
        "x",
        "fusion",
        "small_cnn",
        None,
        {"train.conv_filters": [8, 16], "train.augment": False, "train.weights": "none"},
    )
    assert v.set_args() == [
        "-S",
        "train.conv_filters=[8, 16]",
        "-S",
        "train.augment=false",
        "-S",
        "train.weights=none",
    ]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"models": []}, "at least one value"),
        ({"models": ["tabular", "tabular"]}, "twice"),
        ({"overrides": {"train.model": "image"}}, "other than the grid's own"),
        ({"name_prefix": "Study Run"}, "String should match pattern"),
    ],
)
def test_bad_compare_section_fails_at_load_time(tmp_path, bad, reason):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["compare"].update(bad)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="compare") as err:
        load_params(tmp_path / "params.yaml")
    assert reason in str(err.value)


def test_a_bad_grid_override_names_the_run_and_the_key_before_anything_runs():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    grid = expand_grid(Compare(models=("tabular",), overrides={"train.epochs": 0}))
    with pytest.raises(ConfigError) as err:
        check_variants(raw, grid, "params.yaml")
    assert "study-tabular" in str(err.value) and "train.epochs" in str(err.value)


def _metrics(acc, f1s):
    return {
        "accuracy": acc,
        "f1_macro": sum(f1s.values()) / len(f1s),
        "per_class": {c: {"f1": f} for c, f in f1s.items()},
    }


def test_table_has_one_line_per_run_with_its_figures():
    report = {
        "best_epoch": 4,
        "epochs_run": 9,
        "train_val_accuracy_gap": 0.0312,
        "seconds_per_epoch": 1.234,
        "parameters": 1000,
    }
    rows = [
        keras_row(
            Variant("study-tabular", "tabular", None, None),
            report,
            _metrics(0.81, {"GALAXY": 0.9, "QSO": 0.6, "STAR": 0.7}),
        ),
        keras_row(
            Variant("study-fusion-resnet50-top3", "fusion", "resnet50", 3),
            report,
            _metrics(0.9, {"GALAXY": 0.95, "QSO": 0.8, "STAR": 0.85}),
        ),
    ]
    lines = format_table(rows, ("GALAXY", "QSO", "STAR")).splitlines()
    assert len(lines) == 4  # header, rule, two runs
    tabular, fusion = lines[2].split(), lines[3].split()
    assert tabular[:6] == ["study-tabular", "tabular", "-", "-", "0.8100", "0.7333"]
    assert fusion[:9] == [
        "study-fusion-resnet50-top3",
        "fusion",
        "resnet50",
        "top3",
        "0.9000",
        "0.8667",
        "0.9500",
        "0.8000",
        "0.8500",
    ]
    assert fusion[9:] == ["4/9", "+0.0312", "1.23", "s/epoch"]
    md = format_table(rows, ("GALAXY", "QSO", "STAR"), markdown=True).splitlines()
    assert md[0].startswith("| run |") and len(md) == 4


def _exp_metrics(root) -> dict[str, dict]:
    """Each named experiment's reports/metrics.json, as DVC recorded it."""
    shown = json.loads(dvc("exp", "show", "--json", cwd=root).stdout)
    out = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                out[rev["name"]] = rev["data"]["metrics"]["reports/metrics.json"]["data"]
    return out


@pytest.mark.slow
def test_compare_runs_two_experiments_prints_their_table_and_restores_the_workspace(
    tmp_path, prefect_server
):
    root = make_project(
        tmp_path / "proj",
        {
            "compare": {
                "models": ["tabular", "fusion"],
                "image_encoders": ["small_cnn"],
                "overrides": {"train.epochs": 2},
            }
        },
    )
    dvc("repro", cwd=root)
    dvc("commit", "--force", cwd=root)
    params_before = (root / "params.yaml").read_text()
    metrics_before = (root / "reports/metrics.json").read_text()

    out = subprocess.run(
        [sys.executable, "-m", "skysort.flows.cli", "compare"],
        cwd=root,
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert out.returncode == 0, out.stderr[-3000:]

    table = out.stdout.splitlines()
    runs = [line.split()[0] for line in table[2:] if line.startswith(("study-", "baseline-"))]
    assert runs == [
        "baseline-logreg",
        "baseline-tree",
        "baseline-gboost",
        "study-tabular",
        "study-fusion-small_cnn",
    ]
    rows = {
        r["run"]: r for r in json.loads((root / "reports/compare/compare.json").read_text())["rows"]
    }
    recorded = _exp_metrics(root)
    # every Keras row is a DVC experiment, and the table shows what DVC recorded for it
    for name in ("study-tabular", "study-fusion-small_cnn"):
        assert rows[name]["status"] == "ok"
        assert rows[name]["accuracy"] == recorded[name]["accuracy"]
        assert rows[name]["f1_macro"] == recorded[name]["f1_macro"]
        assert rows[name]["epochs_run"] == 2
        assert f"{rows[name]['f1_macro']:.4f}" in next(x for x in table if x.startswith(name))
    assert rows["study-tabular"]["kind"] == "tabular"
    assert (root / "reports/compare/curves.png").stat().st_size > 0
    # the workspace is back where it was: same params, same outputs, nothing stale
    assert (root / "params.yaml").read_text() == params_before
    assert (root / "reports/metrics.json").read_text() == metrics_before
    assert dvc("status", "--json", cwd=root).stdout.strip() in ("{}", "")


def test_a_failed_run_is_recorded_and_the_study_goes_on_from_the_base_params(tmp_path):
    from skysort.config import Params
    from skysort.data.atomic import write_json
    from skysort.pipeline.compare import run_study

    (tmp_path / "params.yaml").write_text("seed: 1\n")
    (tmp_path / "dvc.lock").write_text("base lock\n")
    grid = expand_grid(Compare(models=("tabular", "image"), image_encoders=("small_cnn",)))
    params = Params()
    seen = []

    def runner(args, cwd):
        seen.append((args[:2], (cwd / "params.yaml").read_text()))
        if args[:2] != ["exp", "run"]:
            return 0, ""
        # DVC leaves the run's parameters in params.yaml, and its reports in place
        (cwd / "params.yaml").write_text("seed: 1\ntrain: {model: changed}\n")
        (cwd / "dvc.lock").write_text("run lock\n")
        if "train.model=image" in args:
            return 1, "ERROR: failed to reproduce 'train': boom\n"
        write_json(
            cwd / "reports/train.json",
            {
                "best_epoch": 2,
                "epochs_run": 3,
                "train_val_accuracy_gap": 0.1,
                "seconds_per_epoch": 0.5,
                "parameters": 10,
                "history": {"val_loss": [1.0, 0.5, 0.6]},
            },
        )
        write_json(
            cwd / "reports/metrics.json", _metrics(0.8, {"GALAXY": 0.9, "QSO": 0.5, "STAR": 0.7})
        )
        return 0, ""

    rows = run_study(tmp_path, params, grid, tmp_path / "out", runner=runner)
    assert [(r["run"], r["status"]) for r in rows] == [
        ("study-tabular", "ok"),
        ("study-image-small_cnn", "failed"),
    ]
    assert rows[1]["error"] == "ERROR: failed to reproduce 'train': boom"
    # each run started from the base parameters; the workspace ends as it began
    runs = [text for args, text in seen if args == ["exp", "run"]]
    assert runs == ["seed: 1\n", "seed: 1\n"]
    assert seen[-1][0] == ["checkout", "--force"]
    assert (tmp_path / "params.yaml").read_text() == "seed: 1\n"
    assert (tmp_path / "dvc.lock").read_text() == "base lock\n"
    assert "FAILED" in (tmp_path / "out/compare.md").read_text()
