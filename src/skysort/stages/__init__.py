"""The stages, wired to their parameters and paths.

Each stage is one function with explicit input and output paths and only the
parameter sections it reads; :func:`run_stage` is the one place that unpacks
:class:`~skysort.config.Params` for them. The Prefect tasks, the CLI and so
``dvc.yaml`` all go through it, so every way of running a stage runs the same code.
"""

from __future__ import annotations

from typing import Any

from skysort.config import STAGES, Params
from skysort.progress import Progress


def run_stage(name: str, params: Params, progress: Progress | None = None) -> dict[str, Any]:
    """Run one stage by name; returns its report (the figures a person wants to see)."""
    p = params.paths
    seed = params.seed
    if name == "query":
        from skysort.stages.query import query

        return query(
            p.catalog, source=params.source, query=params.query, data=params.data, seed=seed
        )
    if name == "cutouts":
        from skysort.stages.cutouts import cutouts

        return cutouts(
            p.catalog,
            p.cutouts_dir,
            p.manifest,
            source=params.source,
            data=params.data,
            cutouts=params.cutouts,
            seed=seed,
            min_pixel_std=params.clean.min_pixel_std,
            progress=progress,
        )
    if name == "clean":
        from skysort.stages.clean import clean

        return clean(
            p.catalog,
            p.manifest,
            p.cutouts_dir,
            p.dataset,
            p.images,
            p.clean_report,
            data=params.data,
            clean=params.clean,
            seed=seed,
        )
    if name == "impute":
        from skysort.stages.impute import impute

        return impute(
            p.dataset, p.labels, p.impute_report, data=params.data, impute=params.impute, seed=seed
        )
    if name == "balance":
        from skysort.stages.balance import balance

        return balance(
            p.labels,
            p.train_index,
            p.balance_report,
            data=params.data,
            balance=params.balance,
            seed=seed,
        )
    if name == "baselines":
        from skysort.stages.baselines import baselines

        return baselines(
            p.dataset,
            p.labels,
            p.baselines_report,
            data=params.data,
            baselines=params.baselines,
            seed=seed,
        )
    if name == "train":
        from skysort.stages.train import train

        return train(
            p.dataset,
            p.images,
            p.labels,
            p.train_index,
            p.model,
            p.dvclive,
            p.train_report,
            data=params.data,
            train=params.train,
            seed=seed,
        )
    if name == "evaluate":
        from skysort.stages.evaluate import evaluate

        return evaluate(
            p.dataset,
            p.images,
            p.labels,
            p.model,
            p.train_report,
            p.metrics,
            p.plots,
            p.predictions,
            data=params.data,
            train=params.train,
            evaluate=params.evaluate,
        )
    raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
