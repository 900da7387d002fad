"""What each stage shows in the Prefect UI: its summary (plain data) as Prefect artifacts.

Every key starts with the task (``multiclass-evaluate-metrics``), so the Artifacts
page keeps the histories of the two tasks apart. Pictures link to the flow run's own
copies (:mod:`skysort.pipeline.run_pictures`), so an old run's links keep showing its
own pictures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from skysort.config import Params
from skysort.config.operations import Ui
from skysort.pipeline.run_pictures import keep_pictures, prune_runs, run_folder
from skysort.pipeline.stage import Artifact, Images, Link, Markdown, Stage, Table
from skysort.tasks.thumbnails import data_uri, thumbnail_png

log = logging.getLogger("skysort.tasks.artifacts")

MAX_EMBEDDED = 8
"""Pictures embedded per artifact; the others are listed as links."""


def task_key(task: str, key: str) -> str:
    """The artifact key of ``key`` for runs of ``task``."""
    return f"{task}-{key}"


def publish(stage: Stage, report: dict[str, Any], params: Params) -> None:
    """Create the artifacts of ``stage.summarize`` in the current run."""
    publish_artifacts(stage.summarize(report, params), params.task, params.ui)


def publish_artifacts(artifacts: Iterable[Artifact], task: str, ui: Ui | None = None) -> None:
    """Create these artifacts in the current task or flow run, keys prefixed by ``task``.

    With ``ui``, pictures link to this flow run's copies of them (:func:`this_runs_copies`).
    """
    for artifact in artifacts:
        key = task_key(task, artifact.key)
        if isinstance(artifact, Table):
            create_table_artifact(artifact.rows, key=key, description=artifact.description)
        elif isinstance(artifact, Markdown):
            create_markdown_artifact(artifact.text, key=key, description=artifact.description)
        elif isinstance(artifact, Images):
            shown = this_runs_copies(artifact, ui) if ui is not None else artifact
            create_markdown_artifact(images_markdown(shown), key=key,
                                     description=artifact.description)  # fmt: skip
        elif isinstance(artifact, Link):
            create_link_artifact(
                artifact.url, link_text=artifact.text, key=key, description=artifact.description
            )
        else:  # pragma: no cover - a new summary type needs a branch here
            raise TypeError(f"unknown artifact {artifact!r}")


def current_run_folder(ui: Ui) -> Path | None:
    """``ui.runs_dir/<flow run id>``: where the current flow run keeps its pictures; None outside one."""
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return run_folder(ui.runs_dir, run_id) if run_id else None


def this_runs_copies(images: Images, ui: Ui) -> Images:
    """``images`` pointing at the current flow run's copies of its pictures, old runs pruned.

    Outside a flow run, or when the copies cannot be made (a full disk), the pictures
    stay where the stage wrote them and a warning says so: the artifact is never lost.
    """
    folder = current_run_folder(ui)
    if folder is None:
        return images
    try:
        kept = keep_pictures(images, folder / images.key)
        prune_runs(ui.runs_dir, ui.keep_runs, current=folder)
    except OSError as exc:
        log.warning("pictures of %s not copied to %s: %s", images.key, folder, exc)
        return images
    return kept


def images_markdown(images: Images, max_embedded: int = MAX_EMBEDDED) -> str:
    """``images`` as Markdown: the text, then each picture as an embedded thumbnail.

    Each thumbnail links to its full-size file; a picture past ``max_embedded``, or
    one that cannot be read, is a link only.
    """
    parts = [images.text] if images.text else []
    for n, picture in enumerate(images.pictures):
        full = picture.path.resolve()
        link = f"[{picture.path.name}]({full.as_uri()})"
        png = thumbnail_png(picture.path) if n < max_embedded and picture.path.exists() else None
        if png is None:
            parts.append(f"**{picture.caption}**: {link}")
        else:
            parts.append(f"**{picture.caption}** ({link})\n\n![{picture.caption}]({data_uri(png)})")
    return "\n\n".join(parts)
