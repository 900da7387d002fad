"""Stage ``predict``: classify objects that have no spectrum with the trained model.

The objects (``predict:`` a region of the sky or a file of objects) are streamed in
batches of ``predict.batch_size``: each batch's cutouts are fetched or rendered, the
same feature and image checks as ``clean`` run, and the model's outputs are written
as one part of ``paths.predicted`` (Parquet, or CSV on request). Inputs are built
from the model's contract, not from today's ``data:`` section. Objects that cannot
be classified (no cutout, a missing feature, a blank image, not found) are listed
with their reason in ``paths.unclassified``; those below ``predict.min_confidence``
in ``paths.needs_spectrum``. Every row carries the model's identity (its file's MD5,
as DVC records it, or a digest of a model folder's files; the git revision and a hash
of the parameters). Any kind of model reads the same way (:mod:`skysort.model.saved`).

A killed run resumes: a batch whose part exists is not redone, and a part is
written (atomically) only when its batch is complete. A different model, objects or
setting starts the parts afresh. Beside the parts, names starting with ``_`` (which
Parquet readers skip, so the folder reads as one dataset): what the parts were made
from, each batch's unclassified objects, and the confidence histogram as a picture.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skysort import targets
from skysort.config import Clean, Cutouts, Data, Predict, Query, Source
from skysort.data import atomic
from skysort.data.cleaning import check_rows
from skysort.data.labels import feature_matrix, tabular_matrix
from skysort.model.contract import check_columns, contract_data, differences, read_contract
from skysort.model.tfenv import quiet_tensorflow_info
from skysort.pipeline.progress import Progress
from skysort.pipeline.stage import Stage
from skysort.pipeline.summaries import predict_summary

log = logging.getLogger(__name__)

RUN_FILE = "_run.json"
"""In ``paths.predicted``: what the parts there were made from (resume only that)."""
HISTOGRAM_FILE = "_confidence.png"
"""In ``paths.predicted``: the confidence histogram the summary shows."""
BINS = np.linspace(0, 1, 11)


def classify_objects(
    *,
    model: Path,
    contract: Path,
    predict_objects: Path,
    source_images: Path,
    predicted: Path,
    unclassified: Path,
    needs_spectrum: Path,
    predict_report: Path,
    predict: Predict,
    source: Source,
    query: Query,
    cutouts: Cutouts,
    min_pixel_std: float,
    seed: int,
    task: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Classify the objects ``predict`` names, batch by batch; write the parts and the lists."""
    quiet_tensorflow_info()
    from skysort.model.saved import load_saved, model_md5
    from skysort.sources.objects import objects_to_classify

    terms = read_contract(contract)
    for key, (saved, now) in differences(terms, task=task).items():
        log.warning("predict: the model was trained with %s %s, params say %s: the model's is "
                    "used", key, saved, now)  # fmt: skip
    target = targets.get(terms["task"])
    data = contract_data(terms, Data())
    net = load_saved(model)
    net.check(terms, model)
    objects = objects_to_classify(predict, source, query, data, seed, predict_objects,
                                  zoo=target.galaxy_zoo)  # fmt: skip
    if len(objects.rows):
        check_columns(terms, list(objects.catalog.columns), objects.described)
    else:
        log.warning("predict: no objects to classify (%s): the result is empty", objects.described)
    identity = {"model_md5": model_md5(model), "git_rev": _git_revision(),
                "params_hash": _params_hash(terms, predict, source, query, cutouts, seed)}  # fmt: skip
    fmt = predict.format
    _start_parts(predicted, {**identity, "objects": _fingerprint(objects), "format": fmt,
                             "batch_size": predict.batch_size})  # fmt: skip
    cache = predicted.parent / f".{predicted.name}.cutouts"
    clean = Clean(min_pixel_std=min_pixel_std)
    batches = [objects.rows[i : i + predict.batch_size]
               for i in range(0, len(objects.rows), predict.batch_size)]  # fmt: skip
    done = 0
    for k, rows in enumerate(batches):
        part = predicted / f"part-{k:05d}.{fmt}"
        if not part.exists():
            _classify_batch(net, target, terms, data, objects, rows, part, cache, source_images,
                            source, cutouts, clean, identity)  # fmt: skip
        done += len(rows)
        if progress is not None:
            progress(done, len(objects.rows))
    return _finish(objects, predicted, len(batches), fmt, predict, target, identity,
                   unclassified, needs_spectrum, predict_report)  # fmt: skip


