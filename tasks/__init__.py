"""Prefect tasks built from :mod:`skysort.pipeline.registry`: one per stage, plus shard tasks."""
