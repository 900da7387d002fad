"""Stage ``query``: write the catalog (one row per object) from the configured source."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from skysort import targets
from skysort.config import Data, Query, Source
from skysort.data import atomic
from skysort.data.schema import CATALOG_COLUMNS, check_catalog, conform
from skysort.pipeline.stage import Stage
from skysort.pipeline.summaries import query_summary

log = logging.getLogger(__name__)


class EmptyCatalogError(ValueError):
    """The source returned no objects: nothing downstream can run."""


def write_catalog(
    *,
    source_catalog: Path,
    catalog: Path,
    source: Source,
    query: Query,
    data: Data,
    seed: int,
    task: str,
) -> dict[str, Any]:
    """Fetch, simulate or read the catalog and write it atomically to ``catalog``.

    ``source_catalog`` is the user's file, read only by the files source (which takes
    every row: ``query.*`` limits apply to SkyServer and the simulated survey).
    Multilabel from SkyServer: the query joins Galaxy Zoo's votes, and the ``gz_*``
    labels are derived from them (:mod:`skysort.sources.skyserver.galaxyzoo`); the
    simulated survey then simulates those votes, and they are read the same way.
    """
    target = targets.get(task)
    details: dict[str, Any] = {}
    if source.kind == "files":
        from skysort.sources.files.catalog import load_catalog

        labels = target.file_label_columns(source, data)
        table, details = load_catalog(source_catalog, source.files, data, labels)
    elif source.kind == "synthetic":
        from skysort.sources.synthetic import simulate_catalog

        table = simulate_catalog(query, data, source.synthetic, seed, zoo=target.galaxy_zoo)
        if target.galaxy_zoo:
            from skysort.sources.skyserver.galaxyzoo import zoo_labels

            table = zoo_labels(table, source.skyserver)
    else:
        from skysort.sources.skyserver.query import query_catalog

        zoo = target.galaxy_zoo and query.sql_file is None
        table = query_catalog(query, data, source.skyserver, zoo=zoo)
        if zoo and table is not None and len(table):
            from skysort.sources.skyserver.galaxyzoo import zoo_labels

            table = zoo_labels(table, source.skyserver)
    if table is None or len(table) == 0:
        raise EmptyCatalogError(
            f"{source_catalog} has no rows"
            if source.kind == "files"
            else f"the {source.kind} source returned no objects for query "
            f"(ra {query.ra_min}..{query.ra_max}, dec {query.dec_min}..{query.dec_max}, "
            f"r {query.r_min}..{query.r_max}): widen the query.* limits"
        )
    table = conform(table, CATALOG_COLUMNS)
    check_catalog(table, f"catalog from the {source.kind} source")
    atomic.write_parquet(catalog, table)
    counts = table["class"].fillna("unknown").value_counts()
    report = {
        "task": task,
        "source": source.kind,
        "rows": len(table),
        "class_counts": {str(k): int(v) for k, v in counts.items()},
        "provenance": str(table["provenance"].iloc[0]),
        **details,
    }
    log.info(
        "catalog: %d objects from %s -> %s (%s)",
        len(table),
        source.kind,
        catalog,
        report["class_counts"],
    )
    return report


STAGE = Stage(
    name="query",
    reads=("source_catalog",),
    writes=("catalog",),
    params=("seed", "task", "source", "query", "data.features", "data.classes", "data.labels"),
    function=write_catalog,
    describe=lambda p: f"query: {p.query.n_objects} objects from {p.source.kind}",
    summarize=query_summary,
    retry_delays_s=(10, 60),
)
