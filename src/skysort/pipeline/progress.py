"""The progress callback type long batched work reports through."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as work advances; the Prefect layer shows it in the UI."""
