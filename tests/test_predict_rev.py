"""``skysort predict --rev``: the model of an older git revision, fetched through DVC."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from skysort.data.atomic import read_json
from skysort.model.contract import file_md5
from tests.project import dvc, git, make_project, skysort_in
from tests.test_predict import _parts

pytestmark = pytest.mark.slow


def _locked_model_md5(root: Path) -> str:
    """The md5 dvc.lock records for the train stage's model file."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    (out,) = [o for o in lock["stages"]["train"]["outs"] if o["path"] == "models/model.keras"]
    return out["md5"]


def _predict_into(root: Path, folder: str, *extra: str) -> dict:
    """``skysort predict`` writing under ``data/<folder>`` (no DVC-tracked output is touched)."""
    skysort_in(root)(["predict", *extra,
                      "--set", f"paths.predicted=data/{folder}/predicted",
                      "--set", f"paths.unclassified=data/{folder}/unclassified.parquet",
                      "--set", f"paths.needs_spectrum=data/{folder}/needs.parquet",
                      "--set", f"paths.predict_report=data/{folder}/predict.json"])  # fmt: skip
    return read_json(root / f"data/{folder}/predict.json")


def _perturb_model(path: Path) -> None:
    """Overwrite the model at ``path`` with the same net, its weights moved (a 'retrained' one)."""
    from skysort.model.predict import load_model

    net = load_model(path)
    rng = np.random.default_rng(0)
    net.set_weights([w + rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in net.get_weights()])
    net.save(path)


def test_predict_rev_uses_the_model_of_that_revision_through_dvc(tmp_path, prefect_server):
    root = make_project(tmp_path / "proj", {"train": {"model": "tabular", "epochs": 1}})
    dvc("repro", "train", cwd=root)
    git("add", "dvc.lock", cwd=root)
    git("commit", "-qm", "model A", cwd=root)
    rev_a, md5_a = git("rev-parse", "HEAD", cwd=root).strip(), _locked_model_md5(root)
    # a second model at a later revision, recorded in DVC as the train stage's output
    _perturb_model(root / "models/model.keras")
    dvc("commit", "-f", "train", cwd=root)
    git("add", "dvc.lock", cwd=root)
    git("commit", "-qm", "model B", cwd=root)
    md5_b = _locked_model_md5(root)
    assert md5_b != md5_a and file_md5(root / "models/model.keras") == md5_b

    old = _predict_into(root, "old", "--rev", rev_a[:10])
    new = _predict_into(root, "new")
    assert old["model_md5"] == md5_a and new["model_md5"] == md5_b
    assert file_md5(root / "models/model.keras") == md5_b  # the workspace's model is untouched
    a, b = _parts(root / "data/old/predicted"), _parts(root / "data/new/predicted")
    assert a["objid"].tolist() == b["objid"].tolist() and len(a) > 0
    columns = [c for c in a.columns if c.startswith("p_")]
    assert np.abs(a[columns].to_numpy() - b[columns].to_numpy()).max() > 1e-3
    assert set(a["model_md5"]) == {md5_a}

    # a revision that does not exist is refused, naming it
    done = subprocess.run([sys.executable, "-m", "skysort.flows.cli", "predict", "--rev",
                           "no-such-rev"], cwd=root, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1
    assert "dvc get models/model.keras --rev no-such-rev failed" in done.stderr


def test_predict_rev_reads_a_tree_model_folder_of_that_revision(tmp_path, prefect_server):
    """A revision whose model is a folder (``train.model: gboost``) while the workspace's is a net file."""
    from skysort.model.saved import model_md5

    root = make_project(tmp_path / "proj", {"train": {"model": "gboost"}})
    dvc("repro", "train", cwd=root)
    assert (root / "models/model.keras").is_dir()
    trees_md5 = model_md5(root / "models/model.keras")
    git("add", "dvc.lock", "params.yaml", cwd=root)
    git("commit", "-qm", "trees", cwd=root)
    rev_trees = git("rev-parse", "HEAD", cwd=root).strip()
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"] |= {"model": "tabular", "epochs": 1}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc("repro", "train", cwd=root)
    assert (root / "models/model.keras").is_file()
    git("add", "dvc.lock", "params.yaml", cwd=root)
    git("commit", "-qm", "net", cwd=root)

    old = _predict_into(root, "old", "--rev", rev_trees[:10])
    new = _predict_into(root, "new")
    assert old["model_md5"] == trees_md5 and new["model_md5"] != trees_md5
    assert (root / "models/model.keras").is_file()  # the workspace's net is untouched
    a, b = _parts(root / "data/old/predicted"), _parts(root / "data/new/predicted")
    # the trees read cutouts too (the contract's inputs), so objects without one are
    # left unclassified, named, where the tabular net classifies them
    assert len(a) > 0 and set(a["objid"]) <= set(b["objid"])
    skipped = pd.read_parquet(root / "data/old/unclassified.parquet")
    assert set(b["objid"]) - set(a["objid"]) <= set(skipped["objid"])
    a = a.set_index("objid")
    b = b.set_index("objid").loc[a.index]
    columns = [c for c in a.columns if c.startswith("p_")]
    assert np.allclose(a[columns].sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(a[columns].to_numpy() - b[columns].to_numpy()).max() > 1e-3
