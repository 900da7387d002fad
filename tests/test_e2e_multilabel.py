"""The whole DAG with ``task: multilabel`` on a tiny simulated survey, by ``dvc repro``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from skysort.data.atomic import read_json
from tests.project import dvc, git, make_project, skysort_in
from tests.test_predict import assert_predict_reproduces_evaluate

pytestmark = pytest.mark.slow

STAGES = ("query", "cutouts", "clean", "impute", "balance", "baselines", "train", "evaluate")
LABELS = ["gz_elliptical", "gz_spiral", "gz_edge_on", "gz_merger"]


def test_multilabel_dag_by_dvc_repro_writes_per_label_metrics_then_is_a_noop(
    tmp_path, prefect_server
):
    root = make_project(tmp_path / "proj", {"query": {"n_objects": 400}})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["task"] = "multilabel"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git("commit", "-qam", "multilabel", cwd=root)

    first = dvc("repro", cwd=root)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout

    metrics = read_json(root / "reports/metrics.json")
    saved = read_json(root / "models/thresholds.json")
    assert metrics["task"] == "multilabel" and list(metrics["per_label"]) == LABELS
    assert metrics["thresholds"] == saved["thresholds"]  # the thresholds saved with the model
    for key in ("hamming_loss", "jaccard", "subset_accuracy", "roc_auc_micro", "roc_auc_macro"):
        assert metrics[key] is not None
    assert metrics["roc_auc_macro"] > 0.5
    for name in ("pr.png", "roc.png", "confusion.png", "training.png", "gallery.png"):
        assert (root / "reports/plots" / name).stat().st_size > 0
    # imputed labels train, never judge; the test split never trains
    labels = pd.read_parquet(root / "data/processed/labels.parquet")
    test_rows = set(labels.loc[labels["split"] == "test", "row"])
    assert not test_rows & set(np.load(root / "data/processed/train_index.npy").tolist())
    for name in LABELS:
        assert set(labels.loc[labels[f"{name}_source"] == "imputed", "split"]) <= {"train"}
    impute = read_json(root / "reports/impute.json")
    assert set(impute["per_label"]) == set(LABELS)
    balance = read_json(root / "reports/balance.json")
    assert balance["after"]["gz_merger"] > balance["before"]["gz_merger"]

    second = dvc("repro", cwd=root)
    assert "Running stage" not in second.stdout
    # predict on the test split's own objects gives evaluate's probabilities and decisions
    assert_predict_reproduces_evaluate(root, skysort_in(root))
