"""The Prefect task runner a flow's sharded work uses, chosen by the ``runner`` params."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.settings import get_current_settings
from prefect.task_runners import TaskRunner

from skysort.config import Params, Runner


def dask_task_runner(runner: Runner) -> TaskRunner:
    """prefect-dask's ``DaskTaskRunner``: the scheduler at ``runner.address``, else a LocalCluster.

    The LocalCluster listens on 127.0.0.1 only (or nowhere, with ``processes: false``); it starts with the flow that uses it
    and is torn down when that flow run ends.
    """
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise RuntimeError(
            "runner.kind: dask needs prefect-dask and distributed: "
            'pip install -e ".[dask]" (or set runner.kind: local)'
        ) from exc
    api_url = get_current_settings().api.url
    if runner.address:
        if not api_url:
            raise RuntimeError(
                f"runner.address {runner.address}: the Dask workers must report to the same "
                "Prefect server as this flow run, but this one runs on a temporary server "
                "that they cannot reach; start a server and set PREFECT_API_URL here and "
                "on the workers (docs/scaling.md)"
            )
        return DaskTaskRunner(address=runner.address)
    cluster_kwargs: dict[str, Any] = {
        "n_workers": runner.n_workers,
        "threads_per_worker": runner.threads_per_worker,
        "processes": runner.processes,
        "dashboard_address": "127.0.0.1:0",
    }
    if runner.processes:  # threads in this process talk in-process, with no address at all
        cluster_kwargs["host"] = "127.0.0.1"
        # Without PREFECT_API_URL each worker process would start a temporary server of
        # its own; point them at this process's, which listens on 127.0.0.1.
        cluster_kwargs["env"] = {"PREFECT_API_URL": str(api_url or _temporary_server_url())}
    return DaskTaskRunner(cluster_kwargs=cluster_kwargs)


def _temporary_server_url() -> str:
    """The API URL of the temporary server this process started (or starts now)."""
    with get_client(sync_client=True) as client:
        return str(client.api_url)


def with_absolute_paths(params: Params, root: Path | None = None) -> Params:
    """The same parameters with every path absolute (workers may run in another folder)."""
    return params.model_copy(update={"paths": params.paths.under(root or Path.cwd())})
