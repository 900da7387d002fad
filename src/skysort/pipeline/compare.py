"""The model comparison study: a grid of DVC experiments and one table of their results.

``skysort compare`` expands ``params.compare`` into variants (model kind x image
encoder x trainable layers; the tree models ``gboost`` and ``forest`` have no encoder,
an ``ensemble`` has its net's), runs each as ``dvc exp run -n NAME -S key=value ...`` in
the workspace (so only ``train`` and ``evaluate`` rerun between variants; the shared
stages come from the first run or the DVC cache), reads each run's reports, and
prints one table with the classical baselines on top. Every run stays a DVC
experiment: ``dvc exp show`` lists them and ``dvc plots diff`` overlays their
training curves. Afterwards the workspace is put back as it was (``params.yaml``,
``dvc.lock`` and the outputs they name).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skysort import targets
from skysort.config import Compare, Params, apply_overrides, validate_params
from skysort.data import atomic
from skysort.pipeline import versioning

log = logging.getLogger(__name__)

NO_ENCODER: tuple[str, ...] = ("tabular", "gboost", "forest")
"""Model kinds without an image encoder: one run each, whatever ``image_encoders`` says."""


@dataclass(frozen=True)
class Variant:
    """One run of the study: its experiment name and the dotted overrides it applies."""

    name: str
    model: str
    image_encoder: str | None
    trainable_layers: int | None
    overrides: dict[str, Any] = field(default_factory=dict)

    def set_args(self) -> list[str]:
        """``-S key=value`` arguments for ``dvc exp run`` (values as YAML/Hydra literals)."""
        args: list[str] = []
        for key, value in self.overrides.items():
            args += ["-S", f"{key}={_literal(value)}"]
        return args


def expand_grid(compare: Compare) -> list[Variant]:
    """The distinct runs of ``models x image_encoders x trainable_layers``, in that order.

    A tabular or tree model ignores the image encoder, and ``small_cnn`` ignores
    ``trainable_layers``, so those combinations collapse into one run each.
    """
    variants: list[Variant] = []
    seen: set[str] = set()
    for model in compare.models:
        for encoder in compare.image_encoders:
            for layers in compare.trainable_layers:
                if model in NO_ENCODER:
                    enc, tl = None, None
                elif encoder == "small_cnn":
                    enc, tl = encoder, None
                else:
                    enc, tl = encoder, layers
                name = "-".join(
                    [compare.name_prefix, model]
                    + ([enc] if enc else [])
                    + ([_layers_tag(tl)] if tl is not None else [])
                )
                if name in seen:
                    continue
                seen.add(name)
                grid: dict[str, Any] = {"train.model": model}
                if enc:
                    grid["train.image_encoder"] = enc
                if tl is not None:
                    grid["train.trainable_layers"] = tl
                variants.append(Variant(name, model, enc, tl, {**compare.overrides, **grid}))
    return variants


def _layers_tag(n: int) -> str:
    return "all" if n < 0 else f"top{n}"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return value
    # JSON is valid YAML, and DVC parses -S values as YAML (lists, numbers, booleans, null).
    return json.dumps(value)


def check_variants(raw: dict[str, Any], variants: Iterable[Variant], origin: str) -> None:
    """Validate every variant's full parameters before anything runs.

    Raises :class:`ConfigError` naming the run and the bad key, so a typo in the grid
    fails in a second instead of after the first hour of training.
    """
    for v in variants:
        validate_params(
            apply_overrides(raw, [f"{k}={_literal(x)}" for k, x in v.overrides.items()]),
            origin=f"{origin} with compare run {v.name!r}",
        )


# --- running ---------------------------------------------------------------------------

Runner = Callable[[list[str], Path], tuple[int, str]]


def run_dvc(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``dvc ARGS``, echoing its output to stderr as it comes; return (exit code, tail)."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tail: collections.deque[str] = collections.deque(maxlen=40)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stderr.write(line)
        tail.append(line)
    return proc.wait(), "".join(tail)


def run_study(
    root: Path,
    params: Params,
    variants: list[Variant],
    out_dir: Path,
    *,
    runner: Runner = run_dvc,
) -> list[dict[str, Any]]:
    """Run each variant as a DVC experiment in ``root``; write and return the table rows.

    A failed run is recorded (status ``failed`` with the end of DVC's output) and the
    study goes on with the next. ``params.yaml`` and ``dvc.lock`` are restored at the
    end, and the outputs they name are checked out again from the DVC cache.
    """
    root = Path(root)
    saved = {name: _read(root / name) for name in ("params.yaml", "dvc.lock")}
    existing = set(_experiment_names(root))
    runs: list[dict[str, Any]] = []
    baselines: list[dict[str, Any]] = []
    histories: dict[str, dict[str, list[float]]] = {}
    paths = params.paths.under(root)
    try:
        for i, v in enumerate(variants, 1):
            log.info("compare: run %d/%d %s (%s)", i, len(variants), v.name, _describe(v))
            # Every run starts from the base parameters, not from the previous run's.
            if saved["params.yaml"] is not None:
                atomic.write_bytes(root / "params.yaml", saved["params.yaml"])
            if v.name in existing:
                runner(["exp", "remove", v.name], root)  # a rerun replaces the old result
            code, tail = runner(["exp", "run", "-n", v.name, *v.set_args()], root)
            if code != 0:
                log.error("compare: %s failed (dvc exit %d)", v.name, code)
                runs.append(_failed_row(v, tail))
                continue
            report = atomic.read_json(paths.train_report)
            metrics = atomic.read_json(paths.metrics)
            runs.append(keras_row(v, report, metrics))
            if report["history"]:  # a tree model has no training curves
                histories[v.name] = report["history"]
            if not baselines and paths.baselines_report.exists():
                baselines = baseline_rows(atomic.read_json(paths.baselines_report))
    finally:
        _restore(root, saved, runner)
    rows = baselines + runs
    write_outputs(out_dir, rows, histories, target_names(params))
    return rows


def _describe(v: Variant) -> str:
    return ", ".join(f"{k}={_literal(x)}" for k, x in v.overrides.items())


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def _experiment_names(root: Path) -> list[str]:
    proc = versioning.dvc("exp", "list", "--name-only", cwd=root, check=False)
    return proc.stdout.split() if proc.returncode == 0 else []


def _restore(root: Path, saved: dict[str, bytes | None], runner: Runner) -> None:
    for name, content in saved.items():
        if content is None:
            if name == "params.yaml":
                continue
            (root / name).unlink(missing_ok=True)
        else:
            atomic.write_bytes(root / name, content)
    if saved["dvc.lock"] is None:
        log.warning(
            "compare: the workspace had no dvc.lock before the study; its outputs are the last "
            "run's (run `dvc repro` or `skysort run` to rebuild the base parameters' outputs)"
        )
        return
    code, tail = runner(["checkout", "--force", "--quiet"], root)
    if code != 0:
        log.warning("compare: could not check the base outputs out again:\n%s", tail)


# --- the table -------------------------------------------------------------------------


def target_names(params: Params) -> tuple[str, ...]:
    """The table's per-target columns: the classes, or the labels of the multilabel task."""
    return targets.get(params.task).outputs(params.data)


def _scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """A run's headline scores. Multilabel: accuracy is label-wise (1 - Hamming loss),
    F1 per label at its tuned threshold, plus macro ROC-AUC and PR-AUC."""
    if "per_label" not in metrics:
        return {
            "accuracy": metrics["accuracy"],
            "f1_macro": metrics["f1_macro"],
            "f1": {c: m["f1"] for c, m in metrics["per_class"].items()},
        }
    hamming = metrics["hamming_loss"]  # None where no test label is known
    return {
        "accuracy": None if hamming is None else 1 - hamming,
        "f1_macro": metrics["f1_macro"],
        "f1": {c: m["f1"] for c, m in metrics["per_label"].items()},
        "roc_auc_macro": metrics["roc_auc_macro"],
        "pr_auc_macro": metrics["pr_auc_macro"],
    }


def keras_row(v: Variant, train_report: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """One table row for a trained run (a net, a tree model, an ensemble).

    A tree model has no epochs: its time is the fit's (``s fit``).
    """
    trees = train_report.get("best_epoch") is None
    return {
        **_run_columns(v),
        "status": "ok",
        **_scores(metrics),
        "best_epoch": train_report.get("best_epoch"),
        "epochs_run": train_report.get("epochs_run"),
        "train_val_gap": train_report.get("train_val_accuracy_gap"),
        "seconds": train_report["fit_seconds"] if trees else train_report["seconds_per_epoch"],
        "seconds_unit": "s fit" if trees else "s/epoch",
        "parameters": train_report.get("parameters"),
    }


def baseline_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows for the classical baselines (scored on the same test split)."""
    return [
        {
            "run": f"baseline-{name}",
            "kind": "baseline",
            "encoder": "-",
            "trainable_layers": "-",
            "status": "ok",
            **_scores(m),
            "best_epoch": None,
            "epochs_run": None,
            "train_val_gap": None,
            "seconds": m["fit_seconds"],
            "seconds_unit": "s fit",
            "parameters": None,
        }
        for name, m in report["models"].items()
    ]


def _run_columns(v: Variant) -> dict[str, Any]:
    return {
        "run": v.name,
        "kind": v.model,
        "encoder": v.image_encoder or "-",
        "trainable_layers": "-" if v.trainable_layers is None else _layers_tag(v.trainable_layers),
    }


def _failed_row(v: Variant, tail: str) -> dict[str, Any]:
    return {
        **_run_columns(v),
        "status": "failed",
        "error": tail.strip().splitlines()[-1] if tail.strip() else "dvc exp run failed",
    }


def format_table(rows: list[dict[str, Any]], classes: Iterable[str], markdown: bool = False) -> str:
    """The comparison as aligned text (or a Markdown table)."""
    classes = list(classes)
    auc = any("roc_auc_macro" in r for r in rows)
    header = [
        "run",
        "kind",
        "encoder",
        "layers",
        "accuracy",
        "macro-F1",
        *(["macro AUC", "macro PR-AUC"] if auc else []),
        *[f"F1 {c}" for c in classes],
        "best epoch",
        "train-val gap",
        "time",
    ]
    body = []
    for r in rows:
        if r["status"] != "ok":
            body.append(
                [r["run"], r["kind"], r["encoder"], r["trainable_layers"], "FAILED", r["error"]]
                + [""] * (len(header) - 6)
            )
            continue
        body.append(
            [
                r["run"],
                r["kind"],
                r["encoder"],
                r["trainable_layers"],
                _number(r["accuracy"]),
                _number(r["f1_macro"]),
                *([_number(r.get("roc_auc_macro")), _number(r.get("pr_auc_macro"))] if auc else []),
                *[_number(r["f1"].get(c)) for c in classes],
                "-" if r["best_epoch"] is None else f"{r['best_epoch']}/{r['epochs_run']}",
                "-" if r["train_val_gap"] is None else f"{r['train_val_gap']:+.4f}",
                f"{r['seconds']:.2f} {r['seconds_unit']}",
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*(str(c) for c in row)) for row in body]
    return "\n".join(line.rstrip() for line in out)


def _number(value: float | None) -> str:
    """A score to 4 decimals; ``-`` where it is undefined (None)."""
    return "-" if value is None else f"{value:.4f}"


def write_outputs(
    out_dir: Path,
    rows: list[dict[str, Any]],
    histories: dict[str, dict[str, list[float]]],
    classes: Iterable[str],
) -> None:
    """``compare.json`` (rows), ``compare.md`` (the table) and ``curves.png`` (every run's curves)."""
    from skysort.evaluation import plots

    out_dir = Path(out_dir)
    classes = list(classes)
    atomic.write_json(out_dir / "compare.json", {"classes": classes, "rows": rows})
    with atomic.atomic_path(out_dir / "compare.md") as tmp:
        tmp.write_text(format_table(rows, classes, markdown=True) + "\n")
    if histories:
        plots.comparison_png(histories, out_dir / "curves.png")
