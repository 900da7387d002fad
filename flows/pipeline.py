"""The whole DAG as one Prefect flow: ``skysort run`` or ``python -m skysort.flows.pipeline``."""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, get_run_logger

from skysort.config import load_params
from skysort.flows import sharded
from skysort.tasks import stages
from skysort.tasks.monitoring import pipeline_run_name, tag_flow_run
from skysort.tasks.versioning import record_in_dvc


@flow(name="skysort-pipeline", flow_run_name=pipeline_run_name, log_prints=True)
def pipeline(
    params_path: str = "params.yaml", overrides: list[str] | None = None, record: bool = True
) -> dict:
    """Run every stage in order, then record the outputs in DVC.

    With ``overrides`` the outputs no longer match ``params.yaml``, so they are not
    recorded in DVC (``dvc repro`` would rightly want to rerun).
    """
    params = load_params(params_path, overrides or [])
    tag_flow_run(params)
    stages.query(params)
    if params.runner.kind == "dask":
        sharded.cutouts(params)
        sharded.clean(params)
    else:
        stages.cutouts(params)
        stages.clean(params)
    stages.impute(params)
    stages.balance(params)
    stages.baselines(params)
    stages.train(params)
    metrics = stages.evaluate(params)
    if not record:
        pass
    elif overrides:
        get_run_logger().warning("not recording in DVC: --set overrides differ from params.yaml")
    else:
        record_in_dvc(Path(params_path).resolve().parent, params.record)
    return {k: metrics[k] for k in ("accuracy", "f1_macro")}


if __name__ == "__main__":
    pipeline(params_path=sys.argv[1] if len(sys.argv) > 1 else "params.yaml")
