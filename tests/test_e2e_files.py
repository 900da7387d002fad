"""``source.kind: files`` end to end in a real git + DVC project: ``skysort run``, then DVC.

Two shapes of the user's own data, set up as the README says (files under
``data/external``, versioned with ``dvc add``, the README's parameters):

- the SDSS17 table, tabular only (the shared real sample's first rows; its ``obj_ID``
  went through a spreadsheet, so the rows are numbered), multiclass;
- the origin multi-label system's shape: a folder of non-square JPEGs and a CSV of ids
  and four binary label columns, some NaN, some listed files missing, no tabular
  feature; ``task: multilabel``, the image model.

After the run ``dvc status`` is empty and ``dvc repro`` has nothing to do; after one row
or one image is edited, DVC reruns the stages that read it, and no others.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from skysort.data.atomic import read_json
from skysort.pipeline.registry import NAMES as STAGES
from tests.factories import (
    MORPHOLOGY_LABELS,
    SHARED_SDSS17,
    shared_sdss17_head,
    write_multilabel_folder,
)
from tests.project import dvc, git, make_project, merge, tool_env

pytestmark = pytest.mark.slow

# The parameters the README's two examples set, as written there.
SDSS17_PARAMS = """
paths:
  source_catalog: data/external/sdss17.csv
data:
  features: [u, g, r, i, z, redshift]    # or the five magnitudes alone
  classes: [GALAXY, QSO, STAR]
  asinh_scales: {redshift: 0.001}        # the net reads asinh(z / 0.001): stars at z ~ 0 stand apart
source:
  kind: files
  files:
    id_column: obj_ID
    bad_ids: row_ids                     # warns: obj_ID is in scientific notation
    label_column: class
    ra_column: alpha
    dec_column: delta
    images: none
balance:
  method: none                           # learn the catalog's own class mix (accuracy)
train:
  model: tabular
  colour_inputs: true                    # the net reads u-g, g-r, ... as well
  dense_units: [256, 128]                # the recipe of "Real data" below
  dropout: 0.1
  batch_size: 256
  learning_rate: 0.003
  lr_schedule: plateau                   # halve the rate when val loss stalls
  patience: 20
  epochs: 150
"""
MULTILABEL_IMAGES_PARAMS = """
task: multilabel
paths:
  source_catalog: data/external/labels.csv
  source_images: data/external/images
data:
  features: []                           # images only (or numeric columns of your CSV)
  labels: [elliptical, spiral, edge_on, merger]   # your 0 / 1 columns; blank or NaN = unknown
  image_size: 128                        # every image becomes a 128 x 128 cutout
source:
  kind: files
  files:
    id_column: id
    label_column: null                   # no class column
    images: folder
    image_pattern: "{id}.jpg"
    resize: pad                          # the whole image, black borders
train:
  model: image                           # fusion needs data.features
