"""``params.yaml`` written from the models: their defaults, and their descriptions as comments.

Run ``python -m skysort.config.render --write`` after changing a default or a
description; ``--check`` exits 1 when the file differs (``tests/test_params_yaml.py``
holds the committed file equal to what this writes). With neither, the text goes
to standard output.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from skysort.config.base import is_section
from skysort.config.params import Params

HEADER = """\
# skysort parameters: the one source for the CLI, the Prefect flows and dvc.yaml.
# Every key is validated at load time. The values committed here are the defaults of
# src/skysort/config/ (with their types and limits), written by
# `python -m skysort.config.render --write`: change a default there, then rewrite this file.
"""

COMMENT_COLUMN = 42
"""Where a key's comment starts, when its line leaves room."""

# Strings written without quotes: words, paths, URLs, dotted keys ("not majority" too).
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./:@+-]*(?: [A-Za-z0-9_./:@+-]+)*")


def render_params_yaml() -> str:
    """The text of ``params.yaml``: every key of :class:`Params` with its default, in order."""
    values = Params().model_dump(mode="json")
    return HEADER + "\n".join(_lines(Params, values, depth=0)) + "\n"


def _lines(model: type[BaseModel], values: dict[str, Any], depth: int) -> Iterator[str]:
    indent = "  " * depth
    for name, field in model.model_fields.items():
        if is_section(field.annotation):
            if depth == 0:
                yield ""  # a blank line before each top-level section
            yield _commented(f"{indent}{name}:", field.description)
            yield from _lines(field.annotation, values[name], depth + 1)  # type: ignore[arg-type]
        else:
            yield _commented(f"{indent}{name}: {_flow(values[name])}", field.description)


def _commented(line: str, description: str | None) -> str:
    if not description:
        return line
    comment = "# " + " ".join(description.split())
    if len(line) < COMMENT_COLUMN:
        return line.ljust(COMMENT_COLUMN) + comment
    return f"{line}   {comment}"


def _flow(value: Any) -> str:
    """``value`` as one line of YAML (flow style) that reads back as the same value."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and ": " not in value and not value.endswith(":")
        text = value if plain and yaml.safe_load(value) == value else json.dumps(value)
    elif isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:  # YAML 1.1 reads 1e-05 as a string, 1.0e-05 as a number
            sign = "" if exponent.startswith(("-", "+")) else "+"
            text = f"{mantissa}.0e{sign}{exponent}"
    else:
        text = str(value)
    if yaml.safe_load(text) != value or type(yaml.safe_load(text)) is not type(value):
        raise ValueError(f"cannot write {value!r} as YAML that reads back the same")
    return text


def main(argv: list[str] | None = None) -> int:
    """``python -m skysort.config.render [--write | --check] [PATH]``."""
    parser = argparse.ArgumentParser(
        prog="python -m skysort.config.render",
        description="Write params.yaml from the config models' defaults and descriptions.",
    )
    parser.add_argument("path", nargs="?", default="params.yaml", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite PATH")
    mode.add_argument("--check", action="store_true", help="exit 1 if PATH differs")
    args = parser.parse_args(argv)
    text = render_params_yaml()
    if args.write:
        tmp = args.path.with_name(f".{args.path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.path)
        return 0
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.is_file() else None
        if current != text:
            sys.stderr.write(
                f"{args.path} differs from the config models' defaults: "
                "run python -m skysort.config.render --write\n"
            )
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
