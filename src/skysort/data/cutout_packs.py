"""Cutouts packed many to a file with a Parquet index, so that DVC checks a few files, not millions.

DVC stats every file of a tracked folder on each ``dvc status``: with one JPEG per object
that cost 8 s at 100k objects (``docs/results/scale.md``) and grows with the survey.
With ``cutouts.pack_size: N`` (N > 0) the cutouts folder holds, for each block of N
catalog rows ``[a, b)``:

- ``rows-A-B.jpgs``: the JPEG bytes of the block's ``ok`` objects, one after another;
- ``rows-A-B.index.parquet``: the block's manifest rows (status, bytes, sha256, attempts,
  error, fingerprint: the per-object record the manifest keeps), plus each JPEG's
  ``offset`` and ``length`` in the pack (-1 and 0 for an object without a file) and the
  block's ``key`` (what made it: its catalog rows and the stage's parameters).

A block is made in ``.rows-A-B.staging/``, one file per object, by the source's own
writer, so a killed run resumes object by object as it does without packs (valid files
are kept, never fetched twice). The pack is then written atomically, its index after
it (a pack without an index is incomplete and made again) and the staging folder
removed. A block whose index has the same key is kept as it is; one with another key
is unpacked into its staging folder first, so the source's own checks decide which
files are still valid. Readers (``clean``) take each object's bytes with a positioned
read (:class:`CutoutReader`); the sha256 of every object stays in the index and the
manifest, so a changed byte is still found.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from skysort.data import atomic
from skysort.data.images import MAX_IMAGE_BYTES, BadImage, cutout_path

PACK_SUFFIX = ".jpgs"
INDEX_SUFFIX = ".index.parquet"
_BLOCK = re.compile(r"^rows-(\d{10})-(\d{10})$")


def block_bounds(start: int, stop: int, pack_size: int) -> list[tuple[int, int]]:
    """The blocks of rows ``[start, stop)``: ``pack_size``-aligned, cut at ``start`` and ``stop``.

    Aligned to multiples of ``pack_size`` from row 0, so that the same catalog gives
    the same blocks however the stage's shards split it (when the shard size is a
    multiple of the pack size).
    """
    if pack_size < 1:
        raise ValueError(f"pack_size must be at least 1, got {pack_size}")
    bounds = []
    a = start
    while a < stop:
        b = min(stop, (a // pack_size + 1) * pack_size)
        bounds.append((a, b))
        a = b
    return bounds


def block_name(start: int, stop: int) -> str:
    return f"rows-{start:010d}-{stop:010d}"


def pack_path(cutouts_dir: Path, start: int, stop: int) -> Path:
    return Path(cutouts_dir) / f"{block_name(start, stop)}{PACK_SUFFIX}"


def index_path(cutouts_dir: Path, start: int, stop: int) -> Path:
    return Path(cutouts_dir) / f"{block_name(start, stop)}{INDEX_SUFFIX}"


def staging_dir(cutouts_dir: Path, start: int, stop: int) -> Path:
    """Where a block's JPEGs are made, one file per object, before they are packed."""
    return Path(cutouts_dir) / f".{block_name(start, stop)}.staging"


def block_key(rows: pd.DataFrame, recipe: str) -> str:
    """What made a block: its catalog rows (every column, in order) and the stage's ``recipe``."""
    digest = hashlib.sha256(recipe.encode())
    digest.update(np.ascontiguousarray(pd.util.hash_pandas_object(rows, index=False)).tobytes())
    digest.update(",".join(map(str, rows.columns)).encode())
    return digest.hexdigest()


def read_index(cutouts_dir: Path, start: int, stop: int) -> pd.DataFrame | None:
    """The block's index, or None when the block has no complete pack."""
    index, pack = index_path(cutouts_dir, start, stop), pack_path(cutouts_dir, start, stop)
    if not (index.is_file() and pack.is_file()):
        return None
    try:
        return pd.read_parquet(index)
    except (OSError, ValueError):  # a damaged index: the block is made again
        return None


def unpack(cutouts_dir: Path, start: int, stop: int, index: pd.DataFrame) -> int:
    """Write the block's packed JPEGs into its staging folder (files already there are kept)."""
    staging = staging_dir(cutouts_dir, start, stop)
    staging.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(pack_path(cutouts_dir, start, stop), "rb") as pack:
        for objid, offset, length in _stored(index):
            target = cutout_path(staging, objid)
            if not target.exists():
                atomic.write_bytes(target, os.pread(pack.fileno(), length, offset))
                written += 1
    return written


