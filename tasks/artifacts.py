"""What each stage shows in the Prefect UI: its summary (plain data) as Prefect artifacts."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from skysort.config import Params
from skysort.pipeline.stage import Link, Markdown, Stage, Table


def publish(stage: Stage, report: dict[str, Any], params: Params) -> None:
    """Create the artifacts of ``stage.summarize`` (keys are lowercase and dashes)."""
    for artifact in stage.summarize(report, params):
        if isinstance(artifact, Table):
            create_table_artifact(artifact.rows, key=artifact.key, description=artifact.description)
        elif isinstance(artifact, Markdown):
            create_markdown_artifact(
                artifact.text, key=artifact.key, description=artifact.description
            )
        elif isinstance(artifact, Link):
            create_link_artifact(
                artifact.url,
                link_text=artifact.text,
                key=artifact.key,
                description=artifact.description,
            )
        else:  # pragma: no cover - a new summary type needs a branch here
            raise TypeError(f"stage {stage.name}: unknown artifact {artifact!r}")
