"""Prefect tasks built from :mod:`skysort.registry`: one per stage, plus shard tasks."""
