"""The classical baselines, the tabular net and the pipeline's tree models on real DR17 data.

Splits the shared 30k sample (``--real``) the way the ``clean`` stage splits a
catalog (stratified, seeded: test 20 %, val 15 %), then for the features
``u g r i z`` and ``u g r i z redshift``:

- fits each baseline of :func:`skysort.stages.baselines.make_baseline` on the train
  rows, as the ``baselines`` stage does (``skysort.data.labels.tabular_matrix``: the
  features plus adjacent colours), and scores it on the test rows;
- trains the project's tabular net (:func:`skysort.model.build.build_model` with
  ``Train(model="tabular")``, its loss and ``tf.data`` input, fitted by the train
  stage's own :func:`skysort.model.fit.fit_model`: early stopping, ``lr_schedule``,
  the best epoch kept; train rows oversampled as the ``balance`` stage does by
  default) and scores it on the same test rows;
- fits the pipeline's own tree models (``train.model: gboost`` and ``forest``, by the
  train stage's :func:`skysort.model.trees.fit_tree` on the net's train rows) and
  mixes the better one with the net as ``train.model: ensemble`` does (weight fitted
  on the val rows), and scores them on the same test rows (``--no-pipeline-models``
  skips them).

    python benchmarks/real_sdss17.py [--real PATH] [--epochs 40] [--set dense_units=128,64] [--splits 5]

``--splits K`` repeats everything on K splits (split seeds ``--seed`` onwards) and
adds a table over them: each model's mean and sd, and the pipeline ensemble's (else
the net's) paired difference from each other model (same test rows), with how many
splits it was ahead in. One
split's 6,000 test objects resolve about 0.002, the size of the gaps in question.
``--net-seeds N`` trains the net N times (seeds ``--seed`` onwards, the same split)
and adds their mean and spread: one run moves by about 0.002. ``--set KEY=VALUE``
overrides a ``Train`` field (validated like ``params.yaml``);
``--colours`` sets ``train.colour_inputs`` (the net reads the baselines' matrix:
features + colours); ``--asinh-redshift`` sets ``data.asinh_scales: {redshift:
0.001}`` (every model reads ``asinh(redshift / 0.001)``, as the pipeline does).
The sample's ids are ruined (scientific notation): rows are keyed by position.
Prints one table: model, feature set, accuracy, macro-F1 (and with ``--splits``, a second),
and writes them to ``docs/results/real_sdss17.md`` (and ``.json``) through
``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import RandomOverSampler
from results import Table, write_results
from threadpoolctl import threadpool_limits

from skysort.config import Balance, Baselines, Clean, Data, Train
from skysort.data.labels import encode, feature_matrix, tabular_matrix
from skysort.data.splits import assign_splits
from skysort.evaluation.metrics import classification_scores
from skysort.model.classical import make_baseline

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REAL = REPO / "../shared/data/sdss17_star_classification_30k.csv"
CLASSES = ("GALAXY", "QSO", "STAR")
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "u g r i z": ("u", "g", "r", "i", "z"),
    "u g r i z + redshift": ("u", "g", "r", "i", "z", "redshift"),
}


def load_real(path: Path) -> pd.DataFrame:
    """The real sample's photometry, redshift and class, keyed by row position."""
    df = pd.read_csv(path, usecols=["u", "g", "r", "i", "z", "redshift", "class"])
    return df.reset_index(drop=True)


def fit_baseline(
    name: str, X: np.ndarray, y: np.ndarray, split: np.ndarray, seed: int
) -> dict[str, float]:
    model = make_baseline(name, seed)
    train, test = split == "train", split == "test"
    model.fit(X[train], y[train])
    return classification_scores(
        y[test], model.predict(X[test]), CLASSES, model.predict_proba(X[test])
    )


