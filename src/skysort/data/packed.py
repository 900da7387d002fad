"""The packed image array (``images.npy``), written and read in batches with plain file I/O.

The file is an ordinary uint8 N×H×W×3 ``.npy`` that ``np.load(mmap_mode="r")`` maps.
skysort itself writes and reads it with positioned writes and reads instead of a
memory map: every page of a map that a process touches stays in its resident set
(RSS) while the map is open, so one epoch over a mapped 100k-image array grows the
process by the whole file (1.2 GB), and a map being written holds its dirty pages
too. With positioned I/O a process holds only the batch it works on; the operating
system's page cache still keeps a file that fits in memory, outside any process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy

DTYPE = np.dtype(np.uint8)


class PackedWriter:
    """Writes an ``.npy`` of ``n`` images of ``shape`` (H, W, 3), row by row or in blocks.

    The header is written first, so every row has its place from the start; rows may
    come in any order. Use as a context manager; :meth:`close` checks that every row
    was written, unless ``every_row`` is false (rows never written are zeros).
    """

    def __init__(
        self, path: Path | str, n: int, shape: tuple[int, ...], *, every_row: bool = True
    ) -> None:
        self.path = Path(path)
        self._every_row = every_row
        self.shape = (int(n), *(int(s) for s in shape))
        self._row_bytes = int(np.prod(shape, dtype=np.int64))
        self._written = np.zeros(n, dtype=bool)
        with open(self.path, "wb") as f:
            npy.write_array_header_1_0(
                f,
                {
                    "descr": npy.dtype_to_descr(DTYPE),
                    "fortran_order": False,
                    "shape": self.shape,
                },  # fmt: skip
            )
            self._offset = f.tell()
            f.truncate(self._offset + self.shape[0] * self._row_bytes)  # a sparse file at first
        self._fd = os.open(self.path, os.O_WRONLY)

    def write(self, row: int, images: np.ndarray) -> None:
        """Write ``images`` (k×H×W×3, or one H×W×3) as rows ``row`` .. ``row + k - 1``."""
        block = np.ascontiguousarray(images, dtype=DTYPE)
        if block.shape == self.shape[1:]:
            block = block[None]
        if block.shape[1:] != self.shape[1:] or not 0 <= row <= self.shape[0] - len(block):
            raise ValueError(
                f"{self.path}: cannot write {block.shape} at row {row} into {self.shape}"
            )
        data = memoryview(block.reshape(-1)).cast("B") if block.size else b""
        at = self._offset + row * self._row_bytes
        while data:  # a positioned write may be short
            done = os.pwrite(self._fd, data, at)
            data, at = data[done:], at + done
        self._written[row : row + len(block)] = True

    def close(self) -> None:
        """Flush and close; a ``ValueError`` naming the count if a row was never written."""
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        missing = int((~self._written).sum())
        if missing and self._every_row:
            raise ValueError(f"{self.path}: {missing} of {self.shape[0]} images never written")

    def __enter__(self) -> PackedWriter:
        return self

    def __exit__(self, kind: Any, *rest: Any) -> None:
        if kind is None:
            self.close()
        elif self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PackedImages:
    """Read-only rows of a packed ``.npy``, read on demand; indexes like a numpy array.

    ``images[i]``, ``images[a:b]`` and ``images[rows]`` (an integer array, in any order,
    repeats allowed) return new arrays read from the file; ``shape``, ``dtype``, ``ndim``
    and ``len`` are the array's. Gathered rows are read in ascending order, one read per
    run of consecutive rows. Safe to use from several threads.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = npy.read_magic(f)
            read_header = (
                npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
            self._offset = f.tell()
        if fortran or np.dtype(dtype) != DTYPE or len(shape) != 4:
            raise ValueError(f"{self.path} is not a packed uint8 N×H×W×C image array")
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self.dtype = DTYPE
        self.ndim = 4
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64))
        expected = self._offset + self.shape[0] * self._row_bytes
        if os.path.getsize(self.path) < expected:
            raise ValueError(f"{self.path} is shorter than its header says: rerun the clean stage")
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} images")
            return self._read_run(index, 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._read_run(start, max(0, stop - start))
            return self.read(np.arange(start, stop, step))
        return self.read(np.asarray(key))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self._read_run(0, len(self))
        return whole if dtype is None else whole.astype(dtype)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The images of ``rows`` (an integer or boolean array), in the order given."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False).reshape(-1)
        if rows.size and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"rows out of range for {len(self)} images")
        rows = np.where(rows < 0, rows + len(self), rows)
        unique, inverse = np.unique(rows, return_inverse=True)
        out = np.empty((len(unique), *self.shape[1:]), dtype=DTYPE)
        if len(unique):
            breaks = np.flatnonzero(np.diff(unique) != 1) + 1
            for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(unique)]):
                self._read_into(out[lo:hi], int(unique[lo]))
        if len(unique) == len(rows) and np.array_equal(unique, rows):
            return out
        return out[inverse.reshape(-1)]

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """The whole array, ``size`` rows at a time, in order."""
        for start in range(0, len(self), size):
            yield self._read_run(start, min(size, len(self) - start))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()

    def _read_run(self, start: int, count: int) -> np.ndarray:
        out = np.empty((count, *self.shape[1:]), dtype=DTYPE)
        if count:
            self._read_into(out, start)
        return out

    def _read_into(self, out: np.ndarray, start: int) -> None:
        if not out.size:  # zero-width images (a tabular-only source): nothing to read
            return
        view = memoryview(out.reshape(-1)).cast("B")
        at = self._offset + start * self._row_bytes
        while view:
            got = os.preadv(self._fd, [view], at)
            if got == 0:
                raise ValueError(f"{self.path} ended early at byte {at}")
            view, at = view[got:], at + got


class RowView:
    """Chosen ``rows`` of an image array, read only when indexed: ``view[i]`` is
    ``images[rows[i]]``. For a picture of a few test objects out of many, say, without
    gathering all of them first."""

    def __init__(self, images: PackedImages | np.ndarray, rows: np.ndarray) -> None:
        self._images = images
        self._rows = np.asarray(rows, dtype=np.int64)
        self.shape: tuple[int, ...] = (len(self._rows), *images.shape[1:])

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self._images[self._rows[key]])


def open_images(path: Path | str) -> PackedImages:
    """The packed images at ``path``, read batch by batch (see :class:`PackedImages`)."""
    return PackedImages(path)
