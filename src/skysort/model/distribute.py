"""The ``tf.distribute`` strategy training runs under (``train.distribute``).

- ``none``: TensorFlow's default strategy (one replica, no distribution).
- ``mirrored``: synchronous data parallelism on one machine, one replica per GPU,
  or per logical CPU device when there is no GPU. ``train.batch_size`` is the
  global batch, split across the replicas.
- ``multiworker``: synchronous data parallelism over several machines, each one
  running ``skysort stage train`` with the same params and its own ``TF_CONFIG``
  (cluster spec + this worker's task); without ``TF_CONFIG`` it is one local worker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TF_CONFIG_WORKER = "task"
"""The ``TF_CONFIG`` key naming this worker (TensorFlow's "task", not ``params.task``)."""


def make_strategy(kind: str) -> Any:
    """A ``tf.distribute.Strategy`` for ``kind`` (``none`` / ``mirrored`` / ``multiworker``).

    Must be called before the model is built; the model is built and compiled in
    its ``scope()``. ``multiworker`` must be created before any other TensorFlow op.
    """
    import tensorflow as tf

    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    elif kind == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        raise ValueError(f"train.distribute: unknown strategy {kind!r}")
    log.info(
        "training under %s with %d replica(s) in sync",
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
    )
    return strategy


def is_chief(tf_config: str | None = None) -> bool:
    """Whether this process writes the outputs: the ``chief`` task, else worker 0.

    Reads ``TF_CONFIG`` (``tf_config`` overrides it); without one, a process is its
    own chief. The other workers of a multi-worker run train but write nothing.
    """
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not raw.strip():
        return True
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"TF_CONFIG is not valid JSON: {exc}") from None
    worker = config.get(TF_CONFIG_WORKER) or {}  # this process's place in the cluster
    kind, index = worker.get("type", "worker"), int(worker.get("index", 0))
    if kind == "chief":
        return True
    has_chief = "chief" in (config.get("cluster") or {})
    return kind == "worker" and index == 0 and not has_chief


@contextlib.contextmanager
def chief_outputs(*paths: Path) -> Iterator[tuple[Path, ...]]:
    """The paths this process should write ``paths`` to: themselves on the chief.

    A multi-worker run's other workers train alongside the chief but write nothing:
    they get paths of the same names in a scratch folder, removed on exit.
    """
    if is_chief():
        yield paths
        return
    with tempfile.TemporaryDirectory(prefix="skysort-worker-") as scratch:
        log.info("not the chief worker (TF_CONFIG): outputs go to %s, then away", scratch)
        yield tuple(Path(scratch) / Path(p).name for p in paths)
