"""The predict flow: the trained model on the configured objects, as the scheduled deployment runs it."""

from __future__ import annotations

from typing import Any

from prefect import flow

from skysort.config import load_params
from skysort.flows.stage import run_in_flow
from skysort.tasks.monitoring import tag_flow_run

PREDICT_FLOW_NAME = "skysort-predict"
"""The predict flow's name; its deployment is ``PREDICT_FLOW_NAME/<predict.deployment>``."""


@flow(name=PREDICT_FLOW_NAME, flow_run_name="predict: {params_path}")
def predict(params_path: str = "params.yaml", overrides: list[str] | None = None) -> dict[str, Any]:
    """Classify the objects of ``predict:`` with the trained model; the predict report."""
    params = load_params(params_path, overrides or [])
    tag_flow_run(params, "stage:predict")
    report, _ = run_in_flow("predict", params)
    return {k: report[k] for k in ("classified", "unclassified", "needs_spectrum", "counts")}
