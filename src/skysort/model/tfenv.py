"""The environment TensorFlow reads when it loads, set by the stages that load it."""

from __future__ import annotations

import os


def quiet_tensorflow_info() -> None:
    """Hide TensorFlow's C++ INFO lines (``cpu_feature_guard`` ...) unless the user chose a level.

    Sets ``TF_CPP_MIN_LOG_LEVEL=1`` only where it is unset: warnings and errors still
    show. TensorFlow reads the variable when it loads, so call this before its first
    import; later it changes nothing. The ``oneDNN custom operations are on`` line is
    logged before TensorFlow reads the variable, so no level hides it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
