"""Prefect tasks: one per stage, each a thin wrapper around :func:`skysort.stages.run_stage`."""
