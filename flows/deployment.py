"""Scheduled runs of the whole pipeline: ``prefect.yaml`` + a process worker, or ``skysort serve``.

``params.yaml``'s ``schedule`` section is the one source. ``prefect.yaml`` is generated
from it (:func:`render_prefect_yaml`): ``skysort deploy`` rewrites it before registering,
``skysort deploy --check`` and a test fail when the committed file disagrees, so the
two cannot silently differ.

Anyone who can reach the Prefect API can start a run of a deployment with parameters of
their choosing, so a deployment run (:func:`check_deployment_run`) reads only the
deployment's own parameter file and accepts only the overrides that file's
``schedule.allowed_overrides`` lists.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from skysort.config import Params, load_params, parse_override
from skysort.data.atomic import atomic_path

log = logging.getLogger(__name__)

FLOW_NAME = "skysort-pipeline"
"""The pipeline flow's name (flows/pipeline.py uses it); deployments are ``FLOW_NAME/<name>``."""
ENTRYPOINT = "flows/pipeline.py:pipeline"
PREDICT_ENTRYPOINT = "flows/predict.py:predict"
PREFECT_FILE = "prefect.yaml"
DEPLOYMENT_TAGS = ("skysort", "scheduled")
SERVE_SUFFIX = "-serve"

_HEADER = """\
# Generated from params.yaml (section `schedule`) by `skysort deploy`: do not edit by hand.
# Change params.yaml, then run `skysort deploy` (rewrites this file, registers the deployment).
# `skysort deploy --check` and tests/test_deployment.py fail when the two disagree.
"""


def deployment_name(params: Params) -> str:
    """Full name of the work-pool deployment, as ``prefect deployment run`` takes it."""
    return f"{FLOW_NAME}/{params.schedule.deployment}"


def served_name(params: Params) -> str:
    """The deployment ``skysort serve`` registers (a different name: it has no work pool)."""
    return f"{params.schedule.deployment}{SERVE_SUFFIX}"


def _description(params: Params) -> str:
    s = params.schedule
    return f"The whole skysort pipeline on cron {s.cron!r} ({s.timezone}), parameters from params.yaml."


def render_prefect_yaml(params: Params, params_file: str = "params.yaml") -> str:
    """The text of ``prefect.yaml`` for these parameters: the pipeline's and predict's deployments.

    No ``pull`` steps are given, so ``prefect deploy`` records the directory it runs in as
    the flow's working directory: a worker runs the flow there, next to ``params.yaml``.
    """
    s = params.schedule
    doc: dict[str, Any] = {
        "name": "skysort",
        "build": None,
        "push": None,
        "pull": None,
        "deployments": [
            {
                "name": s.deployment,
                "description": _description(params),
                "entrypoint": ENTRYPOINT,
                "parameters": {"params_path": params_file, "overrides": [], "record": True},
                "tags": list(DEPLOYMENT_TAGS),
                "work_pool": {"name": s.work_pool, "work_queue_name": None, "job_variables": {}},
                "schedules": [{"cron": s.cron, "timezone": s.timezone, "active": True}],
            },
            {
                "name": params.predict.deployment,
                "description": f"skysort predict on cron {params.predict.cron!r} "
                f"({s.timezone}): the trained model on the objects of params.yaml's predict.",
                "entrypoint": PREDICT_ENTRYPOINT,
                "parameters": {"params_path": params_file, "overrides": []},
                "tags": [*DEPLOYMENT_TAGS, "predict"],
                "work_pool": {"name": s.work_pool, "work_queue_name": None, "job_variables": {}},
                "schedules": [
                    {"cron": params.predict.cron, "timezone": s.timezone, "active": True}
                ],
            },
        ],
    }
    return _HEADER + yaml.safe_dump(doc, sort_keys=False, width=100)