def _classify_batch(
    net: Any, target: Any, terms: dict[str, Any], data: Any, objects: Any, rows: np.ndarray,
    part: Path, cache: Path, source_images: Path, source: Source, cutouts: Cutouts,
    clean: Clean, identity: dict[str, str],
) -> None:  # fmt: skip
    """Cutouts, checks and the model for one batch; its unclassified rows, then its part."""
    from skysort.sources.cutouts import cutout_rows
    from skysort.sources.objects import without_labels

    batch = without_labels(objects.catalog.iloc[rows], data)
    manifest = None  # a model that reads no image needs no cutout
    if "image" in terms["inputs"]:
        manifest = cutout_rows(objects.catalog, cache, source_images, source=source, data=data,
                               cutouts=cutouts, min_pixel_std=clean.min_pixel_std,
                               seed=objects.seed, rows=rows)  # fmt: skip
    reasons, images = check_rows(batch, manifest, cache, data=data, clean=clean, source=source,
                                 target=target)  # fmt: skip
    kept = batch.index[reasons.isna().to_numpy()]
    lost = batch.loc[reasons.notna().to_numpy(), ["objid", "ra", "dec"]]
    atomic.write_parquet(_lost_part(part),
                         lost.assign(reason=pd.array(reasons.dropna().tolist(), dtype="string")))  # fmt: skip
    table = batch.loc[kept, ["objid", "ra", "dec"]].reset_index(drop=True)
    if len(kept):
        size = terms["image_size"] if "image" in terms["inputs"] else 0
        stack = (
            np.stack([images[i] for i in kept])
            if size
            else np.zeros((len(kept), 0, 0, 3), np.uint8)
        )
        matrix = tabular_matrix if terms["colour_inputs"] else feature_matrix
        features = matrix(batch.loc[kept], data.features, data.asinh_scales)
        proba = net.predict_proba(stack, features, 256)
        top, margin = target.confidence(proba, terms["decisions"])
        table = pd.concat([table, target.decide(proba, data, terms["decisions"])], axis=1)
        table["top_probability"], table["margin"] = top, margin
    for key, value in identity.items():
        table[key] = pd.array([value] * len(table), dtype="string")
    _write_part(part, table)


def _write_part(part: Path, table: pd.DataFrame) -> None:
    if part.suffix == ".csv":
        with atomic.atomic_path(part, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False)
    else:
        atomic.write_parquet(part, table)


def _read_part(part: Path) -> pd.DataFrame:
    return pd.read_csv(part) if part.suffix == ".csv" else pd.read_parquet(part)


def _start_parts(folder: Path, run: dict[str, Any]) -> None:
    """Keep the parts of an interrupted run of this very job; else start an empty folder."""
    marker = folder / RUN_FILE
    try:
        same = json.loads(marker.read_text()) == run
    except (OSError, ValueError):
        same = False
    if not same:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        atomic.write_json(marker, run)
    else:
        log.info("predict: resuming the parts in %s", folder)


