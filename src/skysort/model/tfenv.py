"""TensorFlow's process settings: the environment it reads when it loads, seeds, threads."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def quiet_tensorflow_info() -> None:
    """Hide TensorFlow's C++ INFO lines (``cpu_feature_guard`` ...) unless the user chose a level.

    Sets ``TF_CPP_MIN_LOG_LEVEL=1`` only where it is unset: warnings and errors still
    show. TensorFlow reads the variable when it loads, so call this before its first
    import; later it changes nothing. The ``oneDNN custom operations are on`` line is
    logged before TensorFlow reads the variable, so no level hides it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


def configure_tensorflow(threads: int, seed: int) -> None:
    """Seed everything and make ops deterministic, so a rerun gives the same metrics.

    ``threads`` > 0 caps TensorFlow's intra-op threads (inter-op: half of them).
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, threads // 2))
        except RuntimeError:  # already initialised in this process
            log.debug("TensorFlow threads already configured")
