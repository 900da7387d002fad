"""Multi-label scores that stay defined: a score that cannot be computed is null with a reason.

A label with no positive, no negative or no known value in a split; a label the net
never saw positive in training (its threshold keeps the default, and says so); a label
a baseline cannot fit. Never NaN in a report, never a crash.
"""

import json

import numpy as np
import pandas as pd
import pytest

from skysort.config import Baselines, Data, Train
from skysort.data.atomic import write_parquet
from skysort.evaluation.metrics import (
    DEFAULT_THRESHOLD,
    binary_scores,
    multilabel_scores,
    one_outcome,
)
from skysort.targets.multilabel import Multilabel

NAN = np.nan
LABELS = ("a", "b", "c")
DATA = Data(labels=LABELS)


def strict_json(obj):
    """``obj`` through JSON the way a strict reader sees it: NaN or Infinity fail."""

    def refuse(constant):
        raise AssertionError(f"{constant} in a report")

    return json.loads(json.dumps(obj, allow_nan=True), parse_constant=refuse)


# ----------------------------------------------------------------------------- one label


def test_a_label_with_no_positive_has_no_recall_or_auc_and_says_why():
    s = binary_scores(np.array([0, 0, NAN, 0]), np.array([0.2, 0.7, 0.9, 0.1]))
    assert (s["tp"], s["fp"], s["tn"], s["fn"]) == (0, 1, 2, 0)
    assert s["recall"] is None and s["roc_auc"] is None and s["pr_auc"] is None
    assert s["gmean"] is None
    assert s["undefined"]["recall"] == "no positive among 3 known values"
    assert s["undefined"]["roc_auc"] == "no positive among 3 known values"
    # what is defined stays a number: the false alarm makes F1 0, specificity 2/3
    assert s["f1"] == 0.0 and s["specificity"] == pytest.approx(2 / 3)
    assert s["precision"] == 0.0 and s["accuracy"] == pytest.approx(2 / 3)
    strict_json(s)


def test_a_label_with_no_negative_has_no_specificity_and_says_why():
    s = binary_scores(np.array([1, 1, 1]), np.array([0.9, 0.4, 0.8]))
    assert s["specificity"] is None and s["roc_auc"] is None and s["gmean"] is None
    assert s["undefined"]["specificity"] == "no negative among 3 known values"
    assert s["recall"] == pytest.approx(2 / 3) and s["precision"] == 1.0
    assert "recall" not in s["undefined"]


def test_nothing_predicted_positive_leaves_precision_undefined_not_zero():
    s = binary_scores(np.array([1, 0, 1, 0]), np.array([0.3, 0.1, 0.4, 0.2]), threshold=0.5)
    assert s["precision"] is None
    assert s["undefined"] == {"precision": "nothing predicted positive at 0.5"}
    assert s["recall"] == 0.0 and s["f1"] == 0.0 and s["roc_auc"] == 1.0


def test_a_label_with_no_known_value_is_all_null_and_every_score_says_why():
    s = binary_scores(np.array([NAN, NAN]), np.array([0.3, 0.9]))
    assert s["n"] == 0
    for key in ("precision", "recall", "specificity", "f1", "accuracy", "gmean", "roc_auc"):
        assert s[key] is None, key
        assert s["undefined"][key], key
    assert s["undefined"]["accuracy"] == "no known value"


def test_a_defined_label_carries_no_undefined_entry():
    s = binary_scores(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.6, 0.7]))
    assert "undefined" not in s and s["roc_auc"] == 0.75


def test_one_outcome_names_the_split():
    assert (
        one_outcome(np.array([0.0, NAN, 0.0]), "val") == "no positive among 2 known values in val"
    )
    assert one_outcome(np.array([1.0]), "train") == "no negative among 1 known value in train"
    assert one_outcome(np.array([NAN]), "test") == "no known value in test"
    assert one_outcome(np.array([1.0, 0.0])) is None


# ----------------------------------------------------------------------------- several labels


