"""Seeded random streams: independent generators per purpose (and per object), from one seed."""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *names: str) -> np.random.Generator:
    """An independent generator per purpose, so changing one draw does not shift the others."""
    return np.random.default_rng([int(seed), *(zlib.crc32(name.encode()) for name in names)])


def object_stream(seed: int, name: str, objid: int) -> np.random.Generator:
    """A generator per purpose and object, so a shard draws what a whole run draws for it."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()), objid & (2**63 - 1)])
