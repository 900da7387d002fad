"""Parameters that name files: checked against the project root when parameters are loaded.

``query.sql_file`` must be a readable, single read-only SELECT inside ``queries/``;
``train.weights`` an existing file. Sections built directly in code carry no root
and skip these checks (:func:`skysort.config.base.project_root`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

QUERIES_DIR = Path("queries")
"""Where ``query.sql_file`` must live: a dependency of the query stage in ``dvc.yaml``."""

SQLCheck = Callable[[str], None]
"""Raises ``ValueError`` unless the SQL text may be sent; the message reads after "the SQL"."""


def skyserver_sql_check() -> SQLCheck:
    """The SQL check ``query.sql_file`` gets unless the loader's caller passes another.

    What SQL may be sent is the SkyServer source's rule, so it lives there; it is
    imported here, when a file is checked and never when the config is imported, so
    that the config package loads no other skysort module.
    """
    from skysort.sources.skyserver.sqlcheck import check_select

    return check_select


def check_sql_file(path: Path, root: Path, check_sql: SQLCheck | None = None) -> None:
    """Raise ``ValueError`` unless ``path`` is a readable single SELECT inside ``root/queries``.

    No ``..``, and no link leading out of the folder: the file must be the one ``dvc.yaml``
    tracks as the query stage's dependency, and nothing else on the machine can be sent.
    ``check_sql`` judges the text (default: :func:`skyserver_sql_check`).
    """
    if ".." in path.parts:
        raise ValueError(f"'..' is not allowed: name a file in the project's {QUERIES_DIR}/ folder")
    queries = (root / QUERIES_DIR).resolve()
    if not queries.is_relative_to(root.resolve()):
        raise ValueError(f"the project's {QUERIES_DIR}/ folder links outside the project")
    full = root / path
    if not full.resolve().is_relative_to(queries):
        inside = full.absolute().is_relative_to((root / QUERIES_DIR).absolute())
        where = "links outside" if inside else "is outside"
        raise ValueError(
            f"the file {where} the project's {QUERIES_DIR}/ folder: put your SQL in "
            f"{QUERIES_DIR}/ (dvc.yaml tracks that folder, so editing the SQL reruns the query)"
        )
    if not full.is_file():
        raise ValueError(f"no such file in {root.resolve() / QUERIES_DIR}")
    try:
        text = full.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    check = check_sql if check_sql is not None else skyserver_sql_check()
    try:
        check(text)
    except ValueError as exc:
        raise ValueError(f"the SQL {exc}") from None


def check_weights_file(value: str, root: Path) -> None:
    """Raise ``ValueError`` unless ``train.weights`` is ``none``, ``imagenet`` or a file under ``root``."""
    if value in ("none", "imagenet"):
        return
    if not (root / Path(value).expanduser()).is_file():
        raise ValueError(
            "no such weights file (give none, imagenet or the path of an existing "
            ".weights.h5 / .h5 file, relative to the project root)"
        )
