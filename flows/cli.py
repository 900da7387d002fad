"""The ``skysort`` command line.

Parameters are validated before Prefect starts, so a typo fails in a second with
the key's dotted path, not after a server has been spun up.

Every command first turns Prefect's and DVC's usage analytics off for itself and its
children (a temporary Prefect server, ``dvc``), before Prefect is imported; set
``SKYSORT_ANALYTICS=1`` to leave them as Prefect and DVC would have them. The commands
that run flows start the temporary server themselves (without ``PREFECT_API_URL``),
tied to the command's process, so that even a ``kill -9`` of it ends the server too.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, MutableMapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from skysort.config import ConfigError, load_params
from skysort.model.tfenv import quiet_tensorflow_info
from skysort.pipeline.registry import NAMES as STAGES
from skysort.sources.urls import redact_text, redact_url

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="skysort: SDSS survey -> cleaned dataset -> trained, evaluated classifier.",
)

ANALYTICS_OFF: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the Prefect server's usage telemetry
    "DO_NOT_TRACK": "1",  # Prefect's client-side (SDK) telemetry
    "DVC_NO_ANALYTICS": "1",
}
ANALYTICS_OPT_IN = "SKYSORT_ANALYTICS"


def turn_analytics_off(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Set :data:`ANALYTICS_OFF` unless ``SKYSORT_ANALYTICS`` opts in; True if it did."""
    if environ.get(ANALYTICS_OPT_IN, "").strip().lower() in ("1", "true", "yes"):
        return False
    environ.update(ANALYTICS_OFF)
    return True


@app.callback()
def _before_every_command() -> None:
    # Here, not at import: the console script calls `app`, and no command has imported
    # Prefect yet, so Prefect, its temporary server and dvc all start with these settings.
    turn_analytics_off()


StageName = Enum("StageName", {s: s for s in STAGES}, type=str)  # type: ignore[misc]

ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="parameter file")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="override a parameter: dotted.key=value (repeatable)"),
]


def start_tied_temporary_server(*modules: str) -> Callable[[], object]:
    """Without PREFECT_API_URL: start the temporary server, ended with this process.

    Even a SIGKILL of this process ends it (:mod:`skysort.tasks.temporary_server`).
    ``modules`` are imported while the server boots; call the returned function before
    the first flow run (it waits for the server, and raises if it could not start).
    """
    from skysort.tasks.temporary_server import start_while_importing

    return start_while_importing(modules)


KERAS = ("skysort.model.build",)
"""What a run that trains or classifies imports anyway: Keras, imported while the server boots."""
NEEDS_KERAS = ("train", "evaluate", "predict")


def _load(params: Path, overrides: list[str] | None):
    try:
        return load_params(params, overrides or [])
    except ConfigError as exc:
        typer.secho(f"error: {redact_text(str(exc))}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def _fail(exc: BaseException) -> None:
    message = redact_text(f"{type(exc).__name__}: {exc}")  # a URL's password stays hidden
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1) from None


@app.command()
def run(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    record: Annotated[bool, typer.Option(help="record outputs in DVC afterwards")] = True,
) -> None:
    """Run the whole pipeline as one Prefect flow, then record the outputs in DVC."""
    _load(params, set_)
    quiet_tensorflow_info()
    try:
        server_up = start_tied_temporary_server("skysort.flows.pipeline", *KERAS)
        from skysort.flows.pipeline import pipeline

        server_up()
        result = pipeline(params_path=str(params), overrides=set_ or [], record=record)
    except Exception as exc:  # noqa: BLE001  (the flow run already logged the traceback)
        _fail(exc)
    typer.echo(json.dumps(result, indent=2))


@app.command()
def stage(
    name: Annotated[StageName, typer.Argument(help="the stage to run")],
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
) -> None:
    """Run one stage as its own Prefect flow run (this is what dvc.yaml calls)."""
    _load(params, set_)
    quiet_tensorflow_info()
    try:
        server_up = start_tied_temporary_server(
            "skysort.flows.stage", *(KERAS if name.value in NEEDS_KERAS else ())
        )
        from skysort.flows.stage import stage as stage_flow

        server_up()
        stage_flow(name=name.value, params_path=str(params), overrides=set_ or [])
    except Exception as exc:  # noqa: BLE001
        _fail(exc)


@app.command()
def predict(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    rev: Annotated[
        str | None,
        typer.Option(help="use the model (and its contract) of this git revision, through DVC"),
    ] = None,
) -> None:
    """Classify the objects of params.yaml's `predict:` section with the trained model."""
    overrides = list(set_ or [])
    loaded = _load(params, overrides)
    quiet_tensorflow_info()
    try:
        if rev is not None:
            overrides += _model_of_revision(rev, loaded)
        server_up = start_tied_temporary_server("skysort.flows.predict", *KERAS)
        from skysort.flows.predict import predict as predict_flow

        server_up()
        result = predict_flow(params_path=str(params), overrides=overrides)
    except Exception as exc:  # noqa: BLE001  (the flow run already logged the traceback)
        _fail(exc)
    typer.echo(json.dumps(result, indent=2))


