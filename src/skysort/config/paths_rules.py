"""Where outputs may go: each in its own place, never over the user's files, inside the project.

A stage replaces a folder output whole (:mod:`skysort.pipeline.outputs`), so an output
folder that holds another output, or the user's own files, would take them with it;
an output written over an input replaces the user's originals. Both are refused when
parameters are read, naming the two keys. Outputs must also stay inside the project
root (the working directory every stage runs in), links followed; inputs (the
``Paths.INPUTS`` keys) may be anywhere.

The project-root rule needs the root, so it holds where parameters are loaded
(:func:`skysort.config.load_params`, :func:`skysort.config.validate_params`); paths
built in code (``Paths().under(tmp)``) are checked only against each other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path


def check_paths(paths: Mapping[str, Path], inputs: Sequence[str], root: Path | None) -> None:
    """Raise ``ValueError`` (its message starts with the dotted key) for an output out of place.

    ``paths``: every ``paths.*`` key and its value, in the file's order; ``inputs``: the
    keys that are inputs, in the order a message prefers to name them. With ``root``
    the paths are compared resolved (links followed) and outputs must lie under it;
    without, they are compared as written, made absolute from the working directory.
    """
    where = {key: _place(value, root) for key, value in paths.items()}
    outputs = [k for k in paths if k not in inputs]
    if root is not None:
        home = Path(os.path.realpath(root))
        for key in outputs:
            if where[key] == home:
                raise ValueError(f"paths.{key}: {str(paths[key])!r} is the project folder itself: "
                                 "name a file or folder inside it")  # fmt: skip
            if home not in where[key].parents:
                link = ", through a link" if _linked(paths[key], root) else ""
                raise ValueError(
                    f"paths.{key}: {str(paths[key])!r} is outside the project ({home}{link}): "
                    "outputs are written under the project folder; use a path inside it"
                )
    # the most specific input first: an output equal to source_images is named as such,
    # not as lying inside a folder holding it
    specific = sorted((k for k in inputs if k in paths), key=lambda k: -len(where[k].parts))
    for i, key in enumerate(outputs):
        for other in [*outputs[i + 1 :], *specific]:
            _check_apart(key, other, paths, where, other in inputs, root)


def _place(value: Path, root: Path | None) -> Path:
    if root is None:
        return Path(os.path.abspath(value))
    return Path(os.path.realpath(Path(root) / value))


def _linked(value: Path, root: Path | None) -> bool:
    if root is None:
        return False
    joined = Path(os.path.abspath(Path(root) / value))
    return Path(os.path.realpath(joined)) != joined


def _check_apart(
    out: str,
    other: str,
    paths: Mapping[str, Path],
    where: Mapping[str, Path],
    is_input: bool,
    root: Path | None,
) -> None:
    """Output ``out`` and ``other`` (an output, or an input) neither the same nor nested."""
    a, b = where[out], where[other]
    if a != b and a not in b.parents and b not in a.parents:
        return
    link = " (through a link)" if _linked(paths[out], root) or _linked(paths[other], root) else ""
    mine = f"{str(paths[out])!r}"
    theirs = f"paths.{other} ({str(paths[other])!r}{link})"
    if is_input:
        how = ("is the same path as" if a == b else
               "lies inside" if b in a.parents else "holds")  # fmt: skip
        raise ValueError(
            f"paths.{out}: {mine} {how} {theirs}, your own files: an output is never written over "
            "or among them (an output folder is replaced whole); give it a place of its own"
        )
    if a == b:
        raise ValueError(
            f"paths.{other}: {str(paths[other])!r} is the same path as paths.{out} ({mine}{link}): "
            "each output needs a place of its own"
        )
    folder, inner = (other, out) if b in a.parents else (out, other)
    raise ValueError(
        f"paths.{folder}: {str(paths[folder])!r} holds paths.{inner} ({str(paths[inner])!r}{link}): "
        "an output folder is replaced whole, so the other output would be removed with it; "
        "give each a place of its own"
    )
