"""The multi-label task: several binary labels per object (``data.labels``), NaN where unknown.

Sigmoid outputs and a masked loss; split by iterative stratification over the labels;
unknown labels filled per label by self-training (``impute.missing_labels: impute``),
or masked, or their rows dropped; ML-ROS oversampling; each label decided at a
threshold tuned on the validation split; ROC-AUC leads the scores. Only galaxies
(``data.label_classes``) carry morphology labels: rows of other known classes go.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from skysort.data.labels import LABEL_SOURCES, label_matrix, observed_matrix, tabular_matrix
from skysort.data.selftrain import at_most, self_trainer
from skysort.data.splits import assign_multilabel_splits
from skysort.evaluation.metrics import (
    binary_scores,
    multilabel_scores,
    not_fitted,
    one_outcome_labels,
)
from skysort.pipeline.stage import Artifact, Table, fmt
from skysort.targets.base import NothingToScore, Report, Scored, Target, gather

if TYPE_CHECKING:
    from skysort.config import Balance, Baselines, Clean, Data, Impute, Source, Train

log = logging.getLogger(__name__)

_CONFUSION = ("tp", "fp", "tn", "fn", "precision", "recall")
_HOLDOUT_KEYS = (*_CONFUSION, "roc_auc", "pr_auc", "accuracy")


class Multilabel(Target):
    name = "multilabel"
    activation = "sigmoid"
    min_outputs = 1
    auto_monitor = "val_auc"
    best_by = "roc_auc_macro"
    galaxy_zoo = True
    needs_val_proba = True

    def outputs(self, data: Data) -> tuple[str, ...]:
        return tuple(data.labels)

    def file_label_columns(self, source: Source, data: Data) -> tuple[str, ...]:
        return tuple(data.labels)  # the task's targets are data.labels, whatever the source

    # -- clean -------------------------------------------------------------------------

    def drop_reasons(self, catalog: pd.DataFrame, data: Data, reasons: pd.Series) -> pd.Series:
        """Rows of a known class outside ``data.label_classes``: their labels describe nothing."""
        label_matrix(catalog, data.labels)  # the label columns must be there
        cls = catalog["class"].astype("object")
        other = cls.notna() & ~cls.isin(data.label_classes)
        reasons[other.to_numpy() & reasons.isna().to_numpy()] = "not_a_label_class"
        return reasons

    def split(self, kept: pd.DataFrame, data: Data, clean: Clean, seed: int) -> np.ndarray:
        y = label_matrix(kept, data.labels)
        return assign_multilabel_splits(y, clean.test_fraction, clean.val_fraction, seed)

    def split_counts(self, kept: pd.DataFrame, data: Data, splits: tuple[str, ...]) -> Report:
        y = label_matrix(kept, data.labels)
        counts = {}
        for s in splits:
            part = y[(kept["split"] == s).to_numpy()]
            counts[s] = {
                name: {"positive": int(np.nansum(part[:, k] == 1)),
                       "known": int((~np.isnan(part[:, k])).sum())}
                for k, name in enumerate(data.labels)
            }  # fmt: skip
        return {"label_counts_by_split": counts}

    # -- impute ------------------------------------------------------------------------

    def impute(
        self, dataset: pd.DataFrame, images: Path, data: Data, impute: Impute, seed: int
    ) -> tuple[pd.DataFrame, Report]:
        """Per label: self-train on the known train rows, fill the confident unknown ones."""
        y = label_matrix(dataset, data.labels)
        is_train = (dataset["split"] == "train").to_numpy()
        filling = impute.enabled and impute.missing_labels == "impute"
        X, seen = (None, "not used: nothing is imputed")
        if filling:
            X, seen = _imputer_features(dataset, images, data, impute)
        table = dataset[["objid", "row", "split"]].copy()
        report: Report = {
            "task": self.name,
            "enabled": filling,
            "missing_labels": impute.missing_labels,
            "rows": len(dataset),
            "image_features": seen,
            "per_label": {},
        }
        for k, name in enumerate(data.labels):
            values = y[:, k].copy()
            known = ~np.isnan(values)
            source = np.where(known, "observed", "unknown").astype(object)
            confidence = np.where(known, 1.0, np.nan)
            missing_train = is_train & ~known
            entry: Report = {
                "known_train": int((is_train & known).sum()),
                "missing_train": int(missing_train.sum()),
                "confidence": impute.confidence_for(name),
                "filled": 0,
            }
            if filling and missing_train.any() and len(np.unique(values[is_train & known])) == 2:
                assert X is not None
                entry["holdout"] = _binary_holdout(
                    X[is_train], values[is_train], name, impute, seed
                )
                model = _self_trainer(impute, name, seed).fit(
                    X[is_train],
                    np.where(np.isnan(values[is_train]), -1, values[is_train]).astype(int),
                )
                idx = np.flatnonzero(missing_train)
                proba = model.predict_proba(X[idx])[:, list(model.classes_).index(1)]
                conf = np.maximum(proba, 1 - proba)
                accepted = conf >= impute.confidence_for(name)
                values[idx[accepted]] = (proba[accepted] >= 0.5).astype(float)
                source[idx[accepted]] = "imputed"
                confidence[idx] = conf
                entry["filled"] = int(accepted.sum())
                entry["filled_positive"] = int((proba[accepted] >= 0.5).sum())
            entry["left_unknown_train"] = int((is_train & np.isnan(values)).sum())
            entry["source_counts"] = {s: int((source == s).sum()) for s in LABEL_SOURCES}
            report["per_label"][name] = entry
            table[name] = values
            table[f"{name}_source"] = pd.array(source, dtype="string")
            table[f"{name}_confidence"] = confidence
        report["filled"] = int(sum(e["filled"] for e in report["per_label"].values()))
        log.info("impute (multilabel): filled %s",
                 {n: e["filled"] for n, e in report["per_label"].items()})  # fmt: skip
        return table.reset_index(drop=True), report

    def describe_impute(self, impute: Impute) -> str:
        if impute.missing_labels != "impute":
            return f"impute: off ({impute.missing_labels} missing labels)"
        return "impute: self-training" if impute.enabled else "impute: off"

    # -- balance -----------------------------------------------------------------------

    def balance(
        self, labels: pd.DataFrame, data: Data, balance: Balance, impute: Impute, seed: int
    ) -> tuple[np.ndarray, Report]:
        """ML-ROS over the train rows that can train: any known label, or all (``drop``)."""
        from skysort.data.mlros import imbalance_ratios, ml_ros, positive_counts

        names, missing_labels = data.labels, impute.missing_labels
        y = label_matrix(labels, names)
        known = ~np.isnan(y)
        usable = known.all(axis=1) if missing_labels == "drop" else known.any(axis=1)
        train = (labels["split"] == "train").to_numpy() & usable
        if not train.any():
            raise NothingToScore("the train split has no labelled rows to balance")
        rows = labels["row"].to_numpy(dtype=np.int64)[train]
        y_train = y[train]
        rng = np.random.default_rng(seed)
        if balance.method in ("random_over", "ml_ros"):
            picked = ml_ros(y_train, balance.ml_ros_percent, rng)
        else:
            picked = np.arange(len(rows))
        index = rng.permutation(rows[picked]).astype(np.int64)
        before, after = positive_counts(y_train), positive_counts(y_train[picked])

        def ratios(counts: np.ndarray) -> dict[str, float | None]:
            return {n: None if np.isnan(r) else round(float(r), 4)
                    for n, r in zip(names, imbalance_ratios(counts))}  # fmt: skip

        report = {
            "task": self.name,
            "method": "ml_ros" if balance.method != "none" else "none",
            "ml_ros_percent": balance.ml_ros_percent,
            "missing_labels": missing_labels,
            "before": {n: int(c) for n, c in zip(names, before)},
            "after": {n: int(c) for n, c in zip(names, after)},
            "imbalance_ratio_before": ratios(before),
            "imbalance_ratio_after": ratios(after),
            "rows_before": len(rows),
            "rows_after": len(index),
            "train_rows_dropped_for_missing_labels": int(
                ((labels["split"] == "train").to_numpy() & ~usable).sum()
            ),
        }
        if one_outcome := one_outcome_labels(y_train, names, "the train rows"):
            report["one_outcome_in_train"] = one_outcome
            log.warning("balance: labels the net cannot learn: %s", one_outcome)
        log.info("balance (ML-ROS): positives %s -> %s", report["before"], report["after"])
        return index, report

    def describe_balance(self, balance: Balance) -> str:
        return f"balance: {balance.method}" + (" (ML-ROS)" if balance.method != "none" else "")

    # -- baselines ---------------------------------------------------------------------

    def baselines(
        self, X: np.ndarray, labels: pd.DataFrame, data: Data, baselines: Baselines, seed: int
    ) -> Report:
        """Per label and model: fit on the known train labels, score observed test labels at 0.5."""
        from skysort.model.classical import make_baseline, one_openmp_thread

        y_train = label_matrix(labels, data.labels)
        y_test = observed_matrix(labels, data.labels)
        is_train = (labels["split"] == "train").to_numpy()
        test = (labels["split"] == "test").to_numpy() & ~np.isnan(y_test).all(axis=1)
        if not test.any():
            raise NothingToScore("the test split has no observed labels to score on")
        # a label with one outcome in train has nothing to learn: not fitted, not scored
        unfit = one_outcome_labels(y_train[is_train], data.labels, "train")
        y_scored = y_test[test].copy()
        y_scored[:, [data.labels.index(n) for n in unfit]] = np.nan
        models: Report = {}
        with one_openmp_thread():
            for name in baselines.models:
                started = time.perf_counter()
                proba = np.full(y_scored.shape, np.nan)
                for k, label in enumerate(data.labels):
                    if label in unfit:
                        continue
                    rows = is_train & ~np.isnan(y_train[:, k])
                    model = make_baseline(name, seed).fit(X[rows], y_train[rows, k].astype(int))
                    proba[:, k] = model.predict_proba(X[test])[:, 1]
                scores = not_fitted(multilabel_scores(y_scored, proba, data.labels),
                                     y_test[test], data.labels, unfit)  # fmt: skip
                scores["fit_seconds"] = round(time.perf_counter() - started, 4)
                models[name] = scores
                log.info("baseline %-8s test macro ROC-AUC %s", name, fmt(scores["roc_auc_macro"]))
        return {"train_rows": int(is_train.sum()), "test_rows": int(test.sum()), "models": models}

    # -- the net -----------------------------------------------------------------------

    def y(self, labels: pd.DataFrame, data: Data) -> np.ndarray:
        """Imputed labels may train; outside the train split only observed labels exist."""
        y = label_matrix(labels, data.labels)
        judged = (labels["split"] != "train").to_numpy()
        y[judged] = observed_matrix(labels, data.labels)[judged]
        return y

    def scored_rows(self, labels: pd.DataFrame, y: np.ndarray, split: str) -> np.ndarray:
        """Rows of ``split`` with at least one observed label."""
        in_split = (labels["split"] == split).to_numpy()
        return np.flatnonzero(in_split & ~np.isnan(y).all(axis=1))

    def loss_and_metrics(self, data: Data, train: Train) -> tuple[Any, list[Any]]:
        """The masked loss; masked binary accuracy and (micro) AUC as ``accuracy`` and ``auc``."""
        from skysort.model.losses import MaskedAUC, MaskedBinaryAccuracy, make_multilabel_loss

        loss = make_multilabel_loss(train)
        return loss, [MaskedBinaryAccuracy(name="accuracy"), MaskedAUC(name="auc")]

    def decisions(
        self, val_y: np.ndarray, val_proba: np.ndarray | None, data: Data, train: Train,
        train_y: np.ndarray | None = None,
    ) -> Report:  # fmt: skip
        """Per label, the threshold maximising ``train.threshold_objective`` on observed val.

        A label with one outcome only among its known train (never seen positive, or
        negative) or val values keeps the default threshold; ``untuned`` says why.
        """
        from skysort.evaluation.metrics import DEFAULT_THRESHOLD, tune_threshold

        assert val_proba is not None
        untuned = one_outcome_labels(val_y, data.labels, "val")
        if train_y is not None:
            untuned |= one_outcome_labels(train_y, data.labels, "train")
        tuned = {
            name: DEFAULT_THRESHOLD if name in untuned
            else tune_threshold(val_y[:, k], val_proba[:, k], train.threshold_objective)
            for k, name in enumerate(data.labels)
        }  # fmt: skip
        untuned = {n: f"{why}: kept the default {DEFAULT_THRESHOLD}" for n, why in untuned.items()}
        log.info("thresholds tuned on val (%s): %s", train.threshold_objective, tuned)
        if untuned:
            log.warning("thresholds not tuned: %s", untuned)
        return {
            "task": self.name,
            "labels": list(data.labels),
            "objective": train.threshold_objective,
            "thresholds": tuned,
            "untuned": untuned,
        }

    def load_decisions(self, path: Path, data: Data) -> Report:
        """The saved thresholds; they must be this task's, for ``data.labels``."""
        from skysort.data.atomic import read_json

        saved = read_json(path)
        if saved.get("task") != self.name or list(saved.get("labels", [])) != list(data.labels):
            raise ValueError(
                f"{path} holds thresholds for {saved.get('labels') or saved.get('task')}, not "
                f"for data.labels {list(data.labels)}: rerun the train stage"
            )
        return {**saved, "thresholds": {n: float(saved["thresholds"][n]) for n in data.labels}}

    # -- evaluate ----------------------------------------------------------------------

    def score(
        self, objid: np.ndarray, y: np.ndarray, proba: np.ndarray, data: Data, decisions: Report
    ) -> Scored:
        thresholds = decisions["thresholds"]
        scores = multilabel_scores(y, proba, data.labels, thresholds)
        pred = proba >= np.array([thresholds[n] for n in data.labels])
        columns: dict[str, Any] = {"objid": objid}
        for k, name in enumerate(data.labels):
            columns[name] = y[:, k]
            columns[f"p_{name}"] = proba[:, k]
            columns[f"pred_{name}"] = pred[:, k].astype(np.int8)
        explain = []
        for i in range(len(y)):
            # each positive label; the most probable one where none is positive
            positive = np.flatnonzero(pred[i]).tolist() or [int(proba[i].argmax())]
            explain.append([(k, f"{data.labels[k]} (p={proba[i, k]:.2f})") for k in positive])
        log.info("evaluate: macro ROC-AUC %s, Hamming loss %s on %d objects",
                 fmt(scores["roc_auc_macro"]), fmt(scores["hamming_loss"]), len(y))  # fmt: skip
        untuned = {"thresholds_untuned": decisions.get("untuned") or {}}
        return Scored({"thresholds": thresholds, **untuned, **scores}, pd.DataFrame(columns),
                      explain)  # fmt: skip

    def write_plots(
        self, folder: Path, scored: Scored, y: np.ndarray, proba: np.ndarray,
        images: np.ndarray, rows: np.ndarray, data: Data,
    ) -> None:  # fmt: skip
        from skysort.evaluation import plots

        pred = scored.predictions[[f"pred_{n}" for n in data.labels]].to_numpy().astype(bool)
        pairs = []
        for k, name in enumerate(data.labels):
            known = ~np.isnan(y[:, k])
            pairs += [{"observed": f"{name}={int(a)}", "predicted": f"{name}={int(b)}"}
                     for a, b in zip(y[known, k], pred[known, k])]  # fmt: skip
        pd.DataFrame(pairs, columns=["observed", "predicted"]).to_csv(
            folder / "confusion.csv", index=False
        )
        known = {n: ~np.isnan(y[:, k]) for k, n in enumerate(data.labels)}
        truth = {n: y[known[n], k] == 1 for k, n in enumerate(data.labels)}
        scores = {n: proba[known[n], k] for k, n in enumerate(data.labels)}
        plots.roc_csv(truth, scores, folder / "roc.csv")
        plots.label_confusion_png(scored.metrics["per_label"], folder / "confusion.png")
        for kind in ("roc", "pr"):
            plots.label_curves_png(y, proba, data.labels, folder / f"{kind}.png", kind)
        shown = rows[:18]
        plots.label_gallery_png(gather(images, shown), y[: len(shown)], pred[: len(shown)],
                                data.labels, folder / "gallery.png")  # fmt: skip

    def decide(self, proba: np.ndarray, data: Data, decisions: Report) -> pd.DataFrame:
        """Per label: ``pred_<label>`` at its tuned threshold, ``p_<label>``, ``threshold_<label>``."""
        thresholds = decisions["thresholds"]
        columns: dict[str, Any] = {}
        for k, name in enumerate(data.labels):
            columns[f"pred_{name}"] = (proba[:, k] >= thresholds[name]).astype(np.int8)
            columns[f"p_{name}"] = proba[:, k]
            columns[f"threshold_{name}"] = np.full(len(proba), thresholds[name])
        return pd.DataFrame(columns)

    def confidence(self, proba: np.ndarray, decisions: Report) -> tuple[np.ndarray, np.ndarray]:
        """The least sure label's max(p, 1 - p), and the smallest distance to a threshold."""
        cut = np.array(list(decisions["thresholds"].values()))
        top = np.maximum(proba, 1 - proba).min(axis=1)
        return top, np.abs(proba - cut).min(axis=1)

    def headline(self, metrics: Report) -> Report:
        return {k: metrics[k] for k in ("roc_auc_macro", "pr_auc_macro", "hamming_loss")}

    # -- summaries ---------------------------------------------------------------------

    def impute_summary(self, report: Report) -> list[Artifact]:
        rows = []
        for name, e in report["per_label"].items():
            h = e.get("holdout", {})
            rows.append({"label": name, "filled": e["filled"],
                         "left unknown": e["left_unknown_train"],
                         **{k: fmt(h.get(k)) for k in (*_CONFUSION, "roc_auc", "pr_auc")}})  # fmt: skip
        caption = f"Self-training per label ({report['missing_labels']}); masked hold-out scores"
        return [Table("impute-labels", rows, caption)]

    def balance_summary(self, report: Report) -> list[Artifact]:
        rows = [
            {"label": n, "positives before": report["before"][n], "after": report["after"][n]}
            for n in report["before"]
        ]
        return [Table("balance-label-counts", rows, f"Train label counts ({report['method']})")]

    def baseline_row(self, scores: Report) -> dict[str, str]:
        per_label = {f"auc_{k}": fmt(v["roc_auc"]) for k, v in scores["per_label"].items()}
        return {"roc_auc_macro": fmt(scores["roc_auc_macro"]),
                "pr_auc_macro": fmt(scores["pr_auc_macro"]), **per_label}  # fmt: skip

    def metrics_summary(self, report: Report) -> tuple[str, str]:
        keys = ("threshold", *_CONFUSION, "specificity", "gmean", "roc_auc", "pr_auc")
        md = [
            "# Test metrics per label (observed labels only)",
            "",
            f"macro ROC-AUC **{fmt(report['roc_auc_macro'])}**{_left_out(report)}, micro ROC-AUC "
            f"{fmt(report['roc_auc_micro'])}, macro PR-AUC {fmt(report['pr_auc_macro'])}, "
            f"Hamming loss {fmt(report['hamming_loss'])}, Jaccard {fmt(report['jaccard'])}, "
            f"subset accuracy {fmt(report['subset_accuracy'])}, n = {report['n']}",
            "",
            "| label | " + " | ".join(keys) + " |",
            "| --- " * (len(keys) + 1) + "|",
            *[
                f"| {name} | " + " | ".join(fmt(v[k]) for k in keys) + " |"
                for name, v in report["per_label"].items()
            ],
            *_notes(report),
        ]
        return "\n".join(md), "Per-label confusion, ROC/PR, training curves, gallery"