def write_pack(
    cutouts_dir: Path, start: int, stop: int, manifest: pd.DataFrame, key: str
) -> pd.DataFrame:
    """Pack the block's staged ``ok`` JPEGs, in manifest order; write its index; the index.

    The pack is renamed into place first and the index last, so a block is complete
    exactly when its index exists; the staging folder goes once both are written.
    """
    staging = staging_dir(cutouts_dir, start, stop)
    offsets = np.full(len(manifest), -1, dtype=np.int64)
    lengths = np.zeros(len(manifest), dtype=np.int64)
    ok = (manifest["status"] == "ok").to_numpy()
    with (
        atomic.atomic_path(pack_path(cutouts_dir, start, stop), suffix=PACK_SUFFIX) as tmp,
        open(tmp, "wb") as out,
    ):
        for k, objid in enumerate(manifest["objid"].to_numpy()):
            if not ok[k]:
                continue
            path = cutout_path(staging, int(objid))
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"{path}: the cutout of object {int(objid)} is listed as fetched but its "
                    "file is gone before packing; run the stage again"
                ) from None
            offsets[k], lengths[k] = out.tell(), len(body)
            out.write(body)
    index = manifest.reset_index(drop=True).assign(offset=offsets, length=lengths, key=key)
    atomic.write_parquet(index_path(cutouts_dir, start, stop), index)
    shutil.rmtree(staging, ignore_errors=True)
    return index


def manifest_of(index: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The manifest rows an index records."""
    return index[columns].reset_index(drop=True)


def blocks_in(cutouts_dir: Path) -> list[tuple[int, int]]:
    """The blocks that have an index in ``cutouts_dir``, in row order."""
    found = []
    for path in Path(cutouts_dir).glob(f"rows-*{INDEX_SUFFIX}"):
        m = _BLOCK.match(path.name[: -len(INDEX_SUFFIX)])
        if m:
            found.append((int(m.group(1)), int(m.group(2))))
    return sorted(found)


def is_packed(cutouts_dir: Path) -> bool:
    return bool(blocks_in(cutouts_dir))


def tidy(cutouts_dir: Path, blocks: list[tuple[int, int]] | None) -> int:
    """Leave only one layout in ``cutouts_dir``; how many entries were removed.

    ``blocks``: the packs of this run, whose files stay; every other pack, index and
    staging folder, and every loose ``<objid>.jpg``, is removed. None: this run wrote
    loose files, so every pack, index and staging folder goes.
    """
    keep = {block_name(a, b) for a, b in blocks or []}
    removed = 0
    for path in Path(cutouts_dir).iterdir():
        name = path.name
        if name.endswith(".staging") and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif name.endswith((PACK_SUFFIX, INDEX_SUFFIX)) and name.startswith("rows-"):
            if name.split(".", 1)[0] in keep:
                continue
            path.unlink(missing_ok=True)
        elif blocks is not None and name.endswith(".jpg") and name[:-4].isdigit():
            path.unlink(missing_ok=True)
        else:
            continue
        removed += 1
    return removed


def _stored(index: pd.DataFrame) -> Iterator[tuple[int, int, int]]:
    has = index["offset"].to_numpy() >= 0
    for objid, offset, length in zip(
        index["objid"].to_numpy()[has],
        index["offset"].to_numpy()[has],
        index["length"].to_numpy()[has],
        strict=True,
    ):
        yield int(objid), int(offset), int(length)


class CutoutReader:
    """Each object's cutout bytes, from loose files or from packs, whichever the folder holds.

    ``read(objid)`` returns the bytes, or None when the object has no file (a deleted
    file, or a pack gone); a file over the size limit or empty is refused with
    :class:`BadImage`, as :func:`skysort.data.images.read_cutout_bytes` does. Safe to
    call from several threads (positioned reads on shared descriptors).
    """

    def __init__(self, cutouts_dir: Path) -> None:
        self.cutouts_dir = Path(cutouts_dir)
        self._where: dict[int, tuple[int, int, int]] = {}
        self._packs: list[Path] = []
        self._fds: list[int | None] = []
        for k, (a, b) in enumerate(blocks_in(self.cutouts_dir)):
            index = pd.read_parquet(
                index_path(self.cutouts_dir, a, b), columns=["objid", "offset", "length"]
            )
            self._packs.append(pack_path(self.cutouts_dir, a, b))
            for objid, offset, length in _stored(index):
                self._where[objid] = (k, offset, length)
        self.packed = bool(self._packs)
        self._fds = [_open_or_none(p) for p in self._packs]

    def read(self, objid: int) -> bytes | None:
        if not self.packed:
            path = cutout_path(self.cutouts_dir, objid)
            try:
                nbytes = path.stat().st_size
                if nbytes > MAX_IMAGE_BYTES:
                    raise BadImage("oversized_image", f"{path} has {nbytes} bytes")
                data = path.read_bytes()
            except FileNotFoundError:
                return None
        else:
            found = self._where.get(int(objid))
            if found is None or self._fds[found[0]] is None:
                return None
            k, offset, length = found
            if length > MAX_IMAGE_BYTES:
                raise BadImage("oversized_image", f"object {objid} has {length} bytes")
            data = os.pread(self._fds[k], length, offset)  # type: ignore[arg-type]
            if len(data) < length:
                raise BadImage("unreadable_image", f"{self._packs[k]} ends inside object {objid}")
        if not data:
            raise BadImage("unreadable_image", f"the cutout of object {objid} is empty")
        return data

    def close(self) -> None:
        for fd in self._fds:
            if fd is not None:
                os.close(fd)
        self._fds = [None] * len(self._fds)

    def __enter__(self) -> CutoutReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_or_none(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
