"""What every section shares: frozen, no unknown keys; and the error a bad value raises."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class ConfigError(ValueError):
    """A parameter is missing, unknown or out of range; the message names its dotted path."""


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def is_section(annotation: object) -> bool:
    """True when a field's annotation is a section (a nested model), not a value."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def is_key_of(model: type[BaseModel], key: str) -> bool:
    """True when ``key`` is the dotted path of one value of ``model`` (not of a whole section)."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        nested = is_section(field.annotation)
        if nested == (i == len(parts) - 1):
            return False
        if nested:
            model = field.annotation  # type: ignore[assignment]
    return True


def project_root(info: ValidationInfo) -> Path | None:
    """The root file checks are made against, or None when a section is built in code."""
    root = (info.context or {}).get("root")
    return Path(root) if root is not None else None


def check_ranges(section: BaseModel, *names: str) -> None:
    """Each ``<name>_min`` must be below ``<name>_max`` (a ``ValueError`` naming both)."""
    for name in names:
        low, high = getattr(section, f"{name}_min"), getattr(section, f"{name}_max")
        if low >= high:
            raise ValueError(f"{name}_min ({low}) must be below {name}_max ({high})")
