"""skysort.model.tfenv: TensorFlow's C++ log level defaults to hiding INFO, never overrides the user."""

from __future__ import annotations

import os

from skysort.model.tfenv import quiet_tensorflow_info


def test_info_lines_are_hidden_by_default_and_a_users_level_is_kept(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet_tensorflow_info()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"  # warnings and errors still show
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_tensorflow_info()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
