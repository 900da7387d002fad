"""Stage ``query``: write the catalog (one row per object) from the configured source."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from skysort.config import Data, Params, Query, Source
from skysort.data import atomic
from skysort.data.schema import CATALOG_COLUMNS, check_catalog, conform
from skysort.pipeline.stage import Artifact, Markdown, Stage, Table, counts_table

log = logging.getLogger(__name__)


class EmptyCatalogError(ValueError):
    """The source returned no objects: nothing downstream can run."""


def query(
    source_catalog: Path,
    out_catalog: Path,
    *,
    source: Source,
    query: Query,
    data: Data,
    seed: int,
    task: str = "multiclass",
) -> dict[str, Any]:
    """Fetch, simulate or read the catalog and write it atomically to ``out_catalog``.

    ``source_catalog`` is the user's file, read only by the files source (which takes
    every row: ``query.*`` limits apply to SkyServer and the simulated survey).
    Multilabel from SkyServer: the query joins Galaxy Zoo's votes, and the ``gz_*``
    labels are derived from them (:mod:`skysort.sources.skyserver.galaxyzoo`).
    """
    details: dict[str, Any] = {}
    if source.kind == "files":
        from skysort.sources.files.catalog import load_catalog

        # the multilabel task's targets are data.labels, whatever the source
        labels = data.labels if task == "multilabel" else source.files.label_columns
        catalog, details = load_catalog(source_catalog, source.files, data, labels)
    elif source.kind == "synthetic":
        from skysort.sources.synthetic import simulate_catalog

        catalog = simulate_catalog(query, data, source.synthetic, seed)
    else:
        from skysort.sources.skyserver.query import query_catalog

        zoo = task == "multilabel" and query.sql_file is None
        catalog = query_catalog(query, data, source.skyserver, zoo=zoo)
        if zoo and catalog is not None and len(catalog):
            from skysort.sources.skyserver.galaxyzoo import zoo_labels

            catalog = zoo_labels(catalog, source.skyserver)
    if catalog is None or len(catalog) == 0:
        raise EmptyCatalogError(
            f"{source_catalog} has no rows"
            if source.kind == "files"
            else f"the {source.kind} source returned no objects for query "
            f"(ra {query.ra_min}..{query.ra_max}, dec {query.dec_min}..{query.dec_max}, "
            f"r {query.r_min}..{query.r_max}): widen the query.* limits"
        )
    catalog = conform(catalog, CATALOG_COLUMNS)
    check_catalog(catalog, f"catalog from the {source.kind} source")
    atomic.write_parquet(out_catalog, catalog)
    counts = catalog["class"].fillna("unknown").value_counts()
    report = {
        "source": source.kind,
        "rows": len(catalog),
        "class_counts": {str(k): int(v) for k, v in counts.items()},
        "provenance": str(catalog["provenance"].iloc[0]),
        **details,
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
    artifacts: list[Artifact] = [
        Table(
            "query-class-mix",
            counts_table(report["class_counts"], "class"),
            f"{report['rows']} objects from {report['source']}",
        )
    ]
    if "file" in report:
        artifacts.append(
            Markdown("query-file", _file_summary(report), "What was read from the file")
        )
    return artifacts


def _file_summary(report: dict[str, Any]) -> str:
    """The files source's report as a person reads it: ids, what was odd, what is missing."""
    lines = [f"# {report['file']}", "", f"- {report['rows']} rows; ids: {report['ids']}"]
    lines += [f"- {note}" for note in report["notes"]]
    if report["unused_columns"]:
        lines.append(f"- columns not used: {', '.join(report['unused_columns'])}")
    for feature, problems in report["missing_features"].items():
        for kind, where in problems.items():
            lines.append(f"- `{feature}` {kind}: {where['rows']} rows (first: {where['first']})")
    return "\n".join(lines)


STAGE = Stage(
    name="query",
    reads=("source_catalog",),
    writes=("catalog",),
    params=("seed", "task", "source", "query", "data.features", "data.classes", "data.labels"),
    function=query,
    describe=lambda p: f"query: {p.query.n_objects} objects from {p.source.kind}",
    summarize=_summarize,
    retry_delays_s=(10, 60),
)
