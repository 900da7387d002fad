"""The story of one pipeline run on one page: what ran, how the models did, what was lost.

Plain data (a :class:`~skysort.pipeline.stage.Markdown` summary); the pipeline flow
publishes it as the flow run's own artifact. Every part reads the stages' reports,
and a part whose stage did not run (a failed run) says so instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skysort import targets
from skysort.config import Params
from skysort.pipeline.stage import Markdown, fmt

Report = dict[str, Any]

KEY = "run-summary"

OUTPUTS = ("metrics", "predictions", "plots", "model", "clean_report", "baselines_report")
"""The ``paths.*`` outputs the summary links to (those that exist)."""


@dataclass(frozen=True)
class RunFacts:
    """What the flow knows of a run besides the stages' reports."""

    params_path: str
    overrides: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> wall seconds
    recorded: str = "not recorded"
    revision: str | None = None  # git HEAD (``+``: with changes), None outside git
    failed: str | None = None  # the error that ended the run early
    pictures: Path | None = None  # this run's copies of its pictures (ui.runs_dir/<run id>)


def run_summary(params: Params, reports: dict[str, Report], facts: RunFacts) -> Markdown:
    """The run's summary artifact: what ran, the models, data lost, time per stage, outputs."""
    md = [
        f"# {params.task}: {params.source.kind}, {params.query.n_objects} objects, "
        f"{params.train.describe()}",
        "",
        *(["**Failed:** " + facts.failed, ""] if facts.failed else []),
        *_what_ran(params, reports, facts),
        "",
        *_models(params, reports),
        "",
        *_losses(reports),
        "",
        *_times(facts.seconds),
        "",
        *_outputs(params, facts.pictures),
    ]
    return Markdown(KEY, "\n".join(md).rstrip() + "\n", f"The {params.task} run at a glance")


def _what_ran(params: Params, reports: dict[str, Report], facts: RunFacts) -> list[str]:
    query, clean, train = (reports.get(s, {}) for s in ("query", "clean", "train"))
    objects = f"{query['rows']} in the catalog" if "rows" in query else "not queried"
    if "kept_rows" in clean:
        objects += f", {clean['kept_rows']} kept after cleaning"
    model = f"{params.train.describe()}, up to {params.train.epochs} epochs"
    if train.get("best_epoch") is None and "fit_seconds" in train:  # a tree model: no epochs
        model = f"{params.train.describe()}, fitted in {train['fit_seconds']:.1f} s"
    elif "epochs_run" in train:
        model += f" (ran {train['epochs_run']}, best epoch {train['best_epoch']})"
    overrides = ", ".join(f"`{o}`" for o in facts.overrides) or "none"
    rows = [
        ("task", params.task),
        ("source", params.source.kind),
        ("objects", objects),
        ("model", model),
        ("parameters", f"`{facts.params_path}`"),
        ("overrides", overrides),
        ("git revision", f"`{facts.revision}`" if facts.revision else "not in git"),
        ("DVC", facts.recorded),
    ]
    return ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows]]


def _models(params: Params, reports: dict[str, Report]) -> list[str]:
    """The net and every baseline in one table, the best by the task's metric marked."""
    target = targets.get(params.task)
    scored: list[tuple[str, Report]] = []
    if "evaluate" in reports:
        scored.append((f"net: {params.train.describe()}", reports["evaluate"]))
    scored += list((reports.get("baselines") or {}).get("models", {}).items())
    title = f"## Models on the test split (best by {target.best_by})"
    if not scored:
        return [title, "", "No model was scored in this run."]
    values = [_number(scores.get(target.best_by)) for _, scores in scored]
    known = [v for v in values if v is not None]
    best = max(known) if known else None
    rows = []
    for (name, scores), value in zip(scored, values):
        shown = f"**{name}** (best)" if best is not None and value == best else name
        figures = {target.best_by: scores.get(target.best_by), **target.headline(scores)}
        rows.append({"model": shown, **{k: fmt(v) for k, v in figures.items()}})
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = [title, "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return lines


def _losses(reports: dict[str, Report]) -> list[str]:
    clean = reports.get("clean")
    if not clean:
        return ["## Data lost", "", "Not cleaned in this run."]
    dropped = clean["dropped_by_reason"]
    lines = [
        "## Data lost",
        "",
        f"Cleaning kept {clean['kept_rows']} of {clean['input_rows']} rows.",
    ]
    if dropped:
        lines += ["", "| reason | rows |", "| --- | --- |"]
        lines += [f"| {reason} | {n} |" for reason, n in dropped.items()]
    return lines


def _times(seconds: dict[str, float]) -> list[str]:
    each = [f"{stage} {s:.1f} s" for stage, s in seconds.items()]
    total = f"**total {sum(seconds.values()):.1f} s**"
    return ["## Time per stage", "", ", ".join([*each, total])]


def _outputs(params: Params, pictures: Path | None) -> list[str]:
    """Links to the outputs; the plots to this run's own copies when it made them.

    The other files are the latest run's (DVC versions them: ``dvc checkout`` at the
    run's git revision brings its own back).
    """
    lines = ["## Outputs", ""]
    for name in OUTPUTS:
        path = Path(getattr(params.paths, name))
        if name == "plots" and pictures is not None and pictures.is_dir():
            lines.append(
                f"- plots (this run's copies): [{pictures}]({pictures.resolve().as_uri()})"
            )
        elif path.exists():
            lines.append(f"- {name}: [{path}]({path.resolve().as_uri()})")
    return lines if len(lines) > 2 else [*lines, "None written."]


def _number(value: Any) -> float | None:
    """``value`` as a float to rank by; None for a missing score (or NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)
