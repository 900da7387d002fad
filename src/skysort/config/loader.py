"""Reading ``params.yaml``: the file, ``dotted.key=value`` overrides, validation, errors.

A bad value or an unknown key fails here, at load time, with the key's dotted path
and the reason (:class:`~skysort.config.base.ConfigError`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from skysort.config.base import ConfigError
from skysort.config.files import SQLCheck
from skysort.config.params import Params, is_parameter


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``dotted.key=value``; the value is read as YAML (so ``3``, ``true``, ``[u, g]`` work)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form dotted.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return key, value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``dotted.key=value`` set (intermediate dicts are created)."""
    out = _deep_copy(raw)
    for text in overrides:
        key, value = parse_override(text)
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(parts[: i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in raw.items()}


# A check on a whole section names the key it is about first: "base_url: ...".
_KEY_FIRST = re.compile(r"([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*): (.*)", re.DOTALL)


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key (check its spelling and section)"
        elif err["type"].startswith("value_error"):
            reason = reason.removeprefix("Value error, ")
            match = _KEY_FIRST.fullmatch(reason)
            key = match and (f"{path}.{match[1]}" if path else match[1])
            if key and is_parameter(key):
                path, reason = key, match[2]
        value = err.get("input")
        shown = (
            ""
            if err["type"] == "extra_forbidden" or isinstance(value, dict | BaseModel)
            else f" (got {value!r})"
        )
        lines.append(f"  {path or '(top level)'}: {reason}{shown}")
    return f"invalid parameters in {origin}:\n" + "\n".join(lines)


def validate_params(
    raw: dict[str, Any],
    origin: str = "params",
    root: Path | str | None = None,
    *,
    check_sql: SQLCheck | None = None,
) -> Params:
    """Validate a raw mapping; raise :class:`ConfigError` naming each bad key's dotted path.

    Files named by parameters are checked relative to ``root`` (default: the working
    directory, the project root every stage runs in). ``check_sql`` judges the text of
    ``query.sql_file`` (default: the SkyServer source's read-only SELECT check,
    :func:`skysort.config.files.skyserver_sql_check`).
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(raw).__name__}")
    context = {"root": Path(root) if root is not None else Path.cwd(), "check_sql": check_sql}
    try:
        params = Params.model_validate(raw, context=context)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None
    _check_finite(params.model_dump(), "")
    return params


def _check_finite(node: Any, path: str) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _check_finite(v, f"{path}.{k}" if path else k)
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"invalid parameters: {path}: must be a finite number (got {node})")


def read_params_file(path: Path | str) -> dict[str, Any]:
    """The raw mapping in a parameter file; refuse what cannot be meant.

    An empty file (it would silently mean "all defaults": write ``{}`` for that), a key
    given twice (YAML would keep the last one without a word), text that is not UTF-8
    and invalid YAML each fail with a message naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file {path} not found (pass --params PATH)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8"
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _refuse_duplicate_keys(node, path, "")
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if raw is None:
        raise ConfigError(
            f"{path} holds no parameters (empty, or only comments); write {{}} to use every default"
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return raw


def _refuse_duplicate_keys(node: yaml.Node, path: Path, where: str) -> None:
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, path, where)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        dotted = f"{where}.{key}" if where else key
        line = key_node.start_mark.line + 1
        if isinstance(key_node, yaml.ScalarNode) and key != "<<":
            if key in seen:
                raise ConfigError(
                    f"{path}: {dotted} is given twice (lines {seen[key]} and {line}); "
                    "YAML would silently keep the last one: remove one"
                )
            seen[key] = line
        _refuse_duplicate_keys(value_node, path, dotted)


def load_params(
    path: Path | str = "params.yaml",
    overrides: list[str] | tuple[str, ...] = (),
    *,
    check_sql: SQLCheck | None = None,
) -> Params:
    """Read ``params.yaml``, apply ``dotted.key=value`` overrides, and validate the result.

    ``check_sql``: as in :func:`validate_params`.
    """
    raw = read_params_file(path)
    return validate_params(apply_overrides(raw, overrides), origin=str(path), check_sql=check_sql)
