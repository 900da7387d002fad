"""A stage's outputs replaced together: the previous complete set or the new one, never a mix.

Each output is written under a staged name beside it (``.staged.<name>``, a file or a
folder); only when the stage has written all of them are they swapped in. The swap
is journaled: a small JSON file beside the first output lists the renames before any
is done, so a run killed in the middle of the swap is finished (rolled forward) the
next time the stage starts, and a run killed before the swap leaves staged leftovers
that are simply removed. A failure before the swap leaves the previous outputs as
they were.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from skysort.data import atomic

log = logging.getLogger(__name__)


def staged_path(final: Path) -> Path:
    """Where ``final`` is written before the swap (same folder, same suffix)."""
    final = Path(final)
    return final.parent / f".staged.{final.name}"


def journal_path(finals: Sequence[Path]) -> Path:
    first = Path(finals[0])
    return first.parent / f".{first.name}.swap.json"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _swap_in(staged: Path, final: Path) -> None:
    """Put ``staged`` at ``final`` (a folder by rename of the old one aside, then away)."""
    if not staged.exists() and not staged.is_symlink():
        return  # already swapped in by an earlier, interrupted commit
    # A folder cannot replace a file in one rename (a model file, then a model folder):
    # the old one is put aside first, as an old folder is.
    folder_over_file = staged.is_dir() and (final.exists() or final.is_symlink())
    if (final.is_dir() and not final.is_symlink()) or folder_over_file:
        old = final.parent / f".old.{final.name}"
        _remove(old)
        os.replace(final, old)
        os.replace(staged, final)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    else:
        os.replace(staged, final)


def recover(finals: Sequence[Path]) -> None:
    """Finish a swap a killed run left half done; remove staged leftovers of an unfinished run."""
    finals = [Path(f) for f in finals]
    journal = journal_path(finals)
    if journal.exists():
        pairs = [(Path(s), Path(f)) for s, f in atomic.read_json(journal)]
        log.warning("finishing the interrupted replacement of %s", ", ".join(map(str, finals)))
        for staged, final in pairs:
            _swap_in(staged, final)
        journal.unlink()
    atomic.remove_temp_files_of(journal)
    for final in finals:
        for leftover in (staged_path(final), final.parent / f".old.{final.name}"):
            if leftover.exists() or leftover.is_symlink():
                _remove(leftover)
            atomic.remove_temp_files_of(leftover)


def _refuse_nested(finals: Sequence[Path]) -> None:
    """Refuse outputs that are the same path or one inside another, before anything is touched.

    A folder output is swapped in whole: one holding another output (or the journal
    beside it) would remove files this swap did not write.
    """
    where = [Path(os.path.abspath(f)) for f in finals]
    for i, a in enumerate(where):
        for b in where[i + 1 :]:
            if a == b or a in b.parents or b in a.parents:
                outer, inner = (a, b) if a in b.parents or a == b else (b, a)
                raise ValueError(
                    f"outputs {outer} and {inner}: one is the same as, or inside, the other; "
                    "a folder output is replaced whole, so give each a place of its own"
                )


def commit(finals: Sequence[Path]) -> None:
    """Swap every staged output in, journaled; each must have been written."""
    finals = [Path(f) for f in finals]
    missing = [str(f) for f in finals if not staged_path(f).exists()]
    if missing:
        raise FileNotFoundError(f"the stage did not write {', '.join(missing)}")
    journal = journal_path(finals)
    atomic.write_json(journal, [[str(staged_path(f)), str(f)] for f in finals])
    for final in finals:
        _swap_in(staged_path(final), final)
    journal.unlink()


@contextlib.contextmanager
def replaced_together(finals: Sequence[Path]) -> Iterator[list[Path]]:
    """Yield the staged path of each output; on success swap them all in, on error drop them."""
    finals = [Path(f) for f in finals]
    _refuse_nested(finals)
    recover(finals)
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield [staged_path(f) for f in finals]
    except BaseException:
        for final in finals:
            with contextlib.suppress(OSError):
                _remove(staged_path(final))
        raise
    commit(finals)