"""


def _configure(root: Path, readme_yaml: str, tiny: dict, tracked: list[str]) -> None:
    """Set the README's parameters (then ``tiny``) in params.yaml, ``dvc add`` the user's files."""
    raw = yaml.safe_load((root / "params.yaml").read_text())
    merge(raw, yaml.safe_load(readme_yaml))
    merge(raw, tiny)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    for path in tracked:
        dvc("add", path, cwd=root)
    git("add", "params.yaml", *(f"{p}.dvc" for p in tracked), cwd=root)
    git("commit", "-qm", "your own files", cwd=root)


def _skysort_run(root: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["skysort", "run"], cwd=root, env=tool_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, (
        f"skysort run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def _stale(root: Path) -> dict:
    out = dvc("status", "--json", cwd=root).stdout.strip()
    return json.loads(out) if out else {}


def _ran(repro: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", repro.stdout))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _assert_nothing_to_do(root: Path) -> None:
    assert _stale(root) == {}
    assert _ran(dvc("repro", cwd=root)) == set()


# ---------------------------------------------------------------- (a) SDSS17, tabular only


@pytest.mark.skipif(not SHARED_SDSS17.is_file(), reason="the shared SDSS17 sample is absent")
def test_sdss17_tabular_run_then_an_edited_row_reruns_what_reads_it(tmp_path, prefect_server):
    root = make_project(tmp_path / "proj")
    csv = root / "data/external/sdss17.csv"
    csv.write_bytes(shared_sdss17_head(300))  # a copy: the project never reads ../shared
    # learns in seconds: 300 rows need smaller batches and a steady rate, not the recipe's
    tiny = {"train": {"epochs": 15, "learning_rate": 0.01, "patience": 5, "batch_size": 64,
                      "lr_schedule": "constant"}}  # fmt: skip
    _configure(root, SDSS17_PARAMS, tiny, ["data/external/sdss17.csv"])

    run = _skysort_run(root)
    assert "scientific notation" in run.stdout + run.stderr  # the mangled ids were named
    catalog = pd.read_parquet(root / "data/raw/catalog.parquet")
    assert catalog["objid"].tolist() == list(range(1, 301))  # row ids, as allowed
    assert read_json(root / "reports/clean.json")["kept_rows"] == 300
    assert np.load(root / "data/interim/images.npy", mmap_mode="r").shape == (300, 0, 0, 3)
    metrics = read_json(root / "reports/metrics.json")
    assert metrics["model"] == "tabular" and set(metrics["per_class"]) == {"GALAXY", "QSO", "STAR"}
    assert metrics["accuracy"] > 0.7  # 300 rows with the redshift; GALAXY alone is ~0.58
    baselines = read_json(root / "reports/baselines.json")["models"]
    assert baselines["gboost"]["accuracy"] > 0.85
    _assert_nothing_to_do(root)

    # one row edited (line 10: its u magnitude), then versioned as the README says
    lines = csv.read_bytes().split(b"\r\n")
    cells = lines[9].split(b",")
    u = float(cells[3]) + 0.5
    cells[3] = b"%.5f" % u
    lines[9] = b",".join(cells)
    csv.write_bytes(b"\r\n".join(lines))
    dvc("add", "data/external/sdss17.csv", cwd=root)
    stale = _stale(root)
    assert "query" in stale and "data/external/sdss17.csv" in json.dumps(stale["query"])
    ran = _ran(dvc("repro", cwd=root))
    # balance reads only labels.parquet, which a magnitude does not change: DVC skips it
    assert ran == set(STAGES) - {"balance"}, ran
    catalog = pd.read_parquet(root / "data/raw/catalog.parquet")
    assert catalog.loc[catalog["objid"] == 9, "u"].item() == pytest.approx(u)
    _assert_nothing_to_do(root)


# ---------------------------------------------------------------- (b) images + multi-label CSV


def test_multilabel_image_folder_run_then_an_edited_image_reruns_what_reads_it(
    tmp_path, prefect_server
):
    root = make_project(tmp_path / "proj")
    external = root / "data/external"
    truth = write_multilabel_folder(external / "images", external / "labels.csv", n=60)
    tiny = {"data": {"image_size": 64}, "train": {"epochs": 2}}
    tracked = ["data/external/labels.csv", "data/external/images"]
    _configure(root, MULTILABEL_IMAGES_PARAMS, tiny, tracked)

    _skysort_run(root)
    clean = read_json(root / "reports/clean.json")
    assert clean["dropped_by_reason"] == {"missing_image": 3} and clean["kept_rows"] == 57
    for row in clean["dropped"]:  # the origin system's "3 missing files", each named
        assert row["reason"] == "missing_image"
        assert f"data/external/images/{row['objid']}.jpg" in row["detail"]
    assert np.load(root / "data/interim/images.npy", mmap_mode="r").shape == (57, 64, 64, 3)
    dataset = pd.read_parquet(root / "data/interim/dataset.parquet").set_index("objid")
    labels = list(MORPHOLOGY_LABELS)
    pd.testing.assert_frame_equal(  # labels as written, NaN kept as unknown
        dataset[labels], truth.loc[dataset.index, labels], check_names=False
    )
    metrics = read_json(root / "reports/metrics.json")
    assert metrics["task"] == "multilabel" and list(metrics["per_label"]) == labels
    for name, scores in metrics["per_label"].items():
        assert {"tp", "fp", "tn", "fn", "roc_auc", "pr_auc", "threshold"} <= set(scores), name
    assert list(read_json(root / "models/thresholds.json")["thresholds"]) == labels
    impute = read_json(root / "reports/impute.json")  # self-trained on the images' morphology
    assert set(impute["per_label"]) == set(labels) and impute["filled"] > 0
    assert read_json(root / "reports/baselines.json")["models"] == {}  # no tabular feature
    _assert_nothing_to_do(root)

    # one image edited: the cutouts and what reads the images rerun, never the query
    labels_before = _md5(root / "data/processed/labels.parquet")
    with Image.open(external / "images/7000.jpg") as image:
        image.transpose(Image.Transpose.ROTATE_180).save(external / "images/7000.jpg")
    dvc("add", "data/external/images", cwd=root)
    stale = _stale(root)
    # predict reads the images folder too (your objects' images are found there)
    assert set(stale) == {"cutouts", "predict"} and "data/external/images" in json.dumps(stale)
    ran = _ran(dvc("repro", cwd=root))
    # balance and baselines read no image: they rerun only if the imputed labels moved
    moved = _md5(root / "data/processed/labels.parquet") != labels_before
    expected = {"cutouts", "clean", "impute", "train", "evaluate", "predict"}
    assert ran == (expected | {"balance", "baselines"} if moved else expected), ran
    _assert_nothing_to_do(root)

    # one row edited (a label of id 7005): only the query is stale
    csv = external / "labels.csv"
    lines = csv.read_text().split("\n")
    assert lines[6].startswith("7005,")
    cells = lines[6].split(",")
    cells[-1] = "1" if cells[-1] != "1" else "0"
    lines[6] = ",".join(cells)
    csv.write_text("\n".join(lines))
    dvc("add", "data/external/labels.csv", cwd=root)
    stale = _stale(root)
    # predict's objects default to the same folder (paths.predict_objects): it is stale too
    assert set(stale) == {"query", "predict"} and "data/external/labels.csv" in json.dumps(stale)
