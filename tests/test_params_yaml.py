"""params.yaml is written from the config models: the committed file is exactly what they write.

After changing a default or a description in src/skysort/config/, regenerate it with
``python -m skysort.config.render --write``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from skysort.config import Params, load_params
from skysort.config.render import main, render_params_yaml

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "python -m skysort.config.render --write"

BEFORE_GENERATION = "5d697bc25d2354fab8ba917ce543534280056de7"
"""The last commit whose params.yaml was written by hand."""


def test_params_yaml_is_what_the_models_write():
    assert (ROOT / "params.yaml").read_text(encoding="utf-8") == render_params_yaml(), (
        f"params.yaml differs from the config models: run `{REGENERATE}`"
    )


def test_the_written_file_holds_every_default(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(render_params_yaml(), encoding="utf-8")
    assert load_params(path) == Params()
    assert yaml.safe_load(path.read_text()) == Params().model_dump(mode="json")


# Defaults changed on purpose since the last hand-written file: (section, key) -> why.
CHANGED_SINCE = {
    ("baselines", "models"): "lightgbm joined the baselines",
    ("source", "skyserver"): "zoo_threshold one per label: mergers cut at 0.4, not 0.8",
    ("compare", "models"): "the tree models and the ensemble joined the study",
}


def test_the_written_file_loads_as_the_hand_written_one_did(tmp_path):
    """The switch to a written file changed no value (checked against the last hand-written one).

    Only the defaults listed in CHANGED_SINCE may differ, and they must differ.
    """
    try:
        old = subprocess.run(
            ["git", "show", f"{BEFORE_GENERATION}:params.yaml"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the hand-written params.yaml is not in this checkout's history")
    (tmp_path / "old.yaml").write_text(old, encoding="utf-8")
    (tmp_path / "new.yaml").write_text(render_params_yaml(), encoding="utf-8")
    before = load_params(tmp_path / "old.yaml").model_dump(mode="json")
    after = load_params(tmp_path / "new.yaml").model_dump(mode="json")
    for section, key in CHANGED_SINCE:
        assert after[section].pop(key) != before[section].pop(key), (section, key)
    assert after == before


def test_every_key_has_its_line_and_comments_are_the_descriptions():
    lines = render_params_yaml().splitlines()
    task = next(line for line in lines if line.startswith("task:"))
    assert task.startswith("task: multiclass ")
    assert task.endswith("# multiclass (data.classes, softmax) | multilabel (data.labels, sigmoid)")
    assert any(line.startswith("  files:") and "# source.kind files:" in line for line in lines)
    assert '  cron: "0 3 * * *"' in lines


def test_write_and_check(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    assert main(["--check", str(path)]) == 1
    assert main(["--write", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == render_params_yaml()
    assert main(["--check", str(path)]) == 0
    path.write_text(path.read_text().replace("epochs: 40", "epochs: 41"))
    assert main(["--check", str(path)]) == 1
    assert REGENERATE in capsys.readouterr().err