def _notes(report: Report) -> list[str]:
    """Why a figure above is None, and which thresholds kept the default: one line each."""
    notes = [f"- {n}: {k} undefined ({why})" for n, v in report["per_label"].items()
             for k, why in v.get("undefined", {}).items() if k not in ("gmean", "pr_auc")]  # fmt: skip
    notes += [f"- {n}: threshold not tuned ({why})"
              for n, why in report.get("thresholds_untuned", {}).items()]  # fmt: skip
    return ["", *notes] if notes else []


def _left_out(report: Report) -> str:
    """`` (over 2 of 4 labels; left out: ...)`` when the macro means skip a label, else ``""``."""
    left_out = report.get("macro_left_out") or {}
    if not left_out:
        return ""
    why = ", ".join(f"{name} ({reason})" for name, reason in left_out.items())
    over = f"{len(report.get('macro_labels', []))} of {len(report['per_label'])} labels"
    return f" (over {over}; left out: {why})"


def _imputer_features(
    dataset: pd.DataFrame, images_path: Path, data: Data, impute: Impute
) -> tuple[np.ndarray, str]:
    """What the imputer sees: cutout morphology and/or photometry with colours.

    Also whether it saw the cutouts: tabular-only data (an empty-width image array)
    has none, and the photometry alone is used.
    """
    from skysort.data.morphology import morphology_features

    parts = []
    seen = "off (impute.image_features: false)"
    if impute.image_features:
        images = np.load(images_path, mmap_mode="r")
        if len(images) != len(dataset):
            raise ValueError(
                f"{images_path} has {len(images)} images for {len(dataset)} rows: rerun clean"
            )
        if images.shape[1]:
            parts.append(morphology_features(images))
            seen = "used"
        else:
            seen = "skipped: no images (tabular-only data); the photometry alone is used"
            log.info("impute: %s", seen)
    if impute.tabular_features or not parts:
        parts.append(tabular_matrix(dataset, data.features, data.asinh_scales))
    return np.column_stack(parts), seen


