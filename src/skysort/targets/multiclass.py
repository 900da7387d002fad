"""The multiclass task: one exclusive class per object (``data.classes``), softmax, argmax.

Split stratified by class; unknown classes filled by one self-trained random forest
on the photometry; minority classes oversampled with imbalanced-learn; accuracy and
macro-F1 lead the scores.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from skysort.data.labels import LABEL_SOURCES, decode, encode, observed, tabular_matrix
from skysort.data.selftrain import at_most, self_trainer
from skysort.data.splits import assign_splits
from skysort.evaluation.metrics import classification_scores
from skysort.pipeline.stage import Artifact, Markdown, Table, fmt
from skysort.targets.base import NothingToScore, Report, Scored, Target, gather

if TYPE_CHECKING:
    from skysort.config import Balance, Baselines, Clean, Data, Impute, Train

log = logging.getLogger(__name__)


class Multiclass(Target):
    name = "multiclass"
    activation = "softmax"
    min_outputs = 2
    auto_monitor = "val_loss"
    best_by = "f1_macro"  # accuracy flatters a model that never says QSO

    def outputs(self, data: Data) -> tuple[str, ...]:
        return tuple(data.classes)

    def split(self, kept: pd.DataFrame, data: Data, clean: Clean, seed: int) -> np.ndarray:
        return assign_splits(kept["class"], clean.test_fraction, clean.val_fraction, seed)

    # -- impute ------------------------------------------------------------------------

    def impute(
        self, dataset: pd.DataFrame, images: Path, data: Data, impute: Impute, seed: int
    ) -> tuple[pd.DataFrame, Report]:
        """One self-trained forest on the photometry fills ``class`` on train rows."""
        y = encode(dataset["class"], data.classes)
        X = tabular_matrix(dataset, data.features, data.asinh_scales)
        is_train = (dataset["split"] == "train").to_numpy()
        known = y >= 0
        missing_train = is_train & ~known

        codes = y.copy()
        confidence = np.where(known, 1.0, np.nan)
        source = np.where(known, "observed", "unknown").astype(object)
        report: Report = {
            "task": self.name,
            "enabled": impute.enabled,
            "rows": len(dataset),
            "missing_labels": int((~known).sum()),
            "missing_labels_train": int(missing_train.sum()),
        }
        if impute.enabled and missing_train.any() and data.features:
            report["holdout"] = _masked_holdout(X[is_train], y[is_train], impute, seed)
            model = _self_trainer(impute, seed).fit(X[is_train], y[is_train])
            proba = model.predict_proba(X[missing_train])
            best = proba.argmax(axis=1)
            conf = proba.max(axis=1)
            accepted = conf >= impute.confidence
            idx = np.flatnonzero(missing_train)
            codes[idx[accepted]] = model.classes_[best[accepted]]
            confidence[idx] = conf
            source[idx[accepted]] = "imputed"
            report["imputed"] = int(accepted.sum())
            report["left_unknown"] = int((~accepted).sum())
        else:
            if impute.enabled and missing_train.any():  # image-only data: nothing to learn from
                report["note"] = (
                    "no tabular features (data.features is empty): nothing to impute from"
                )
                log.warning("impute: %s; %d unknown train labels stay unknown", report["note"],
                            int(missing_train.sum()))  # fmt: skip
            report["imputed"] = 0
            report["left_unknown"] = int(missing_train.sum())
        report["label_source_counts"] = {s: int((source == s).sum()) for s in LABEL_SOURCES}
        table = pd.DataFrame(
            {
                "objid": dataset["objid"].to_numpy(),
                "row": dataset["row"].to_numpy(),
                "split": dataset["split"].to_numpy(),
                "label": pd.array(decode(codes, data.classes), dtype="string"),
                "label_source": pd.array(source, dtype="string"),
                "confidence": confidence,
            }
        )
        log.info("impute: %s", report["label_source_counts"])
        return table, report

    def describe_impute(self, impute: Impute) -> str:
        return "impute: self-training" if impute.enabled else "impute: off"

    # -- balance -----------------------------------------------------------------------

    def balance(
        self, labels: pd.DataFrame, data: Data, balance: Balance, impute: Impute, seed: int
    ) -> tuple[np.ndarray, Report]:
        """imbalanced-learn's RandomOverSampler over the labelled train rows' indices."""
        from imblearn.over_sampling import RandomOverSampler

        train = labels[(labels["split"] == "train") & labels["label"].notna()]
        if train.empty:
            raise NothingToScore("the train split has no labelled rows to balance")
        rows = train["row"].to_numpy(dtype=np.int64)
        y = train["label"].astype(str).to_numpy()
        if balance.method == "random_over" and len(set(y)) > 1:
            sampler = RandomOverSampler(
                sampling_strategy=balance.sampling_strategy, random_state=seed
            )
            sampler.fit_resample(rows.reshape(-1, 1), y)
            index = rows[sampler.sample_indices_]
        else:
            index = rows
        index = np.random.default_rng(seed).permutation(index)
        after = pd.Series(labels.set_index("row").loc[index, "label"].astype(str)).value_counts()
        report = {
            "task": self.name,
            "method": balance.method,
            "sampling_strategy": balance.sampling_strategy,
            "before": {str(k): int(v) for k, v in pd.Series(y).value_counts().items()},
            "after": {str(k): int(v) for k, v in after.items()},
            "rows_before": len(rows),
            "rows_after": len(index),
        }
        log.info("balance: %s -> %s", report["before"], report["after"])
        return index.astype(np.int64), report

    def describe_balance(self, balance: Balance) -> str:
        return f"balance: {balance.method}"

    # -- baselines ---------------------------------------------------------------------

    def baselines(
        self, X: np.ndarray, labels: pd.DataFrame, data: Data, baselines: Baselines, seed: int
    ) -> Report:
        """Cross-validated on train (observed + imputed), scored on the observed test rows."""
        from skysort.model.classical import one_openmp_thread

        y = encode(labels["label"], data.classes)
        train = ((labels["split"] == "train").to_numpy()) & (y >= 0)
        test = observed(labels, "test")
        if not test.any():
            raise NothingToScore("the test split has no observed labels to score on")
        folds = min(baselines.cv_folds, int(np.bincount(y[train]).min()))
        with one_openmp_thread():
            models = {
                name: _score_baseline(name, X, y, train, test, folds, data, seed)
                for name in baselines.models
            }
        return {"train_rows": int(train.sum()), "test_rows": int(test.sum()), "models": models}

    # -- the net -----------------------------------------------------------------------

    def y(self, labels: pd.DataFrame, data: Data) -> np.ndarray:
        return encode(labels["label"], data.classes)

    def scored_rows(self, labels: pd.DataFrame, y: np.ndarray, split: str) -> np.ndarray:
        return np.flatnonzero(observed(labels, split))

    def class_weight(
        self, y_train: np.ndarray, data: Data, train: Train
    ) -> dict[int, float] | None:
        """``train.class_weight: balanced``: n / (k * n_c) per class; else none."""
        if train.class_weight != "balanced":
            return None
        counts = np.bincount(y_train, minlength=len(data.classes)).astype(float)
        return {i: float(len(y_train) / (len(counts) * c)) for i, c in enumerate(counts) if c}

    def loss_and_metrics(self, data: Data, train: Train) -> tuple[Any, list[Any]]:
        from skysort.model.losses import make_loss

        return make_loss(train, len(data.classes)), ["accuracy"]

    def decisions(
        self, val_y: np.ndarray, val_proba: np.ndarray | None, data: Data, train: Train,
        train_y: np.ndarray | None = None,
    ) -> Report:  # fmt: skip
        """The class with the highest probability wins."""
        return self._argmax(data)

    def _argmax(self, data: Data) -> Report:
        return {"task": self.name, "classes": list(data.classes), "decision": "argmax"}

    def load_decisions(self, path: Path, data: Data) -> Report:
        """Argmax needs nothing saved."""
        return self._argmax(data)

    # -- evaluate ----------------------------------------------------------------------

    def score(
        self, objid: np.ndarray, y: np.ndarray, proba: np.ndarray, data: Data, decisions: Report
    ) -> Scored:
        pred = proba.argmax(axis=1)
        metrics = classification_scores(y, pred, data.classes, proba)
        observed = pd.array([data.classes[k] for k in y], dtype="string")
        predictions = pd.concat(
            [pd.DataFrame({"objid": objid, "observed": observed}),
             self.decide(proba, data, decisions)], axis=1,
        )  # fmt: skip
        explain = [
            [(int(k), f"{data.classes[k]} (p={proba[i, k]:.2f})")] for i, k in enumerate(pred)
        ]
        log.info("evaluate: test accuracy %.4f macro-F1 %.4f on %d objects",
                 metrics["accuracy"], metrics["f1_macro"], len(y))  # fmt: skip
        return Scored(metrics, predictions, explain)

    def write_plots(
        self, folder: Path, scored: Scored, y: np.ndarray, proba: np.ndarray,
        images: np.ndarray, rows: np.ndarray, data: Data,
    ) -> None:  # fmt: skip
        from skysort.evaluation import plots

        scored.predictions[["observed", "predicted"]].to_csv(folder / "confusion.csv", index=False)
        truth = {c: y == k for k, c in enumerate(data.classes)}
        plots.roc_csv(truth, {c: proba[:, k] for k, c in enumerate(data.classes)},
                      folder / "roc.csv")  # fmt: skip
        plots.confusion_png(scored.metrics["confusion_matrix"], data.classes,
                            folder / "confusion.png")  # fmt: skip
        for kind in ("roc", "pr"):
            plots.curves_png(y, proba, data.classes, folder / f"{kind}.png", kind)
        plots.gallery_png(gather(images, rows), list(scored.predictions["observed"]),
                          list(scored.predictions["predicted"]), folder / "gallery.png")  # fmt: skip

    def decide(self, proba: np.ndarray, data: Data, decisions: Report) -> pd.DataFrame:
        """``predicted`` (the most probable class), then ``p_<class>`` for each class."""
        pred = proba.argmax(axis=1)
        return pd.DataFrame(
            {
                "predicted": pd.array([data.classes[k] for k in pred], dtype="string"),
                **{f"p_{c}": proba[:, k] for k, c in enumerate(data.classes)},
            }
        )

    def confidence(self, proba: np.ndarray, decisions: Report) -> tuple[np.ndarray, np.ndarray]:
        """The top probability, and its margin over the second."""
        ranked = np.sort(proba, axis=1)
        second = ranked[:, -2] if proba.shape[1] > 1 else np.zeros(len(proba))
        return ranked[:, -1], ranked[:, -1] - second

    def headline(self, metrics: Report) -> Report:
        return {k: metrics[k] for k in ("accuracy", "f1_macro")}

    # -- summaries ---------------------------------------------------------------------

    def impute_summary(self, report: Report) -> list[Artifact]:
        hold = report.get("holdout", {})
        md = [
            "# Label imputation (self-training)",
            "",
            "| label source | rows |",
            "| --- | --- |",
            *[f"| {k} | {v} |" for k, v in report["label_source_counts"].items()],
            "",
            f"Masked hold-out accuracy: **{fmt(hold.get('accuracy', 'n/a'))}** "
            f"on {hold.get('hidden', 0)} hidden labels.",
            *(["", f"Nothing imputed: {report['note']}."] if "note" in report else []),
        ]
        return [Markdown("impute-report", "\n".join(md), "Imputation")]

    def balance_summary(self, report: Report) -> list[Artifact]:
        classes = sorted(set(report["before"]) | set(report["after"]))
        rows = [
            {"class": c, "before": report["before"].get(c, 0), "after": report["after"].get(c, 0)}
            for c in classes
        ]
        return [Table("balance-class-counts", rows, f"Train class counts ({report['method']})")]

    def baseline_row(self, scores: Report) -> dict[str, str]:
        per_class = {f"f1_{c}": fmt(v["f1"]) for c, v in scores["per_class"].items()}
        return {"accuracy": fmt(scores["accuracy"]), "f1_macro": fmt(scores["f1_macro"]),
                **per_class}  # fmt: skip

    def metrics_summary(self, report: Report) -> tuple[str, str]:
        md = [
            "# Test metrics (observed labels only)",
            "",
            f"accuracy **{report['accuracy']:.4f}**, macro-F1 **{report['f1_macro']:.4f}**, "
            f"ROC-AUC {fmt(report.get('roc_auc_macro'))}, n = {report['n']}",
            "",
            "| class | precision | recall | F1 | support |",
            "| --- | --- | --- | --- | --- |",
            *[
                f"| {c} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |"
                for c, v in report["per_class"].items()
            ],
        ]
        return "\n".join(md), "Confusion matrix, ROC/PR, gallery"


def _self_trainer(impute: Impute, seed: int) -> Any:
    return self_trainer(impute.n_estimators, impute.confidence, impute.max_iter, seed)


def _masked_holdout(X: np.ndarray, y: np.ndarray, impute: Impute, seed: int) -> Report:
    """Hide a fraction of the known labels, self-train, and score the hidden ones."""
    X, y = at_most(X, y, impute.holdout_max_rows, seed)
    rng = np.random.default_rng(seed + 1)
    known = np.flatnonzero(y >= 0)
    n_hide = max(1, int(round(len(known) * impute.holdout_fraction)))
    if len(known) - n_hide < 2:
        return {"hidden": 0, "note": "too few labelled rows for a hold-out"}
    hide = rng.choice(known, size=n_hide, replace=False)
    y_masked = y.copy()
    y_masked[hide] = -1
    model = _self_trainer(impute, seed).fit(X, y_masked)
    proba = model.predict_proba(X[hide])
    pred = model.classes_[proba.argmax(axis=1)]
    conf = proba.max(axis=1)
    confident = conf >= impute.confidence
    return {
        "hidden": int(n_hide),
        "accuracy": float((pred == y[hide]).mean()),
        "accuracy_confident": float((pred[confident] == y[hide][confident]).mean())
        if confident.any()
        else None,
        "coverage_confident": float(confident.mean()),
    }


def _score_baseline(
    name: str, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, folds: int,
    data: Data, seed: int,
) -> Report:  # fmt: skip
    """Cross-validate one baseline on train, fit it, score it on test."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from skysort.model.classical import make_baseline

    model = make_baseline(name, seed)
    cv = (
        cross_val_score(model, X[train], y[train], scoring="f1_macro",
                        cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
        if folds >= 2
        else np.array([np.nan])
    )  # fmt: skip
    started = time.perf_counter()
    model.fit(X[train], y[train])
    fit_s = time.perf_counter() - started
    scores = classification_scores(
        y[test], model.predict(X[test]), data.classes, model.predict_proba(X[test])
    )
    log.info("baseline %-8s test accuracy %.3f macro-F1 %.3f (fit %.2fs)",
             name, scores["accuracy"], scores["f1_macro"], fit_s)  # fmt: skip
    return {
        "cv_f1_macro_mean": float(np.nanmean(cv)) if not np.isnan(cv).all() else None,
        "cv_f1_macro_std": float(np.nanstd(cv)) if not np.isnan(cv).all() else None,
        "fit_seconds": round(fit_s, 4),
        **scores,
    }