def oversampled_train_rows(y: np.ndarray, split: np.ndarray, seed: int) -> np.ndarray:
    """Train rows with minority classes repeated, as the ``balance`` stage does by default."""
    rows = np.flatnonzero(split == "train")
    sampler = RandomOverSampler(sampling_strategy=Balance().sampling_strategy, random_state=seed)
    sampler.fit_resample(rows.reshape(-1, 1), y[rows])
    return np.random.default_rng(seed).permutation(rows[sampler.sample_indices_])


def fit_tabular_net(
    X: np.ndarray,
    y: np.ndarray,
    split: np.ndarray,
    data: Data,
    train: Train,
    seed: int,
    oversample: bool,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Train the project's tabular net like the train stage; scores on test, and run facts.

    The model is built and compiled by the stage's :func:`compile_model` (loss, metrics,
    optimizer and ``lr_schedule``) and fitted by its :func:`fit_model`. The facts hold
    its train rows and its probabilities on the val and test rows, for the ensemble.
    """
    import tempfile

    import keras

    from skysort.model.distribute import make_strategy
    from skysort.model.fit import compile_model, fit_model
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset
    from skysort.model.tfenv import configure_tensorflow

    configure_tensorflow(train.threads, seed)
    rows = (
        oversampled_train_rows(y, split, seed) if oversample else np.flatnonzero(split == "train")
    )
    val_rows, test_rows = np.flatnonzero(split == "val"), np.flatnonzero(split == "test")
    unique = np.unique(rows)
    model = compile_model(
        make_strategy("none"),
        X[unique].mean(axis=0),
        X[unique].var(axis=0),
        data=data,
        train=train,
        steps_per_epoch=-(-len(rows) // train.batch_size),
    )
    no_images = np.zeros((len(X), 1, 1, 3), dtype=np.uint8)  # a tabular model reads none
    inputs = INPUTS_BY_MODEL["tabular"]
    train_ds = make_dataset(
        no_images, X, rows, inputs, train.batch_size, y=y, shuffle=True, seed=seed
    )
    val_ds = make_dataset(no_images, X, val_rows, inputs, train.batch_size, y=y)
    class_weight = None
    if train.class_weight == "balanced":
        counts = np.bincount(y[rows], minlength=len(CLASSES)).astype(float)
        class_weight = {i: float(len(rows) / (len(counts) * c)) for i, c in enumerate(counts)}
    started = time.perf_counter()
    # The train stage's own fit: early stopping on val loss, the lr schedule, the best
    # epoch checkpointed (here to a temporary folder) and read back.
    with tempfile.TemporaryDirectory(prefix="real-sdss17-") as tmp:
        fitted = fit_model(
            model,
            train_ds,
            val_ds,
            Path(tmp) / "model.keras",
            Path(tmp) / "dvclive",
            class_weight=class_weight,
            train=train,
        )
        model = keras.models.load_model(Path(tmp) / "model.keras")
    fit_s = time.perf_counter() - started
    proba = model.predict(make_dataset(no_images, X, test_rows, inputs, 1024), verbose=0)
    val_proba = model.predict(make_dataset(no_images, X, val_rows, inputs, 1024), verbose=0)
    scores = classification_scores(y[test_rows], proba.argmax(axis=1), CLASSES, proba)
    val_loss = fitted.history["val_loss"]
    facts = {
        "best_epoch": int(np.argmin(val_loss)) + 1,
        "epochs_run": len(val_loss),
        "fit_s": fit_s,
        "parameters": fitted.parameters,
        "train_rows": rows,
        "val_proba": val_proba.astype(np.float64),
        "test_proba": proba.astype(np.float64),
    }
    return scores, facts


def mean_of_runs(runs: list[dict]) -> tuple[str, dict, str]:
    """A results row averaging the nets' scores over seeds, with their spread in the note."""
    acc = np.array([r["accuracy"] for r in runs])
    f1 = np.array([r["f1_macro"] for r in runs])
    mean = {
        "accuracy": acc.mean(),
        "f1_macro": f1.mean(),
        "per_class": {
            c: {"f1": float(np.mean([r["per_class"][c]["f1"] for r in runs]))} for c in CLASSES
        },
    }
    spread = f"sd over seeds: accuracy {acc.std(ddof=1):.4f}, macro-F1 {f1.std(ddof=1):.4f}"
    return f"**tabular net, mean of {len(runs)} seeds**", mean, spread


