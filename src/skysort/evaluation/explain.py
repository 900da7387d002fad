"""Where the model looked: Grad-CAM on the image branch and LIME on the cutout.

Both explain one object and one output (a class, or a label) at a time, for the
models :func:`skysort.model.build.build_model` builds. Grad-CAM needs the image
encoder's last feature map, which sits inside nested models (``image_encoder``,
``backbone``), so :func:`split_at_feature_map` rebuilds the forward pass in two
parts from the model's own layers (shared weights, nothing copied) and checks
that the two parts together give the model's own output. LIME perturbs the
cutout only: a fusion model's photometry is held fixed at the object's values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

import keras
import numpy as np

log = logging.getLogger(__name__)

# Superpixels a LIME mask keeps: those with the largest positive weights.
LIME_SUPERPIXELS = 5


@dataclass(frozen=True)
class ImageBranch:
    """A model split at its image encoder's last spatial feature map."""

    feature_map: Callable[[Any], Any]  # raw images (n, h, w, 3) -> maps (n, h', w', k)
    head: Callable[[Any, Any], Any]  # (maps, features or None) -> the model's outputs
    crop: int = 0  # side of the central square the map covers (train.center_crop; 0 = all)


def split_at_feature_map(model: keras.Model) -> ImageBranch | None:
    """The model as feature map then head; None for a model without an image input.

    Follows the layout in :mod:`skysort.model.build`: inside ``image_encoder`` a chain
    (resize, preprocessing, ``backbone``, new conv layers, pooling); outside it the
    optional ``image_projection``, the ``fuse`` with ``tabular_encoder``, the
    ``head_dense`` and ``probabilities``. Dropout layers are left out: they are the
    identity at inference.
    """
    layers = {layer.name: layer for layer in model.layers}
    if "image_encoder" not in layers:
        return None
    encoder = layers["image_encoder"]
    chain = [layer for layer in encoder.layers if not isinstance(layer, keras.layers.InputLayer)]
    (at,) = [k for k, layer in enumerate(chain) if layer.name == "backbone"]
    backbone = chain[at]
    last = backbone.layers[-1]
    if isinstance(last, (keras.layers.GlobalAveragePooling2D, keras.layers.Flatten)):
        # The pooled (or flattened) backbone: the map is what its last layer reads.
        to_map = keras.Model(backbone.inputs, last.input, name="backbone_feature_map")
        tail = [last, *chain[at + 1 :]]
    else:
        to_map, tail = backbone, chain[at + 1 :]
    before = chain[:at]
    crops = [layer for layer in before if isinstance(layer, keras.layers.CenterCrop)]
    crop = int(crops[0].height) if crops else 0

    def feature_map(images: Any) -> Any:
        x = images
        for layer in before:
            x = layer(x)
        return to_map(x)

    def head(maps: Any, features: Any) -> Any:
        x = maps
        for layer in tail:
            x = layer(x)
        if "image_projection" in layers:
            x = layers["image_projection"](x)
        if "tabular_encoder" in layers:
            x = layers["fuse"]([x, layers["tabular_encoder"](features)])
        if "head_dense" in layers:
            x = layers["head_dense"](x)
        return layers["probabilities"](x)

    return ImageBranch(feature_map, head, crop)


def model_inputs(images: np.ndarray, features: np.ndarray | None) -> dict[str, np.ndarray]:
    """The model's inputs by name: cutouts as float32 0-255, and the photometry if given."""
    inputs = {"image": np.asarray(images, dtype="float32")}
    if features is not None:
        inputs["features"] = np.asarray(features, dtype="float32")
    return inputs


def check_split(
    model: keras.Model, branch: ImageBranch, images: np.ndarray, features: np.ndarray | None
) -> None:
    """Raise unless feature map + head give the model's own outputs (models.py changed)."""
    import tensorflow as tf

    want = keras.ops.convert_to_numpy(model(model_inputs(images, features), training=False))
    feats = None if features is None else tf.convert_to_tensor(features, dtype="float32")
    maps = branch.feature_map(tf.convert_to_tensor(images, "float32"))
    got = keras.ops.convert_to_numpy(branch.head(maps, feats))
    if not np.allclose(want, got, atol=1e-4):
        raise RuntimeError(
            "Grad-CAM's split of the model does not reproduce its outputs (max difference "
            f"{np.abs(want - got).max():.2g}): explain.split_at_feature_map no longer "
            "matches the layout models.build_model builds"
        )