def _self_trainer(impute: Impute, label: str, seed: int) -> Any:
    return self_trainer(impute.n_estimators, impute.confidence_for(label), impute.max_iter,
                        seed, class_weight="balanced_subsample")  # fmt: skip


def _binary_holdout(X: np.ndarray, y: np.ndarray, label: str, impute: Impute, seed: int) -> Report:
    """Hide a share of one label's known train values, self-train, score the hidden ones.

    Scores at 0.5: TP, FP, TN, FN, precision, recall, ROC-AUC, PR-AUC; plus how many
    hidden values the imputer would have filled (confident) and how right those were.
    """
    X, y = at_most(X, y, impute.holdout_max_rows, seed)
    rng = np.random.default_rng(seed + 1)
    known = np.flatnonzero(~np.isnan(y))
    n_hide = max(1, int(round(len(known) * impute.holdout_fraction)))
    if len(known) - n_hide < 4:
        return {"hidden": 0, "note": "too few labelled rows for a hold-out"}
    hide = rng.choice(known, size=n_hide, replace=False)
    masked = np.where(np.isnan(y), -1, y).astype(int)
    masked[hide] = -1
    if len(np.unique(masked[masked >= 0])) < 2:
        return {"hidden": 0, "note": "one outcome left after hiding"}
    model = _self_trainer(impute, label, seed).fit(X, masked)
    proba = model.predict_proba(X[hide])[:, list(model.classes_).index(1)]
    scores = binary_scores(y[hide], proba, 0.5)
    confident = np.maximum(proba, 1 - proba) >= impute.confidence_for(label)
    return {
        "hidden": int(n_hide),
        **{k: scores[k] for k in _HOLDOUT_KEYS},
        "would_fill": int(confident.sum()),
        "accuracy_filled": float(((proba >= 0.5) == (y[hide] == 1))[confident].mean())
        if confident.any()
        else None,
    }
