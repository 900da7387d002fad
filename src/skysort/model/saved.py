"""A trained model as evaluate, explain and predict read it, whatever its kind.

``train.model`` names one of three families, all read through :class:`SavedModel`
(``predict_proba`` over the same inputs: cutouts and the tabular feature matrix):

- a Keras net (``tabular``, ``image``, ``fusion``): the ``.keras`` file at
  ``paths.model``, as before;
- a tree model (``gboost``: LightGBM, ``forest``: a random forest), and
- an ``ensemble`` (the net plus the tree model that did best on validation, their
  probabilities mixed with a weight fitted on validation): a folder at
  ``paths.model`` holding ``model.json`` (what the folder holds), ``trees.joblib``
  and, for the ensemble, ``net.keras``.

:func:`load_saved` tells them apart by what is on disk, so a stage needs no
``train.model`` to read a model.
"""

from __future__ import annotations

import hashlib
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skysort.data import atomic

if TYPE_CHECKING:
    import keras

    from skysort.model.inputs import Survey

NET_KINDS: tuple[str, ...] = ("tabular", "image", "fusion")
TREE_KINDS: tuple[str, ...] = ("gboost", "forest")
FOLDER_FILE = "model.json"
"""In a model folder: its kind and what its files are."""
FORMAT = "skysort-model"
VERSION = 1


class SavedModel(ABC):
    """A trained model: its kind, the inputs it reads, its probabilities."""

    kind: str
    inputs: tuple[str, ...]

    @abstractmethod
    def predict_proba(
        self, images: np.ndarray, features: np.ndarray, batch_size: int
    ) -> np.ndarray:
        """Probabilities for arrays in memory (rows x outputs); ``images`` may be empty-width."""

    def predict_rows(self, survey: Survey, rows: np.ndarray, batch_size: int) -> np.ndarray:
        """Probabilities for ``survey``'s ``rows``, in their order."""
        from skysort.targets.base import gather

        images = gather(survey.images, rows) if "image" in self.inputs else _no_images(len(rows))
        return self.predict_proba(images, survey.features[rows], batch_size)

    @property
    def image_net(self) -> keras.Model | None:
        """The Keras net with an image branch that Grad-CAM and LIME can explain, if any."""
        return None

    def importances(self) -> dict[str, float] | None:
        """Feature importance by column (sums to 1), for a model with trees; else None."""
        return None

    @abstractmethod
    def check(self, contract: dict[str, Any], path: Path) -> None:
        """Raise a ``ContractError`` unless the model reads and writes what ``contract`` says."""


class KerasModel(SavedModel):
    """A Keras net saved as one ``.keras`` file."""

    def __init__(self, net: keras.Model, kind: str | None = None) -> None:
        self.net = net
        self.inputs = tuple(n for n in ("image", "features") if n in _input_names(net))
        self.kind = kind or {("image",): "image", ("features",): "tabular"}.get(
            self.inputs, "fusion"
        )

    def predict_proba(
        self, images: np.ndarray, features: np.ndarray, batch_size: int
    ) -> np.ndarray:
        from skysort.model.predict import predict_arrays

        return predict_arrays(self.net, images, features, self.inputs, batch_size)

    def predict_rows(self, survey: Survey, rows: np.ndarray, batch_size: int) -> np.ndarray:
        from skysort.model.predict import predict_rows

        return predict_rows(self.net, survey, rows, self.kind, batch_size)

    @property
    def image_net(self) -> keras.Model | None:
        return self.net if "image" in self.inputs else None

    def check(self, contract: dict[str, Any], path: Path) -> None:
        from skysort.model.contract import check_model

        check_model(contract, self.net, path)


def _input_names(net: Any) -> set[str]:
    return {t.name.split(":")[0] for t in net.inputs}


def _no_images(n: int) -> np.ndarray:
    return np.zeros((n, 0, 0, 3), dtype=np.uint8)


def load_saved(path: Path) -> SavedModel:
    """The model at ``path``: a ``.keras`` file, or a model folder (trees, ensemble).

    Anything missing or unreadable is a :class:`~skysort.model.contract.ModelFileError`
    naming the file.
    """
    from skysort.model.contract import ModelFileError
    from skysort.model.predict import load_model

    path = Path(path)
    if not path.is_dir():
        return KerasModel(load_model(path))
    meta_path = path / FOLDER_FILE
    try:
        meta = atomic.read_json(meta_path)
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"the model folder {path} has no readable {FOLDER_FILE} ({exc}): rerun the train "
            "stage, or restore it with `dvc checkout`"
        ) from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ModelFileError(f"{meta_path} is not a version-{VERSION} {FORMAT} file: rerun train")
    from skysort.model.ensemble import EnsembleModel
    from skysort.model.trees import TreeModel

    trees = TreeModel.load(path, meta["trees"])
    if meta["kind"] in TREE_KINDS:
        return trees
    net = KerasModel(load_model(path / meta["net"]["file"]), meta["net"]["kind"])
    return EnsembleModel(net, trees, float(meta["weight_net"]))


def new_folder(path: Path) -> Path:
    """An empty model folder at ``path`` (a file or folder there before is removed)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.mkdir(parents=True)
    return path


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """The folder's ``model.json`` (written last: a folder without it is no model)."""
    atomic.write_json(Path(folder) / FOLDER_FILE, {"format": FORMAT, "version": VERSION, **meta})


def model_md5(path: Path) -> str:
    """The model's identity: a file's MD5 (as DVC records it), or a digest of a folder's files."""
    from skysort.model.contract import file_md5

    path = Path(path)
    if not path.is_dir():
        return file_md5(path)
    digest = hashlib.md5()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{f.relative_to(path).as_posix()} {file_md5(f)}\n".encode())
    return digest.hexdigest()