def test_macro_means_average_the_defined_labels_and_name_them():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, NAN, 0], [0, 1, NAN]])
    p = np.array([[0.8, 0.1, 0.6], [0.3, 0.7, 0.2], [0.6, 0.9, 0.1], [0.2, 0.6, 0.9]])
    s = multilabel_scores(y, p, LABELS)
    assert s["macro_labels"] == ["a", "b"] and s["macro_left_out"] == {"c": "one outcome only"}
    assert s["per_label"]["c"]["undefined"]["roc_auc"] == "no positive among 3 known values"
    aucs = [s["per_label"][n]["roc_auc"] for n in ("a", "b")]
    assert s["roc_auc_macro"] == pytest.approx(np.mean(aucs))
    # F1 averages the same labels: c's 0 (a false alarm, no positive) does not pull it down
    assert s["f1_macro"] == pytest.approx(np.mean([s["per_label"][n]["f1"] for n in ("a", "b")]))
    assert s["per_label"]["c"]["f1"] == 0.0 and "undefined" not in s
    strict_json(s)


def test_nothing_known_gives_nulls_with_reasons_not_a_crash():
    y = np.full((3, 3), NAN)
    s = multilabel_scores(y, np.full((3, 3), 0.5), LABELS)
    assert s["n"] == 0 and s["macro_labels"] == []
    for key in ("hamming_loss", "jaccard", "subset_accuracy", "roc_auc_micro", "roc_auc_macro",
                "pr_auc_macro", "f1_macro"):  # fmt: skip
        assert s[key] is None, key
        assert s["undefined"][key], key
    assert s["macro_left_out"] == dict.fromkeys(LABELS, "no known value")
    strict_json(s)


def test_one_outcome_everywhere_has_no_micro_auc_but_a_hamming_loss():
    y = np.array([[0, 0, 0], [0, 0, NAN]])
    s = multilabel_scores(y, np.array([[0.1, 0.6, 0.2], [0.3, 0.2, 0.9]]), LABELS)
    assert s["roc_auc_micro"] is None and s["roc_auc_macro"] is None
    assert s["undefined"]["roc_auc_micro"] == "no positive among 5 known values"
    assert s["undefined"]["roc_auc_macro"] == "no label has both outcomes"
    assert s["hamming_loss"] == pytest.approx(1 / 5)


def test_a_nan_probability_for_a_known_label_is_named_not_scored():
    y = np.array([[1, 0, NAN], [0, 1, 1]])
    p = np.array([[0.9, NAN, NAN], [0.1, 0.8, 0.7]])  # c's NaN sits on an unknown label: fine
    with pytest.raises(ValueError, match=r"NaN probabilities for 1 known labels of \['b'\]"):
        multilabel_scores(y, p, LABELS)


# ----------------------------------------------------------------------------- thresholds


def _val():
    val_y = np.array([[1, 0, 0], [0, 1, 0], [1, 0, NAN], [0, 1, 0], [1, 1, 0]], dtype=float)
    val_p = np.array([[0.7, 0.2, 0.3], [0.2, 0.9, 0.1], [0.8, 0.1, 0.5], [0.1, 0.6, 0.4],
                      [0.6, 0.7, 0.2]])  # fmt: skip
    return val_y, val_p


def test_a_label_with_one_outcome_on_val_keeps_the_default_threshold_and_says_so():
    val_y, val_p = _val()
    decided = Multilabel().decisions(val_y, val_p, DATA, Train())
    assert decided["thresholds"]["c"] == DEFAULT_THRESHOLD
    assert decided["untuned"] == {
        "c": f"no positive among 4 known values in val: kept the default {DEFAULT_THRESHOLD}"
    }
    assert decided["thresholds"]["a"] != DEFAULT_THRESHOLD  # a and b are tuned
    strict_json(decided)