def prefect_yaml_drift(root: Path, params: Params, params_file: str = "params.yaml") -> str | None:
    """Why ``root/prefect.yaml`` disagrees with the parameters, or ``None`` when it agrees."""
    path = Path(root) / PREFECT_FILE
    if not path.is_file():
        return f"{path} is missing"
    if path.read_text() == render_prefect_yaml(params, params_file):
        return None
    try:
        found = yaml.safe_load(path.read_text())["deployments"][0]
        found_schedule = found["schedules"][0]
        got = (found_schedule["cron"], found_schedule["timezone"], found["work_pool"]["name"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return f"{path} is not the file `skysort deploy` writes"
    s = params.schedule
    want = (s.cron, s.timezone, s.work_pool)
    if got != want:
        return (
            f"{path} has cron {got[0]!r} ({got[1]}) on pool {got[2]!r}, but {params_file} "
            f"says cron {want[0]!r} ({want[1]}) on pool {want[2]!r}"
        )
    return f"{path} differs from what {params_file} generates"


def sync_prefect_yaml(root: Path, params: Params, params_file: str = "params.yaml") -> bool:
    """Rewrite ``root/prefect.yaml`` from the parameters (atomically); True if it changed."""
    drift = prefect_yaml_drift(root, params, params_file)
    if drift is None:
        return False
    with atomic_path(Path(root) / PREFECT_FILE) as tmp:
        tmp.write_text(render_prefect_yaml(params, params_file))
    log.info("rewrote prefect.yaml: %s", drift)
    return True


class DeploymentRunError(ValueError):
    """A deployment run asked for parameters its deployment does not allow."""


def refuse_disallowed(params_path: str, overrides: list[str], deployment_params_path: str) -> None:
    """Raise :class:`DeploymentRunError` unless a deployment run's parameters are allowed.

    ``params_path`` must be the deployment's own file (``deployment_params_path``), and
    every override's key must be listed in that file's ``schedule.allowed_overrides``.
    """
    if Path(params_path) != Path(deployment_params_path):
        raise DeploymentRunError(
            f"params_path={params_path!r} is not allowed in a deployment run: it reads its "
            f"deployment's own parameter file {deployment_params_path!r}"
        )
    allowed = load_params(params_path).schedule.allowed_overrides
    refused = [key for key, _ in map(parse_override, overrides) if key not in allowed]
    if refused:
        raise DeploymentRunError(
            f"override(s) not allowed in a deployment run: {', '.join(refused)}; allowed: "
            f"{', '.join(allowed) or 'none'} (schedule.allowed_overrides in {params_path})"
        )


def check_deployment_run(params_path: str, overrides: list[str]) -> None:
    """In a run of a deployment, refuse parameters it does not allow; elsewhere do nothing."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.runtime import deployment as current

    if not current.id:
        return  # `skysort run`, a test, a direct call: the caller owns the machine
    with get_client(sync_client=True) as client:
        defaults = client.read_deployment(UUID(str(current.id))).parameters or {}
    refuse_disallowed(params_path, overrides, defaults.get("params_path", "params.yaml"))


def no_server_hint() -> str | None:
    """A hint when no Prefect API is configured (runs would go to a temporary server)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    return (
        "PREFECT_API_URL is not set, so Prefect uses a temporary server: start one with "
        "`prefect server start --host 127.0.0.1 --port 4200` and "
        "`export PREFECT_API_URL=http://127.0.0.1:4200/api` to keep and watch the runs"
    )


def ensure_work_pool(name: str) -> bool:
    """Create the process work pool ``name`` unless it exists; True if it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(
                WorkPoolCreate(name=name, type="process", base_job_template=template)
            )
            log.info("created process work pool %r", name)
            return True
    if pool.type != "process":
        raise ValueError(
            f"work pool {name!r} exists with type {pool.type!r}, not 'process': "
            "choose another schedule.work_pool in params.yaml"
        )
    return False


def register(root: Path, params: Params) -> None:
    """``prefect deploy`` the deployment in ``root/prefect.yaml`` (its pool must exist)."""
    cmd = [
        sys.executable, "-m", "prefect", "--no-prompt", "deploy",
        "--name", params.schedule.deployment, "--name", params.predict.deployment,
        "--prefect-file", PREFECT_FILE,
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`prefect deploy` failed in {root} (exit {proc.returncode}):\n"
            f"{proc.stdout.strip()}\n{proc.stderr.strip()}".rstrip()
        )
    log.info("registered deployment %s", deployment_name(params))


def serve(params: Params, params_file: str = "params.yaml") -> None:
    """Register the served deployment with the cron schedule and run its flows from here.

    Blocks until interrupted; runs execute as subprocesses in the current directory.
    On shutdown Prefect pauses the schedule (no process is left to run it).
    """
    from prefect.schedules import Cron

    from skysort.flows.pipeline import pipeline

    s = params.schedule
    pipeline.serve(
        name=served_name(params),
        schedules=[Cron(s.cron, timezone=s.timezone)],
        parameters={"params_path": params_file, "overrides": [], "record": True},
        tags=[*DEPLOYMENT_TAGS, "served"],
        description=_description(params),
    )