def _model_of_revision(rev: str, params: Any) -> list[str]:
    """Fetch the model and contract of git revision ``rev`` with ``dvc get``; overrides to use them."""
    import subprocess
    import sys
    import tempfile

    scratch = Path(".dvc/tmp")  # inside the project, as output paths must be
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"skysort-model-{rev[:12]}-", dir=scratch))
    overrides = []
    for key in ("model", "contract"):
        path = getattr(params.paths, key)
        out = folder / Path(path).name
        done = subprocess.run(
            [sys.executable, "-m", "dvc", "get", ".", str(path), "--rev", rev, "-o", str(out)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"dvc get {path} --rev {rev} failed: {done.stderr.strip()}")
        overrides.append(f"paths.{key}={out}")
    return overrides


@app.command()
def deploy(
    params: ParamsOpt = Path("params.yaml"),
    check: Annotated[
        bool,
        typer.Option("--check", help="only check prefect.yaml against params; exit 1 if stale"),
    ] = False,
) -> None:
    """Write prefect.yaml from params.yaml's schedule, create the work pool, register the deployment."""
    loaded = _load(params, None)
    from skysort.flows import deployment

    root = params.resolve().parent
    if check:
        drift = deployment.prefect_yaml_drift(root, loaded, params.name)
        if drift:
            typer.secho(f"error: {drift}; run `skysort deploy`", fg=typer.colors.RED, err=True)
            raise typer.Exit(1)
        typer.echo(f"{deployment.PREFECT_FILE} agrees with {params.name}")
        return
    if hint := deployment.no_server_hint():
        typer.secho(f"note: {hint}", fg=typer.colors.YELLOW, err=True)
    try:
        if deployment.sync_prefect_yaml(root, loaded, params.name):
            typer.echo(f"rewrote {deployment.PREFECT_FILE} from {params.name}")
        if deployment.ensure_work_pool(loaded.schedule.work_pool):
            typer.echo(f"created process work pool {loaded.schedule.work_pool!r}")
        deployment.register(root, loaded)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    s = loaded.schedule
    typer.echo(
        f"registered {deployment.deployment_name(loaded)} (cron {s.cron!r}, {s.timezone})\n"
        f"start a worker:  prefect worker start --pool {s.work_pool}\n"
        f"run it now:      prefect deployment run {deployment.deployment_name(loaded)}"
    )


@app.command()
def serve(params: ParamsOpt = Path("params.yaml")) -> None:
    """Serve the pipeline on params.yaml's cron schedule from this process (no worker needed)."""
    loaded = _load(params, None)
    from skysort.flows import deployment

    if hint := deployment.no_server_hint():
        typer.secho(f"note: {hint}", fg=typer.colors.YELLOW, err=True)
    start_tied_temporary_server()()
    deployment.serve(loaded, str(params))


@app.command("params")
def show_params(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Validate the parameters and print them with every default filled in."""
    loaded = _load(params, set_)
    shown = loaded.model_dump(mode="json")
    shown["source"]["skyserver"]["base_url"] = redact_url(loaded.source.skyserver.base_url)
    typer.echo(yaml.safe_dump(shown, sort_keys=False))


@app.command()
def stages() -> None:
    """List the stages in DAG order."""
    typer.echo("\n".join(STAGES))


@app.command()
def deps(
    name: Annotated[StageName | None, typer.Argument(help="one stage (default: all)")] = None,
    write: Annotated[
        bool, typer.Option("--write", help="rewrite the code deps of every stage in dvc.yaml")
    ] = False,
) -> None:
    """Print the source files each stage's code imports: its code deps in dvc.yaml."""
    from skysort.pipeline import codedeps, registry

    found = codedeps.deps_by_stage(registry.STAGES)
    if write:
        path = codedeps.ROOT / "dvc.yaml"
        path.write_text(codedeps.sync_deps(path.read_text(), found))
        typer.echo(f"updated the code deps in {path}")
        return
    for stage, files in found.items():
        if name is None or stage == name.value:
            typer.echo(f"{stage}:\n" + "".join(f"  - {f}\n" for f in files), nl=False)


@app.command()
def compare(
    only: Annotated[
        list[str] | None, typer.Option("--only", help="run just this grid entry (repeatable)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="list the runs and their overrides")] = False,
    out: Annotated[Path, typer.Option(help="where the table and curves go")] = Path(
        "reports/compare"
    ),
) -> None:
    """Run the study grid (params.yaml `compare`) as DVC experiments and print one table."""
    from skysort.pipeline.compare import (
        check_variants,
        expand_grid,
        format_table,
        run_study,
        target_names,
    )

    params_path = Path("params.yaml")
    params = _load(params_path, None)
    variants = expand_grid(params.compare)
    if only:
        unknown = sorted(set(only) - {v.name for v in variants})
        if unknown:
            typer.secho(
                f"error: --only {', '.join(unknown)}: not in the grid; runs are "
                f"{', '.join(v.name for v in variants)}",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(2)
        variants = [v for v in variants if v.name in only]
    try:
        check_variants(yaml.safe_load(params_path.read_text()), variants, str(params_path))
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if dry_run:
        for v in variants:
            typer.echo(f"{v.name}: dvc exp run -n {v.name} {' '.join(v.set_args())}")
        return
    from skysort.pipeline.versioning import is_dvc_project

    if not is_dvc_project(Path.cwd()):
        typer.secho(
            "error: skysort compare runs DVC experiments: run it in the project root "
            "(a git repo with .dvc/ and dvc.yaml)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    logging.getLogger("skysort").setLevel(logging.INFO)
    rows = run_study(Path.cwd(), params, variants, out)
    typer.echo(format_table(rows, target_names(params)))
    typer.echo(
        f"\n(table: {out / 'compare.md'}, curves: {out / 'curves.png'}; "
        "`dvc exp show` lists the runs, `dvc plots diff <runs>` overlays their curves)"
    )
    if any(r["status"] != "ok" for r in rows):
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
