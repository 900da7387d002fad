"""The progress callback type long batched work reports through."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """``progress(done, total)``: called as work advances; the Prefect layer shows it in the UI.

    ``note`` says where the work stands in words (``epoch 3 of 20, val_loss 0.4120``);
    work that has nothing to add leaves it out.
    """

    def __call__(self, done: int, total: int, /, note: str | None = None) -> None: ...