def test_a_label_never_positive_in_training_is_not_tuned_even_where_val_could():
    val_y, val_p = _val()
    train_y = np.array([[1, 0, 0], [0, 1, NAN], [1, 1, 0], [0, 0, 0]], dtype=float)
    without = Multilabel().decisions(val_y, val_p, DATA, Train(), train_y=train_y)
    # c has no positive in train nor in val: training, where the net learned, is the reason
    assert without["thresholds"]["b"] != DEFAULT_THRESHOLD and without["untuned"] == {
        "c": f"no positive among 3 known values in train: kept the default {DEFAULT_THRESHOLD}"
    }
    train_y[:, 1] = 0  # now b was never positive in training
    decided = Multilabel().decisions(val_y, val_p, DATA, Train(), train_y=train_y)
    assert decided["thresholds"]["b"] == DEFAULT_THRESHOLD
    assert decided["untuned"]["b"].startswith("no positive among 4 known values in train")
    assert decided["thresholds"]["a"] == without["thresholds"]["a"]


def test_untuned_thresholds_reach_the_metrics_and_their_summary():
    val_y, val_p = _val()
    target = Multilabel()
    decided = target.decisions(val_y, val_p, DATA, Train())
    test_y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, NAN]], dtype=float)
    test_p = np.array([[0.9, 0.2, 0.1], [0.2, 0.8, 0.3], [0.7, 0.7, 0.9]])
    scored = target.score(np.arange(3), test_y, test_p, DATA, decided)
    metrics = strict_json(scored.metrics)
    assert metrics["thresholds_untuned"] == decided["untuned"]
    assert metrics["per_label"]["c"]["recall"] is None
    text, _ = target.metrics_summary(metrics)
    assert "c: threshold not tuned (no positive among 4 known values in val" in text
    assert "c: recall undefined (no positive among 2 known values)" in text
    # a thresholds file saved before this change has no "untuned": nothing to report
    old = {k: v for k, v in decided.items() if k != "untuned"}
    assert target.score(np.arange(3), test_y, test_p, DATA, old).metrics["thresholds_untuned"] == {}


# ----------------------------------------------------------------------------- baselines, balance


def _labels_table(n=150, seed=0):
    """A dataset and labels with ``a`` learnable, ``b`` noise, ``c`` never positive in train."""
    from tests.factories import make_catalog

    rng = np.random.default_rng(seed)
    df = make_catalog(n, seed)
    df["split"] = np.array(["train", "train", "val", "test"] * n)[:n]
    df["row"] = np.arange(n, dtype=np.int64)
    ug = (df["u"] - df["g"]).to_numpy()
    values = {
        "a": (ug > np.median(ug)).astype(float),
        "b": (rng.random(n) < 0.4).astype(float),
        "c": np.where(df["split"] == "train", 0.0, (rng.random(n) < 0.3).astype(float)),
    }
    labels = df[["objid", "row", "split"]].copy()
    for name, v in values.items():
        labels[name] = v
        labels[f"{name}_source"] = pd.array(["observed"] * n, dtype="string")
        labels[f"{name}_confidence"] = 1.0
    return df, labels


def test_a_baseline_does_not_fit_or_score_a_label_never_positive_in_train(tmp_path):
    from skysort.stages.baselines import fit_baselines

    df, labels = _labels_table()
    write_parquet(tmp_path / "dataset.parquet", df)
    write_parquet(tmp_path / "labels.parquet", labels)
    report = fit_baselines(
        dataset=tmp_path / "dataset.parquet",
        labels=tmp_path / "labels.parquet",
        baselines_report=tmp_path / "baselines.json",
        data=DATA,
        baselines=Baselines(models=("logreg", "lightgbm")),
        seed=0,
        task="multilabel",
    )
    strict_json(json.loads((tmp_path / "baselines.json").read_text()))
    n_test_c = int(((labels["split"] == "test") & (labels["c"] == 1)).sum())
    for name, scores in report["models"].items():
        c = scores["per_label"]["c"]
        assert c["roc_auc"] is None and c["f1"] is None and c["tp"] is None, name
        assert c["undefined"]["roc_auc"] == "not fitted: no positive among 76 known values in train"
        assert c["positives"] == n_test_c > 0  # the test split has c positives; nothing scored them
        assert scores["macro_labels"] == ["a", "b"], name
        assert scores["macro_left_out"]["c"].startswith("not fitted")
        assert scores["per_label"]["a"]["roc_auc"] > 0.8, name  # a follows u-g