def parse_overrides(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        field = Train.model_fields.get(key)
        if field is None:
            raise SystemExit(f"--set {item}: Train has no field {key!r}")
        out[key] = tuple(int(v) for v in value.split(",")) if key == "dense_units" else value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL, help="the SDSS17 sample CSV")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--epochs", type=int, default=Train().epochs)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    ap.add_argument(
        "--colours", action="store_true", help="train.colour_inputs: the net reads the colours too"
    )
    ap.add_argument(
        "--asinh-redshift",
        action="store_true",
        help="data.asinh_scales={redshift: 0.001}: every model reads asinh(redshift / 0.001)",
    )
    ap.add_argument(
        "--no-oversample", action="store_true", help="train the net on the train rows as they are"
    )
    ap.add_argument(
        "--net-seeds",
        type=int,
        default=1,
        help="train the net with this many seeds; print the mean",
    )
    ap.add_argument(
        "--splits",
        type=int,
        default=1,
        help="repeat on this many splits (seeds --seed onwards); print mean, sd, paired gaps",
    )
    ap.add_argument("--baselines", default=",".join(Baselines().models))
    ap.add_argument("--only", choices=list(FEATURE_SETS), action="append")
    ap.add_argument(
        "--no-pipeline-models",
        action="store_true",
        help="skip train.model gboost, forest and ensemble (fitted as the train stage does)",
    )
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.WARNING)

    train = Train.model_validate(
        {
            "model": "tabular",
            "epochs": args.epochs,
            **({"colour_inputs": True} if args.colours else {}),
            **parse_overrides(args.overrides),
        }
    )
    real = load_real(args.real)
    clean = Clean()
    y = encode(real["class"], CLASSES)
    split_seeds = [args.seed + k for k in range(args.splits)]
    print(f"{args.real.name}: {len(real)} rows; split seeds {split_seeds}")
    print(
        f"tabular net: dense_units={list(train.dense_units)} dropout={train.dropout} "
        f"lr={train.learning_rate} batch={train.batch_size} epochs<={train.epochs} "
        f"patience={train.patience} class_weight={train.class_weight} "
        f"oversample={not args.no_oversample} colour_inputs={train.colour_inputs}"
        f"{' asinh(z/0.001)' if args.asinh_redshift else ''}"
    )
    print()
    print("| model | features | accuracy | macro-F1 | F1 GALAXY | F1 QSO | F1 STAR | note |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    # (feature set, model) -> one scores dict per split, for the summary over splits
    by_split: dict[tuple[str, str], list[dict]] = {}
    rows: list[list] = []
    for split_seed in split_seeds:
        split = assign_splits(real["class"], clean.test_fraction, clean.val_fraction, split_seed)
        where = f"split seed {split_seed}, " if args.splits > 1 else ""
        for set_name, features in FEATURE_SETS.items():
            if args.only and set_name not in args.only:
                continue
            for name, s, note in score_split(real, y, split, split_seed, features, train, args):
                f1 = {c: s["per_class"][c]["f1"] for c in CLASSES}
                print(
                    f"| {name} | {set_name} | {s['accuracy']:.3f} | {s['f1_macro']:.3f} | "
                    + " | ".join(f"{f1[c]:.3f}" for c in CLASSES)
                    + f" | {where}{note} |",
                    flush=True,
                )
                rows.append(
                    [name, set_name, s["accuracy"], s["f1_macro"], *f1.values(), where + note]
                )
                if not name.startswith("tabular net,"):  # per-seed rows: their mean counts
                    by_split.setdefault((set_name, name.strip("*")), []).append(s)
    columns = ["model", "features", "accuracy", "macro-F1", *(f"F1 {c}" for c in CLASSES), "note"]
    tables = [Table(columns, rows, caption="Test split")]
    if args.splits > 1:
        tables.append(print_over_splits(by_split, args.splits))
    write_results(
        "real_sdss17",
        tables,
        title="Baselines, the tabular net and the pipeline's tree models on the real DR17 sample",
        notes=[
            f"{args.real.name}: {len(real)} rows, split seeds {split_seeds} (test 20 %, val "
            f"15 %, stratified). Tabular net: dense_units={list(train.dense_units)}, "
            f"dropout={train.dropout}, lr={train.learning_rate}, batch={train.batch_size}, "
            f"epochs<={train.epochs}, patience={train.patience}, lr_schedule="
            f"{train.lr_schedule}, oversample={not args.no_oversample}, colour_inputs="
            f"{train.colour_inputs}, asinh redshift={args.asinh_redshift}."
        ],
    )


def score_split(
    real: pd.DataFrame,
    y: np.ndarray,
    split: np.ndarray,
    seed: int,
    features: tuple[str, ...],
    train: Train,
    args: argparse.Namespace,
) -> list[tuple[str, dict, str]]:
    """Every baseline and the net (``--net-seeds`` times) on one split: name, scores, note."""
    scales = {"redshift": 0.001} if args.asinh_redshift and "redshift" in features else {}
    X_base = tabular_matrix(real, features, scales)
    results: list[tuple[str, dict, str]] = []
    # One OpenMP thread, as the baselines stage (spin-waiting on a shared machine).
    with threadpool_limits(limits=1, user_api="openmp"):
        for name in filter(None, args.baselines.split(",")):
            started = time.perf_counter()
            s = fit_baseline(name, X_base, y, split, seed)
            results.append((name, s, f"fit {time.perf_counter() - started:.0f} s"))
    # As load_survey builds the net's input (train.colour_inputs).
    X_net = (tabular_matrix if train.colour_inputs else feature_matrix)(real, features, scales)
    data = Data(features=features, classes=CLASSES, asinh_scales=scales)
    runs, first = [], None
    for k in range(args.net_seeds):  # the split stays; the net's own seed moves
        s, facts = fit_tabular_net(X_net, y, split, data, train, seed + k, not args.no_oversample)
        first = first or facts
        note = (
            f"best epoch {facts['best_epoch']}/{facts['epochs_run']}, "
            f"{facts['parameters']} params, fit {facts['fit_s']:.0f} s"
        )
        name = "tabular net" if args.net_seeds == 1 else f"tabular net, seed {seed + k}"
        results.append((name, s, note))
        runs.append(s)
    if len(runs) > 1:
        results.append(mean_of_runs(runs))
    if first is not None and not args.no_pipeline_models:
        results += pipeline_models(X_net, y, split, data, train, seed, first)
    return results


def pipeline_models(
    X: np.ndarray,
    y: np.ndarray,
    split: np.ndarray,
    data: Data,
    train: Train,
    seed: int,
    net: dict[str, Any],
) -> list[tuple[str, dict, str]]:
    """``train.model: gboost``, ``forest`` and ``ensemble`` as the train stage fits them.

    The trees are fitted by the stage's :func:`fit_tree` on the net's own train rows
    (each once, as the stage's :func:`tree_rows`) and input matrix, plus colours
    where the net reads none; the ensemble mixes the net (``net``: the first seed's
    run) with the tree of lower val log loss at the weight :func:`combine` fits on the
    val rows. Test rows are scored only.
    """
    from skysort import targets
    from skysort.model.ensemble import combine
    from skysort.model.trees import fit_tree, tree_columns, tree_rows

    task = "multiclass"
    head = targets.get(task).trees
    columns, colours = tree_columns(data.features, dict(data.asinh_scales), train.colour_inputs)
    rows = tree_rows(net["train_rows"])
    val_rows, test_rows = np.flatnonzero(split == "val"), np.flatnonzero(split == "test")
    results, trees, test_proba = [], {}, {}
    for kind in ("gboost", "forest"):
        model, seconds = fit_tree(kind, task, X[rows], y[rows], n_outputs=len(CLASSES),
                                  columns=columns, colours=colours, seed=seed)  # fmt: skip
        trees[kind] = (model, model.predict_proba(None, X[val_rows], 1024))
        p = test_proba[kind] = model.predict_proba(None, X[test_rows], 1024)
        scores = classification_scores(y[test_rows], p.argmax(axis=1), CLASSES, p)
        loss = head.log_loss(y[val_rows], trees[kind][1])
        results.append(
            (f"pipeline {kind}", scores, f"fit {seconds:.0f} s, val log loss {loss:.4f}")
        )
    kind, weight, report = combine(head, y[val_rows], net["val_proba"], trees)
    p = weight * net["test_proba"] + (1 - weight) * test_proba[kind]
    scores = classification_scores(y[test_rows], p.argmax(axis=1), CLASSES, p)
    note = (
        f"net + {kind}, net weight {weight:.2f} (val log loss: net "
        f"{report['val_log_loss']['net']:.4f}, ensemble {report['val_log_loss']['ensemble']:.4f})"
    )
    results.append(("**pipeline ensemble**", scores, note))
    return results


def print_over_splits(by_split: dict[tuple[str, str], list[dict]], n_splits: int) -> Table:
    """Mean and sd over the splits, and the reference's paired difference from each model.

    The reference is the pipeline's ensemble where it ran (``train.model: ensemble``,
    the model the issue of trees against the net settled on), else the tabular net.

    One 6,000-object test split resolves about 0.002 of accuracy, the size of the gaps
    between the best models; re-splitting shows whether a gap is the split or the model.
    The difference is paired (the same test rows for both models in each split).
    """
    print()
    print(f"Over {n_splits} splits (mean, sd):")
    print()
    ref = "pipeline ensemble" if any(m == "pipeline ensemble" for _, m in by_split) else "net"
    print(
        f"| model | features | accuracy | macro-F1 | {ref} - this model, accuracy "
        f"| {ref} - this, macro-F1 | {ref} ahead |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    table_rows: list[list] = []
    for set_name in dict.fromkeys(k[0] for k in by_split):
        rows = {m: v for (f, m), v in by_split.items() if f == set_name}
        net_name = next((m for m in rows if m.startswith("tabular net")), None)
        ref_name = "pipeline ensemble" if ref != "net" else net_name
        for model, runs in rows.items():
            acc = np.array([r["accuracy"] for r in runs])
            f1 = np.array([r["f1_macro"] for r in runs])
            diff, gaps = "| | | |", ["", "", ""]
            if ref_name and model != ref_name:
                net_acc = np.array([r["accuracy"] for r in rows[ref_name]])
                net_f1 = np.array([r["f1_macro"] for r in rows[ref_name]])
                d_acc, d_f1 = net_acc - acc, net_f1 - f1
                diff = (
                    f"| {d_acc.mean():+.4f} ± {d_acc.std(ddof=1):.4f} "
                    f"| {d_f1.mean():+.4f} ± {d_f1.std(ddof=1):.4f} "
                    f"| {int((d_acc > 0).sum())} of {len(d_acc)} |"
                )
                gaps = [c.strip() for c in diff.strip("|").split("|")]
            print(
                f"| {model} | {set_name} | {acc.mean():.4f} ± {acc.std(ddof=1):.4f} "
                f"| {f1.mean():.4f} ± {f1.std(ddof=1):.4f} {diff}",
                flush=True,
            )
            table_rows.append(
                [
                    model,
                    set_name,
                    f"{acc.mean():.4f} ± {acc.std(ddof=1):.4f}",
                    f"{f1.mean():.4f} ± {f1.std(ddof=1):.4f}",
                    *gaps,
                ]
            )
    columns = ["model", "features", "accuracy, mean ± sd", "macro-F1, mean ± sd"]
    columns += [f"{ref} minus it: accuracy", f"{ref} minus it: macro-F1", f"{ref} ahead in"]
    return Table(columns, table_rows, caption=f"Over {n_splits} splits")


if __name__ == "__main__":
    main()