def _finish(
    objects: Any, folder: Path, n_parts: int, fmt: str, predict: Predict, target: Any,
    identity: dict[str, str], unclassified: Path, needs_spectrum: Path, report_path: Path,
) -> dict[str, Any]:  # fmt: skip
    """The unclassified and needs-a-spectrum lists and the report, read part by part."""
    lost = [objects.not_found.astype({"objid": "Int64"})]
    low: list[pd.DataFrame] = []
    counts: dict[str, int] = {}
    histogram = np.zeros(len(BINS) - 1, dtype=np.int64)
    classified = 0
    for k in range(n_parts):
        part = folder / f"part-{k:05d}.{fmt}"
        lost.append(pd.read_parquet(_lost_part(part)).astype({"objid": "Int64"}))
        table = _read_part(part)
        classified += len(table)
        if not len(table):
            continue
        for name, n in _decided_counts(table).items():
            counts[name] = counts.get(name, 0) + n
        histogram += np.histogram(table["top_probability"].to_numpy(), BINS)[0]
        below = table["top_probability"] < predict.min_confidence
        low.append(table.loc[below, ["objid", "ra", "dec", "top_probability", "margin"]])
    stale = sorted(p.name for p in folder.glob(f"part-*.{fmt}") if int(p.name[5:10]) >= n_parts)
    if stale:
        raise RuntimeError(f"{folder} holds parts of another run: {stale[:3]}")
    lost_table = pd.concat(lost, ignore_index=True)
    atomic.write_parquet(unclassified, lost_table)
    needs = pd.concat(low, ignore_index=True) if low else pd.DataFrame(
        columns=["objid", "ra", "dec", "top_probability", "margin"])  # fmt: skip
    atomic.write_parquet(needs_spectrum, needs)
    reasons = lost_table["reason"].value_counts()
    total = int(len(objects.rows) + len(objects.not_found))
    plot = folder / HISTOGRAM_FILE
    histogram_png(histogram, BINS, predict.min_confidence, plot, f"{classified} objects")
    report = {
        "task": target.name,
        "objects": total,
        "note": "" if total else f"no objects to classify ({objects.described})",
        "described": objects.described,
        "classified": int(classified),
        "unclassified": int(len(lost_table)),
        "unclassified_by_reason": {str(k): int(v) for k, v in reasons.items()},
        "needs_spectrum": int(len(needs)),
        "min_confidence": predict.min_confidence,
        "counts": counts,
        "confidence_histogram": {
            "edges": BINS.round(2).tolist(),
            "counts": histogram.tolist(),
            "picture": str(plot),
        },  # fmt: skip
        "parts": n_parts,
        "output": str(folder),
        **identity,
    }
    atomic.write_json(report_path, report)
    log.info("predict: %d classified, %d unclassified %s, %d need a spectrum",
             classified, len(lost_table), report["unclassified_by_reason"], len(needs))  # fmt: skip
    return report


def _lost_part(part: Path) -> Path:
    """Where the unclassified objects of ``part``'s batch are kept."""
    return part.with_name(f"_{part.stem}.unclassified.parquet")


def histogram_png(
    counts: np.ndarray, edges: np.ndarray, min_confidence: float, path: Path, title: str
) -> None:
    """A small bar chart of objects per top probability, ``min_confidence`` marked (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.0, 2.6))
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4c72b0",
           edgecolor="white")  # fmt: skip
    if min_confidence > 0:
        ax.axvline(min_confidence, color="#c44e52", linestyle="--", label="min_confidence")
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    ax.set_xlim(0, 1)
    ax.set_xlabel("top probability")
    ax.set_ylabel("objects")
    ax.set_title(f"How sure the model is: {title}", fontsize=9)
    fig.tight_layout()
    with atomic.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def _decided_counts(table: pd.DataFrame) -> dict[str, int]:
    """Objects per predicted class, or positives per label."""
    if "predicted" in table.columns:
        return {str(k): int(v) for k, v in table["predicted"].value_counts().items()}
    return {c.removeprefix("pred_"): int(table[c].sum()) for c in table.columns
            if c.startswith("pred_")}  # fmt: skip


def _fingerprint(objects: Any) -> str:
    ids = objects.catalog["objid"].to_numpy()[objects.rows]
    digest = hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    digest.update(objects.described.encode())
    return digest.hexdigest()[:16]


def _params_hash(terms: dict[str, Any], *sections: Any) -> str:
    """A short hash of what predict ran with: the contract and its own parameters."""
    parts = [json.dumps(terms, sort_keys=True)]
    parts += [s.model_dump_json() if hasattr(s, "model_dump_json") else str(s) for s in sections]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _git_revision() -> str:
    """The project's git revision, or ``unknown`` outside a repository."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


STAGE = Stage(
    name="predict",
    reads=("model", "contract", "predict_objects", "source_images"),
    writes=("predicted", "unclassified", "needs_spectrum", "predict_report"),
    params=("seed", "task", "source", "query", "cutouts", "clean.min_pixel_std", "predict"),
    function=classify_objects,
    describe=lambda p: f"predict: {p.predict.objects} with the {p.train.model} model",
    summarize=predict_summary,
    persistent=("predicted",),
    progress="objects classified",
)
