"""A trained model's contract: what it needs as input and how its outputs are read.

The train stage saves it beside the model (``paths.contract``); predict builds its
inputs from it, not from today's ``params.yaml``, so a model from another revision
is fed what it was trained on. Anything that does not fit is refused, naming it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from skysort.config import Data, Train
from skysort.data import atomic

VERSION = 1
INPUTS_BY_MODEL: dict[str, tuple[str, ...]] = {
    "fusion": ("image", "features"),
    "image": ("image",),
    "tabular": ("features",),
    "gboost": ("features",),
    "forest": ("features",),
}
"""The input names each model kind reads; they equal the dataset's keys (an ensemble
reads its net's)."""


class ContractError(ValueError):
    """A model, its contract and the inputs offered to it do not fit together."""


class ModelFileError(ContractError):
    """The model file is missing, or not a Keras model it can read (truncated, garbage)."""


def make_contract(
    *,
    task: str,
    outputs: tuple[str, ...],
    data: Data,
    train: Train,
    n_features: int,
    feature_mean: np.ndarray,
    feature_var: np.ndarray,
    decisions: dict[str, Any],
    inputs: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The contract of a model trained with these settings (JSON-ready).

    ``inputs``: what the saved model reads, where its kind alone does not say (an
    ensemble reads what its net reads).
    """
    return {
        "version": VERSION,
        "task": task,
        "outputs": list(outputs),
        "model": train.model,
        "image_encoder": train.image_encoder,
        "inputs": list(inputs if inputs is not None else INPUTS_BY_MODEL[train.model]),
        "features": list(data.features),
        "asinh_scales": dict(data.asinh_scales),
        "colour_inputs": bool(train.colour_inputs),
        "n_features": int(n_features),
        "image_size": int(data.image_size),
        "center_crop": int(train.center_crop),
        "feature_mean": [float(v) for v in feature_mean],
        "feature_var": [float(v) for v in feature_var],
        "decisions": decisions,
    }


def read_contract(path: Path) -> dict[str, Any]:
    """The contract saved at ``path``; a :class:`ContractError` if it is missing or unreadable."""
    try:
        contract = atomic.read_json(path)
    except FileNotFoundError:
        raise ContractError(
            f"{path} is missing: the model has no contract (rerun the train stage)"
        ) from None
    except ValueError as exc:
        raise ContractError(f"{path} is not a model contract: {exc}") from None
    if not isinstance(contract, dict) or contract.get("version") != VERSION:
        raise ContractError(f"{path} is not a version-{VERSION} model contract: rerun train")
    return contract


def contract_data(contract: dict[str, Any], data: Data) -> Data:
    """``data`` with the contract's features, transforms, outputs and image size."""
    names = "labels" if contract["decisions"].get("labels") is not None else "classes"
    return data.model_copy(
        update={
            "features": tuple(contract["features"]),
            "asinh_scales": dict(contract["asinh_scales"]),
            "image_size": int(contract["image_size"]),
            names: tuple(contract["outputs"]),
        }
    )


def differences(contract: dict[str, Any], **settings: Any) -> dict[str, tuple[Any, Any]]:
    """The ``settings`` whose value differs from the contract's, as (contract's, given)."""
    return {k: (contract[k], v) for k, v in settings.items() if contract.get(k) != v}


def check_model(contract: dict[str, Any], model: Any, path: Path) -> None:
    """The saved Keras model's inputs and outputs must be those the contract names."""
    shapes = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
    want: dict[str, tuple[int, ...]] = {}
    if "image" in contract["inputs"]:
        size = contract["image_size"]
        want["image"] = (size, size, 3)
    if "features" in contract["inputs"]:
        want["features"] = (contract["n_features"],)
    outputs = int(model.outputs[0].shape[-1])
    problems = [
        f"input {name!r} is {shapes.get(name)}, the contract says {shape}"
        for name, shape in want.items()
        if shapes.get(name) != shape
    ]
    if set(shapes) != set(want):
        problems.append(f"inputs are {sorted(shapes)}, the contract says {sorted(want)}")
    if outputs != len(contract["outputs"]):
        problems.append(f"{outputs} outputs, the contract names {len(contract['outputs'])}")
    if problems:
        raise ContractError(f"{path} does not match its contract: " + "; ".join(problems))


def check_columns(contract: dict[str, Any], columns: list[str], where: str) -> None:
    """The objects offered must carry every feature the model reads."""
    missing = [f for f in contract["features"] if f not in columns]
    if missing:
        raise ContractError(f"the model reads {contract['features']}, but {where} has no {missing}")


def file_md5(path: Path) -> str:
    """The MD5 of a file's bytes (what DVC records for a file output)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
