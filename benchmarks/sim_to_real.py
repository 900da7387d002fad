"""How real does the simulated survey look? Train on simulated rows, test on real ones.

A gradient-boosting classifier (the project's ``gboost`` baseline on
``skysort.data.labels.tabular_matrix``: magnitudes plus adjacent colours) is fitted on
``--objects`` simulated rows and scored on the real SDSS DR17 sample, for the five
magnitudes alone and with the redshift. For reference it also prints the same
model trained on real rows (the even ones) and scored on the odd ones, the
simulation scored on the odd rows alone (``benchmarks/calibrate_sim.py`` fits the
simulation on the even rows), and the simulated survey scored on itself.

    python benchmarks/sim_to_real.py [--real PATH] [--objects 20000] [--seed 42]

The real sample's ids are ruined (scientific notation), so rows are keyed by position.
The simulation is drawn with the real sample's r range (``--r-min``/``--r-max``), so
no real object lies outside what the classifier saw. Writes both tables to
``docs/results/sim_to_real.md`` (and ``.json``) through ``benchmarks/results.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from results import Table, write_results
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skysort.config import Data, Query, SyntheticSource
from skysort.data.labels import tabular_matrix
from skysort.model.classical import make_baseline
from skysort.sources.synthetic import simulate_catalog

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REAL = REPO / "../shared/data/sdss17_star_classification_30k.csv"
CLASSES = ("GALAXY", "QSO", "STAR")
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "ugriz": ("u", "g", "r", "i", "z"),
    "ugriz+redshift": ("u", "g", "r", "i", "z", "redshift"),
}

COLUMNS = {
    "r": lambda d: d["r"],
    "u-g": lambda d: d["u"] - d["g"],
    "g-r": lambda d: d["g"] - d["r"],
    "r-i": lambda d: d["r"] - d["i"],
    "i-z": lambda d: d["i"] - d["z"],
    "redshift": lambda d: d["redshift"],
}


def load_real(path: Path) -> pd.DataFrame:
    """The real sample's photometry, redshift and class, keyed by row position."""
    df = pd.read_csv(path, usecols=["u", "g", "r", "i", "z", "redshift", "class"])
    return df.reset_index(drop=True)


def simulate(n: int, seed: int, r_min: float, r_max: float) -> pd.DataFrame:
    """Clean simulated rows (no missing labels or magnitudes) in the given r range."""
    query = Query(n_objects=n, r_min=r_min, r_max=r_max)
    clean = SyntheticSource(missing_label_rate=0.0, missing_feature_rate=0.0)
    return simulate_catalog(query, Data(classes=CLASSES), clean, seed)


def quantile_table(real: pd.DataFrame, sim: pd.DataFrame) -> list[str]:
    """Per class and variable: median [5 %, 95 %] of the real and the simulated rows."""
    rows = ["| class | variable | real median [5-95 %] | simulated median [5-95 %] |"]
    rows.append("| --- | --- | --- | --- |")
    for cls in CLASSES:
        for name, fn in COLUMNS.items():
            cells = []
            for df in (real, sim):
                q = fn(df[df["class"] == cls]).quantile([0.5, 0.05, 0.95]).to_numpy()
                cells.append(f"{q[0]:.3g} [{q[1]:.3g}, {q[2]:.3g}]")
            rows.append(f"| {cls} | {name} | {cells[0]} | {cells[1]} |")
    return rows


def score(
    train: pd.DataFrame, test: pd.DataFrame, features: tuple[str, ...], seed: int
) -> dict[str, float]:
    """Fit the gboost baseline on ``train``, score it on ``test``."""
    model = make_baseline("gboost", seed)
    y_train = train["class"].astype(str).to_numpy()
    y_test = test["class"].astype(str).to_numpy()
    model.fit(tabular_matrix(train, features), y_train)
    pred = model.predict(tabular_matrix(test, features))
    recall = recall_score(y_test, pred, labels=list(CLASSES), average=None)
    return {
        "accuracy": accuracy_score(y_test, pred),
        "f1_macro": f1_score(y_test, pred, average="macro"),
        **{f"recall_{c}": float(r) for c, r in zip(CLASSES, recall, strict=True)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL, help="the SDSS17 sample CSV")
    ap.add_argument("--objects", type=int, default=20_000, help="simulated training rows")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--r-min", type=float, default=12.0)
    ap.add_argument("--r-max", type=float, default=24.0)
    args = ap.parse_args()

    real = load_real(args.real)
    started = time.perf_counter()
    sim = simulate(args.objects, args.seed, args.r_min, args.r_max)
    sim_s = time.perf_counter() - started
    # benchmarks/calibrate_sim.py fits the simulation on the even rows only.
    even, odd = real.iloc[::2], real.iloc[1::2]
    sim_a, sim_b = train_test_split(
        sim, test_size=0.5, stratify=sim["class"], random_state=args.seed
    )
    print(
        f"real: {len(real)} rows from {args.real.name}; simulated: {len(sim)} rows ({sim_s:.1f} s)"
    )
    print(f"real class mix: {real['class'].value_counts(normalize=True).round(3).to_dict()}")
    print(f"sim class mix:  {sim['class'].value_counts(normalize=True).round(3).to_dict()}")
    print()
    quantiles = quantile_table(real, sim)
    print("\n".join(quantiles))
    print()
    header = "| train on | test on | features | accuracy | macro-F1 | recall GALAXY | recall QSO | recall STAR |"
    print(header)
    print("| --- " * 8 + "|")
    rows = []
    runs = [
        ("simulated", sim, "real (all)", real),
        ("simulated", sim, "real odd rows (held out)", odd),
        ("real even rows", even, "real odd rows", odd),
        ("simulated half", sim_a, "simulated half", sim_b),
    ]
    with threadpool_limits(limits=1, user_api="openmp"):  # see stages/baselines.py
        for name, feats in FEATURE_SETS.items():
            for train_name, train, test_name, test in runs:
                s = score(train, test, feats, args.seed)
                print(
                    f"| {train_name} | {test_name} | {name} | {s['accuracy']:.3f} | "
                    f"{s['f1_macro']:.3f} | "
                    + " | ".join(f"{s[f'recall_{c}']:.3f}" for c in CLASSES)
                    + " |"
                )
                rows.append([train_name, test_name, name, *s.values()])
    columns = ["train on", "test on", "features", "accuracy", "macro-F1"]
    write_results(
        "sim_to_real",
        [
            Table([*columns, *(f"recall {c}" for c in CLASSES)], rows, caption="gboost"),
            Table.from_markdown(quantiles, caption="Per class: median [5 %, 95 %]"),
        ],
        title="Trained on simulated rows, scored on real ones",
        notes=[
            f"real: {len(real)} rows from {args.real.name}; simulated: {len(sim)} rows "
            f"(seed {args.seed}, r {args.r_min}-{args.r_max})."
        ],
    )


if __name__ == "__main__":
    main()
