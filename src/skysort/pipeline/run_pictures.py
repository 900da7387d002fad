"""Each flow run's own copies of the pictures its artifacts link to.

The stages write their plots to ``paths.plots``, and the next run replaces them there:
an artifact linking to that folder would, a run later, open another run's picture. So
before an artifact is made, the pictures it links to are copied (atomically) to
``ui.runs_dir/<run id>/<artifact key>/`` and the artifact links to the copies; the
``ui.keep_runs`` newest run folders are kept, older ones removed. ``paths.plots``
itself, the DVC output, is left as the stage wrote it.

The run id comes from the caller (the Prefect layer passes the flow run's id): the
library knows nothing of Prefect.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

from skysort.data.atomic import atomic_path
from skysort.pipeline.stage import Images, Picture

log = logging.getLogger("skysort.pipeline.run_pictures")

RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""A run folder's name: a flow run id (a UUID). Pruning removes nothing else."""


def run_folder(runs_dir: Path, run_id: str) -> Path:
    """The folder of run ``run_id`` under ``runs_dir``; a ``ValueError`` for a malformed id."""
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"not a run id (a UUID): {run_id!r}")
    return Path(runs_dir) / run_id


def keep_pictures(images: Images, folder: Path) -> Images:
    """``images`` pointing at copies of its pictures in ``folder`` (made now, atomically).

    A picture whose file does not exist is left as it is (the artifact lists it as a
    link). A link in ``images.text`` to the folder the pictures came from (the intro's
    "full size in ...") is pointed at ``folder`` too.
    """
    kept: list[Picture] = []
    names: set[str] = set()
    folders: dict[Path, Path] = {}
    for picture in images.pictures:
        if not picture.path.is_file():
            kept.append(picture)
            continue
        name = _unique(picture.path.name, names)
        copy = folder / name
        with atomic_path(copy, suffix=picture.path.suffix) as tmp:
            shutil.copyfile(picture.path, tmp)
        kept.append(replace(picture, path=copy))
        folders.setdefault(picture.path.parent.resolve(), folder)
    return replace(images, text=_relinked(images.text, folders), pictures=tuple(kept))


def prune_runs(runs_dir: Path, keep: int, current: Path | None = None) -> list[Path]:
    """Remove all but the ``keep`` newest run folders in ``runs_dir``; return those removed.

    Newest by modification time; ``current`` (the run being published) is always kept.
    Only folders named as run ids are touched: anything else a person put there stays.
    A folder another process removes first is skipped.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = []
    for entry in os.scandir(runs_dir):
        if RUN_ID.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            try:
                runs.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
            except FileNotFoundError:
                continue
    runs.sort(reverse=True)
    keep_names = {name for _, name in runs[:keep]}
    if current is not None:
        keep_names.add(Path(current).name)
    removed = []
    for _, name in runs:
        if name not in keep_names:
            shutil.rmtree(runs_dir / name, ignore_errors=True)
            removed.append(runs_dir / name)
    if removed:
        log.info("removed %d old run folder(s) from %s (keeping %d)", len(removed), runs_dir, keep)
    return removed


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``k-name`` for the first k that is free (two pictures, one file name)."""
    candidate, k = name, 1
    while candidate in taken:
        candidate, k = f"{k}-{name}", k + 1
    taken.add(candidate)
    return candidate


def _relinked(text: str, folders: dict[Path, Path]) -> str:
    """``text`` with each Markdown link to a source folder pointing at its copy folder."""
    for source, copy in folders.items():
        pattern = re.compile(r"\[[^\]]*\]\(" + re.escape(source.as_uri()) + r"/?\)")
        shown = f"[{copy}]({copy.resolve().as_uri()})"
        text = pattern.sub(lambda _m, s=shown: s, text)
    return text
