"""A saved model's probabilities for chosen rows of the survey, batch by batch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

    from skysort.model.inputs import Survey


def load_model(path: Path) -> keras.Model:
    """The model saved at ``path``, uncompiled (prediction needs no loss or optimizer).

    A missing file, or one Keras cannot read (truncated, overwritten, not a ``.keras``
    archive), is a :class:`~skysort.model.contract.ModelFileError` naming the file.
    """
    import zipfile

    import keras

    import skysort.model.losses  # noqa: F401  (registers the custom losses and metrics)
    from skysort.model.contract import ModelFileError

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"the model file {path} is missing: run the train stage, or `dvc checkout` / "
            "`dvc pull` it"
        )
    fix = "rerun the train stage, or restore it with `dvc checkout`"
    if not zipfile.is_zipfile(path):  # Keras would call it "not found"
        raise ModelFileError(
            f"the model file {path} ({path.stat().st_size} bytes) is not a .keras archive "
            f"(a zip file): truncated or corrupt; {fix}"
        )
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(
            f"the model file {path} ({path.stat().st_size} bytes) is not a Keras model this "
            f"can read (corrupt?): {type(exc).__name__}: {str(exc)[:300]}; {fix}"
        ) from exc


def predict_rows(
    net: keras.Model, survey: Survey, rows: np.ndarray, model_kind: str, batch_size: int
) -> np.ndarray:
    """``net``'s output for ``survey``'s ``rows``, in their order (memory-mapped cutouts)."""
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset

    ds = make_dataset(survey.images, survey.features, rows, INPUTS_BY_MODEL[model_kind], batch_size)
    return net.predict(ds, verbose=0)


def predict_arrays(
    net: keras.Model, images: np.ndarray, features: np.ndarray, inputs: tuple[str, ...],
    batch_size: int,
) -> np.ndarray:  # fmt: skip
    """``net``'s output for arrays already in memory, ``batch_size`` rows per call.

    No ``tf.data`` pipeline is built: one built per batch of a long prediction run
    (``from_generator``) would keep its generator alive and memory would grow with the
    number of batches.
    """
    out = []
    for start in range(0, len(features), batch_size):
        x = {"image": images[start : start + batch_size],
             "features": features[start : start + batch_size]}  # fmt: skip
        out.append(np.asarray(net.predict_on_batch({k: x[k] for k in inputs})))
    return np.concatenate(out) if out else np.empty((0, net.outputs[0].shape[-1]), np.float32)