def gradcam(
    branch: ImageBranch, image: np.ndarray, features: np.ndarray | None, target: int
) -> np.ndarray:
    """Grad-CAM heatmap of output ``target`` for one cutout: (h, w), in [0, 1].

    The map's channels weighted by the mean gradient of the output over each
    channel, summed, ReLU'd, resized bilinearly to the cutout (to its central
    square when the model sees only that, zero outside) and scaled to a maximum of 1
    (all zeros where nothing pushes the output up).
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(image[None], dtype="float32")
    f = None if features is None else tf.convert_to_tensor(features[None], dtype="float32")
    with tf.GradientTape() as tape:
        maps = branch.feature_map(x)
        tape.watch(maps)
        score = branch.head(maps, f)[0, target]
    grads = tape.gradient(score, maps)[0]
    weights = tf.reduce_mean(grads, axis=(0, 1))
    cam = tf.nn.relu(tf.reduce_sum(maps[0] * weights, axis=-1))
    height, width = image.shape[:2]
    side = (branch.crop, branch.crop) if branch.crop else (height, width)
    cam = tf.image.resize(cam[..., None], side, method="bilinear")[..., 0].numpy()
    if branch.crop:
        # keras CenterCrop's offsets: (height - crop) // 2 from the top and the left.
        top, left = (height - branch.crop) // 2, (width - branch.crop) // 2
        full = np.zeros((height, width), dtype=cam.dtype)
        full[top : top + branch.crop, left : left + branch.crop] = cam
        cam = full
    cam = np.clip(np.nan_to_num(cam, nan=0.0, posinf=0.0), 0.0, None)
    top = float(cam.max())
    return (cam / top if top > 0 else cam).astype("float32")


def lime_masks(
    predict: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    targets: list[int],
    *,
    num_samples: int,
    seed: int,
    batch_size: int = 256,
) -> dict[int, np.ndarray]:
    """Per target, LIME's mask of the superpixels that raise it most: (h, w) bool.

    ``predict`` takes a batch of cutouts (n, h, w, 3) and returns the model's
    outputs. Hidden superpixels take the sky level (the cutout's per-channel
    median), not black: a black hole in the sky is no object the model has seen.
    """
    from lime import lime_image
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    sky = np.median(image.reshape(-1, image.shape[-1]), axis=0)
    segmenter = SegmentationAlgorithm(
        "quickshift", kernel_size=2, max_dist=20, ratio=0.5, random_seed=seed
    )
    explainer = lime_image.LimeImageExplainer(random_state=seed)
    # lime 0.2.0.1 always draws a tqdm bar on stderr, once per object; keep logs clean.
    with patch.object(lime_image, "tqdm", lambda rows: rows):
        explanation = explainer.explain_instance(
            np.asarray(image),
            predict,
            labels=tuple(targets),
            top_labels=None,
            hide_color=sky,
            num_samples=num_samples,
            batch_size=batch_size,
            segmentation_fn=segmenter,
            random_seed=seed,
        )
    masks = {}
    for target in targets:
        _, mask = explanation.get_image_and_mask(
            target, positive_only=True, num_features=LIME_SUPERPIXELS, hide_rest=False
        )
        masks[target] = np.asarray(mask, dtype=bool)
    return masks


def predictor(
    model: keras.Model, features: np.ndarray | None, batch_size: int
) -> Callable[[np.ndarray], np.ndarray]:
    """Cutouts -> the model's outputs, with one object's photometry held fixed."""

    def predict(images: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            feats = None if features is None else np.repeat(features[None], len(batch), axis=0)
            out.append(
                keras.ops.convert_to_numpy(model(model_inputs(batch, feats), training=False))
            )
        return np.concatenate(out)

    return predict


def write_explanations(
    model: keras.Model,
    images: np.ndarray,
    features: np.ndarray,
    objids: np.ndarray,
    targets: list[list[tuple[int, str]]],
    out_dir: Any,
    *,
    lime_samples: int,
    seed: int,
    batch_size: int,
) -> list[dict[str, Any]]:
    """One PNG per object, ``out_dir/<objid>.png``: per target, the cutout, Grad-CAM and LIME.

    ``images``, ``features`` and ``objids`` hold the objects to explain, row by row;
    ``targets[i]`` lists (output index, caption) pairs for object i. Returns, per
    object, its file name and the captions explained. The model must have an image
    branch (:func:`split_at_feature_map` is not None).
    """
    from pathlib import Path

    from skysort.evaluation import plots

    branch = split_at_feature_map(model)
    if branch is None:
        raise ValueError(f"model {model.name} has no image branch to explain")
    fused = "tabular_encoder" in {layer.name for layer in model.layers}
    feats = np.asarray(features, dtype="float32") if fused else None
    check_split(model, branch, np.asarray(images[:1]), None if feats is None else feats[:1])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, objid in enumerate(objids):
        image = np.asarray(images[i])
        f = None if feats is None else feats[i]
        wanted = [k for k, _ in targets[i]]
        masks = lime_masks(
            predictor(model, f, batch_size),
            image,
            wanted,
            num_samples=lime_samples,
            seed=seed,
            batch_size=batch_size,
        )
        rows = [(caption, gradcam(branch, image, f, k), masks[k]) for k, caption in targets[i]]
        name = f"{int(objid)}.png"
        plots.explanation_png(image, rows, f"objid {int(objid)}", out / name)
        written.append({"objid": int(objid), "file": name, "explained": [c for _, c in targets[i]]})
    return written
