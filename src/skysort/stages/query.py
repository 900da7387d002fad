"""Stage ``query``: write the catalog (one row per object) from the configured source."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from skysort import io
from skysort.config import Data, Params, Query, Source
from skysort.schema import CATALOG_COLUMNS, check_catalog, conform
from skysort.stage import Artifact, Stage, Table, counts_table

log = logging.getLogger(__name__)


class EmptyCatalogError(ValueError):
    """The source returned no objects: nothing downstream can run."""


def query(
    out_catalog: Path,
    *,
    source: Source,
    query: Query,
    data: Data,
    seed: int,
    task: str = "multiclass",
) -> dict[str, Any]:
    """Fetch or simulate the catalog and write it atomically to ``out_catalog``.

    Multilabel from SkyServer: the query joins Galaxy Zoo's votes, and the ``gz_*``
    labels are derived from them (:mod:`skysort.galaxyzoo`).
    """
    if source.kind == "synthetic":
        from skysort.synthetic import simulate_catalog

        catalog = simulate_catalog(query, data, source.synthetic, seed)
    else:
        from skysort.skyserver import query_catalog

        zoo = task == "multilabel" and query.sql_file is None
        catalog = query_catalog(query, data, source.skyserver, zoo=zoo)
        if zoo and catalog is not None and len(catalog):
            from skysort.galaxyzoo import zoo_labels

            catalog = zoo_labels(catalog, source.skyserver)
    if catalog is None or len(catalog) == 0:
        raise EmptyCatalogError(
            f"the {source.kind} source returned no objects for query "
            f"(ra {query.ra_min}..{query.ra_max}, dec {query.dec_min}..{query.dec_max}, "
            f"r {query.r_min}..{query.r_max}): widen the query.* limits"
        )
    catalog = conform(catalog, CATALOG_COLUMNS)
    check_catalog(catalog, f"catalog from the {source.kind} source")
    io.write_parquet(out_catalog, catalog)
    counts = catalog["class"].fillna("unknown").value_counts()
    report = {
        "source": source.kind,
        "rows": len(catalog),
        "class_counts": {str(k): int(v) for k, v in counts.items()},
        "provenance": str(catalog["provenance"].iloc[0]),
    }
    log.info(
        "catalog: %d objects from %s -> %s (%s)",
        len(catalog),
        source.kind,
        out_catalog,
        report["class_counts"],
    )
    return report


def _summarize(report: dict[str, Any], params: Params) -> list[Artifact]:
    return [
        Table(
            "query-class-mix",
            counts_table(report["class_counts"], "class"),
            f"{report['rows']} objects from {report['source']}",
        )
    ]


STAGE = Stage(
    name="query",
    reads=(),
    writes=("catalog",),
    params=("seed", "task", "source", "query", "data.features", "data.classes"),
    function=query,
    describe=lambda p: f"query: {p.query.n_objects} objects from {p.source.kind}",
    summarize=_summarize,
    retry_delays_s=(10, 60),
)
