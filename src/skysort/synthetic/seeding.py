"""Seeded random streams: one independent generator per purpose, all from one seed."""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *names: str) -> np.random.Generator:
    """An independent generator per purpose, so changing one draw does not shift the others."""
    return np.random.default_rng([int(seed), *(zlib.crc32(name.encode()) for name in names)])