def test_balance_reports_a_label_never_positive_in_train(tmp_path):
    from skysort.config import Balance, Impute

    _, labels = _labels_table()
    _, report = Multilabel().balance(labels, DATA, Balance(method="none"), Impute(), seed=0)
    assert report["one_outcome_in_train"] == {
        "c": "no positive among 76 known values in the train rows"
    }
    labels["c"] = 1.0 - labels["a"]
    _, report = Multilabel().balance(labels, DATA, Balance(method="none"), Impute(), seed=0)
    assert "one_outcome_in_train" not in report


def test_the_compare_table_shows_an_undefined_score_as_a_dash():
    from skysort.pipeline.compare import baseline_rows, format_table

    y = np.full((2, 3), NAN)
    metrics = multilabel_scores(y, np.full((2, 3), 0.5), LABELS)
    rows = baseline_rows({"models": {"lightgbm": {**metrics, "fit_seconds": 0.1}}})
    line = format_table(rows, LABELS).splitlines()[2].split()
    assert line[0] == "baseline-lightgbm" and line[4:6] == ["-", "-"]


# ----------------------------------------------------------------------------- through the stages


@pytest.mark.slow  # trains a Keras model (one epoch, tabular)
def test_a_label_never_positive_goes_through_train_and_evaluate_as_nulls(tmp_path):
    from skysort.config import Evaluate, Impute
    from skysort.stages.evaluate import evaluate_model
    from skysort.stages.train import train_model
    from tests.factories import ML_LABELS, make_multilabel_catalog, prepare_multilabel_inputs

    root = prepare_multilabel_inputs(
        tmp_path, make_multilabel_catalog(150), Impute(n_estimators=10, max_iter=2)
    )
    labels = pd.read_parquet(root / "labels.parquet")
    labels["c"] = labels["c"].where(labels["c"].isna(), 0.0)  # c: never positive anywhere
    write_parquet(root / "labels.parquet", labels)
    data = Data(image_size=64, labels=ML_LABELS, label_classes=("GALAXY", "QSO", "STAR"))
    train = Train(model="tabular", epochs=1, batch_size=32, dense_units=(8,))
    out = tmp_path / "out"
    common = dict(dataset=root / "dataset.parquet", images=root / "images.npy",
                  labels=root / "labels.parquet", data=data, train=train, task="multilabel",
                  seed=0)  # fmt: skip
    train_model(train_index=root / "index.npy", model=out / "model.keras",
                dvclive=out / "dvclive", train_report=out / "train.json",
                thresholds=out / "thresholds.json", contract=out / "contract.json",
                **common)  # fmt: skip
    evaluate_model(model=out / "model.keras", train_report=out / "train.json",
                   thresholds=out / "thresholds.json", metrics=out / "metrics.json",
                   plots=out / "plots", predictions=out / "predictions.parquet",
                   evaluate=Evaluate(), **common)  # fmt: skip
    metrics = strict_json(json.loads((out / "metrics.json").read_text()))
    assert metrics["thresholds"]["c"] == DEFAULT_THRESHOLD
    assert "no positive among" in metrics["thresholds_untuned"]["c"]
    c = metrics["per_label"]["c"]
    assert c["recall"] is None and c["roc_auc"] is None
    assert c["undefined"]["roc_auc"].startswith("no positive among")
    assert metrics["macro_labels"] == ["a", "b"] and "c" in metrics["macro_left_out"]
    assert isinstance(metrics["roc_auc_macro"], float)
    assert (out / "plots" / "confusion.png").stat().st_size > 0
