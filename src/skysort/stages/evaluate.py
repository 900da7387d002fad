"""Stage ``evaluate``: score the trained model on the test split's observed labels only.

The task's target scores (multilabel: each label decided at the threshold the train
stage tuned on val and saved next to the model), writes the predictions table and
draws the plots; every score uses the observed test labels only.

``evaluate.explain`` > 0: that many test objects, drawn with ``seed``, get a picture
of where the model looked (Grad-CAM) and which superpixels raised its output (LIME),
for the predicted class or each positive label, in ``plots/explain/<objid>.png``.
They are listed in the stage's report (not in metrics.json). A model with trees
(``gboost``, ``forest``, ``ensemble``) also gets its feature importance
(``plots/importance.csv`` and ``.png``); one without an image branch gets no Grad-CAM
or LIME, and the report says so. An ensemble's Grad-CAM and LIME explain its net.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from skysort import targets
from skysort.config import Data, Evaluate, Train
from skysort.data import atomic
from skysort.model.inputs import Survey, load_survey
from skysort.model.tfenv import quiet_tensorflow_info
from skysort.pipeline.stage import Stage
from skysort.targets.summaries import EXPLAIN_DIR, evaluate_summary

log = logging.getLogger(__name__)


def evaluate_model(
    *,
    dataset: Path,
    images: Path,
    labels: Path,
    model: Path,
    train_report: Path,
    thresholds: Path,
    metrics: Path,
    plots: Path,
    predictions: Path,
    data: Data,
    train: Train,
    evaluate: Evaluate,
    task: str,
    seed: int,
) -> dict[str, Any]:
    """Write metrics.json, predictions.parquet and the plots (PNG + CSV for ``dvc plots``)."""
    quiet_tensorflow_info()
    from skysort.evaluation.plots import history_png
    from skysort.model.saved import load_saved

    target = targets.get(task)
    survey = load_survey(dataset, images, labels, data, task, train.colour_inputs)
    test = survey.scored_rows("test")
    if len(test) == 0:
        raise targets.NothingToScore(f"{labels}: the test split has no observed labels to score on")
    decisions = target.load_decisions(thresholds, data)
    saved = load_saved(model)
    proba = saved.predict_rows(survey, test, evaluate.batch_size)
    y = survey.y[test]
    objid = survey.dataset["objid"].to_numpy()[test]
    scored = target.score(objid, y, proba, data, decisions)
    scores = {"task": task, "model": train.model, "image_encoder": train.image_encoder,
              **scored.metrics}  # fmt: skip
    atomic.write_json(metrics, scores)
    atomic.write_parquet(predictions, scored.predictions)

    plots.mkdir(parents=True, exist_ok=True)
    target.write_plots(plots, scored, y, proba, survey.images, test, data)
    if Path(train_report).exists():  # a tree model's history is empty: the picture says so
        history_png(atomic.read_json(train_report)["history"], plots / "training.png")
    explained = _explain(saved, survey, test, scored.explain, plots, train, evaluate, seed)
    return {**scores, "explanations": explained}


def _explain(
    saved: Any,
    survey: Survey,
    test: np.ndarray,
    explain: list[list[tuple[int, str]]],
    plots_dir: Path,
    train: Train,
    evaluate: Evaluate,
    seed: int,
) -> dict[str, Any]:
    """Explain ``evaluate.explain`` test objects drawn with ``seed`` into ``plots_dir/explain``.

    ``explain[i]`` are the outputs to explain for test row ``test[i]``. A model with
    trees gets its feature importance whatever ``evaluate.explain`` says.
    """
    from skysort.evaluation.importance import availability, write_importance

    importance = write_importance(saved, plots_dir)
    if evaluate.explain == 0:
        return {"objects": 0, **importance}
    model = saved.image_net
    if model is None:
        why = availability(saved)["gradcam"]
        log.info("evaluate: Grad-CAM and LIME %s", why)
        return {"objects": 0, "skipped": f"Grad-CAM and LIME {why}", **importance}
    from skysort.evaluation.explain import write_explanations

    n = min(evaluate.explain, len(test))
    chosen = np.sort(np.random.default_rng(seed).choice(len(test), size=n, replace=False))
    rows = test[chosen]
    order = np.argsort(rows)  # read the memory-mapped cutouts in file order
    images = np.empty((n, *survey.images.shape[1:]), dtype=survey.images.dtype)
    images[order] = survey.images[rows[order]]
    started = time.perf_counter()
    written = write_explanations(
        model,
        images,
        survey.features[rows],
        survey.dataset["objid"].to_numpy()[rows],
        [explain[i] for i in chosen],
        plots_dir / EXPLAIN_DIR,
        lime_samples=evaluate.lime_samples,
        seed=seed,
        batch_size=evaluate.batch_size,
    )
    per_object = (time.perf_counter() - started) / n
    log.info("evaluate: explained %d test objects, %.2f s each", n, per_object)
    return {
        **importance,
        **(
            {"explains": f"the ensemble's net (weight {saved.weight_net:.2f})"}
            if saved.kind == "ensemble"
            else {}
        ),  # fmt: skip
        "objects": n,
        "lime_samples": evaluate.lime_samples,
        "seconds_per_object": round(per_object, 3),
        "files": [f"{EXPLAIN_DIR}/{w['file']}" for w in written],
        "explained": {str(w["objid"]): w["explained"] for w in written},
    }


STAGE = Stage(
    name="evaluate",
    reads=("dataset", "images", "labels", "model", "train_report", "thresholds"),
    writes=("metrics", "plots", "predictions"),
    params=(
        "seed",
        *targets.READS,
        "train.model",
        "train.image_encoder",
        "train.colour_inputs",
        "evaluate",
    ),
    function=evaluate_model,
    describe=lambda p: f"evaluate: {p.train.describe()}",
    summarize=evaluate_summary,
)
