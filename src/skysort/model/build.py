"""The Keras classifiers: tabular MLP, image encoder, and their fusion.

Inputs are named like the dataset's keys: ``"image"`` (``image_size`` x ``image_size``
x 3, float32 holding raw 0-255 pixel values, as the input pipeline yields them) and
``"features"`` (the tabular photometry). Everything an image needs before the
encoder (resizing to the encoder's input size, the backbone's own
``preprocess_input``) is a layer of the model, so a saved model takes raw cutouts
and no preprocessing code has to travel with it. Only stock Keras layers are used,
so ``keras.models.load_model`` needs no custom objects for the model itself.

Layout::

    image ── image_encoder [Resizing? → preprocessing → backbone (GAP)] → image_projection* ─┐
                                                                                             ├ Concatenate → head_dense → head_dropout → probabilities
    features ── tabular_encoder [Normalization → (Dense → Dropout)*] ────────────────────────┘

    * fusion only: Dense to the tabular branch's width, then Dropout.

"tabular" keeps only the lower branch (straight into ``probabilities``), "image"
only the upper one (through the head).

``task="multiclass"`` ends in a softmax over the classes, ``"multilabel"`` in one
sigmoid per label. ``train.head_conv_filters`` adds new conv layers on the
backbone's feature map before the pooling (the origin multilabel system's "frozen
backbone + new conv and dense layers", with ``trainable_layers: 0``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from skysort import targets
from skysort.config import Train
from skysort.model.encoders import ENCODERS, Preprocessing

log = logging.getLogger(__name__)

# ImageNet statistics used by keras.applications.imagenet_utils.preprocess_input.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


def build_model(
    train: Train,
    n_features: int,
    n_classes: int,
    image_size: int,
    feature_mean: np.ndarray | None = None,
    feature_var: np.ndarray | None = None,
    task: str = "multiclass",
) -> keras.Model:
    """The uncompiled classifier ``train.model`` names.

    Multiclass: a softmax over ``n_classes``; multilabel: ``n_classes`` sigmoids (one
    per label). ``feature_mean`` / ``feature_var`` normalise the tabular features and
    must come from the train split only (leakage); without them the features pass
    unscaled.
    """
    target = targets.get(task)
    if n_classes < target.min_outputs:
        raise ValueError(
            f"a {task} classifier needs at least {target.min_outputs} outputs, got {n_classes}"
        )
    # Keras reads its dtype policy when a layer is made: the net's layers take
    # train.precision, and the process's policy is put back for whatever is built next.
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(train.precision)
    try:
        return _build(train, n_features, n_classes, image_size, feature_mean, feature_var, task)
    finally:
        keras.config.set_dtype_policy(before)


def _float32(train: Train) -> dict[str, str]:
    """A layer's arguments that keep it in float32 under mixed precision.

    The feature scaling (magnitudes near 20 would keep three significant digits in
    bfloat16, and colours are their differences) and the output probabilities.
    """
    return {"dtype": "float32"} if train.precision != "float32" else {}


def _build(
    train: Train,
    n_features: int,
    n_classes: int,
    image_size: int,
    feature_mean: np.ndarray | None,
    feature_var: np.ndarray | None,
    task: str,
) -> keras.Model:
    target = targets.get(task)
    inputs: dict[str, keras.KerasTensor] = {}
    branches: list[keras.KerasTensor] = []
    if train.model in ("image", "fusion"):
        inputs["image"] = keras.Input(shape=(image_size, image_size, 3), name="image")
        image = build_image_encoder(train, image_size)(inputs["image"])
        if train.model == "fusion" and train.dense_units:
            # Project the image features to the tabular branch's width before fusing: a
            # backbone's 128-2048 pooled features would otherwise outnumber the tabular
            # branch's few, and the head would lean on the image alone (on the simulated
            # survey the unprojected fusion scored no better than the image model).
            width = train.dense_units[-1]
            image = keras.layers.Dense(width, activation="relu", name="image_projection")(image)
            image = keras.layers.Dropout(train.dropout, name="image_projection_dropout")(image)
        if train.model == "fusion" and train.modality_dropout > 0:
            # Modality dropout: drop a sample's whole image vector (noise_shape broadcasts
            # one draw over the features), so the head must also learn from the
            # photometry alone instead of leaning on the faster-learning image branch.
            image = keras.layers.Dropout(
                train.modality_dropout, noise_shape=(None, 1), name="modality_dropout"
            )(image)
        branches.append(image)
    if train.model in ("tabular", "fusion"):
        if n_features < 1:
            raise ValueError(f"the tabular branch needs at least one feature, got {n_features}")
        inputs["features"] = keras.Input(shape=(n_features,), name="features")
        encoder = build_tabular_encoder(train, n_features, feature_mean, feature_var)
        branches.append(encoder(inputs["features"]))

    if train.model == "tabular":
        x = branches[0]  # the MLP already ends in dense_units[-1] with dropout
    else:
        x = branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="fuse")(branches)
        if train.dense_units:
            x = keras.layers.Dense(train.dense_units[-1], activation="relu", name="head_dense")(x)
            x = keras.layers.Dropout(train.dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(
        n_classes, activation=target.activation, name="probabilities", **_float32(train)
    )(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name=f"skysort_{train.model}")
    log.info(
        "built %s model (%s encoder): %d parameters, %d trainable",
        train.model,
        train.image_encoder if train.model != "tabular" else "no image",
        model.count_params(),
        sum(int(np.prod(w.shape)) for w in model.trainable_weights),
    )
    return model


def encoder_input_size(train: Train, image_size: int) -> int:
    """The side, in pixels, images are resized to before ``train.image_encoder``.

    ``train.backbone_input_size`` when set, else the cutout size raised to the
    encoder's minimum (Xception needs 71; the others 32). Upsampling a 64-pixel cutout
    adds no information; it only lets the backbone's strides fit.
    """
    min_size = _min_size(train)
    if train.backbone_input_size:
        if train.backbone_input_size < min_size:
            raise ValueError(
                f"train.backbone_input_size: {train.image_encoder} needs at least "
                f"{min_size} pixels, got {train.backbone_input_size}"
            )
        return train.backbone_input_size
    return max(image_size, min_size)


def build_image_encoder(train: Train, image_size: int) -> keras.Model:
    """Raw 0-255 cutouts → a feature vector: crop, resize, preprocessing, the backbone.

    The backbone is a nested model named ``backbone``; a weights file given as
    ``train.weights`` must hold that model's weights (a keras.applications model built
    with ``include_top=False``, or our small CNN).
    """
    spec = ENCODERS[train.image_encoder]
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    if train.center_crop and train.center_crop < image_size:
        crop = train.center_crop
        x = keras.layers.CenterCrop(crop, crop, name="center_crop")(x)
        image_size = crop
    size = encoder_input_size(train, image_size)
    if size != image_size:
        x = keras.layers.Resizing(size, size, interpolation="bilinear", name="resize")(x)
    x = _preprocess(x, spec.preprocessing)
    pooled = not train.head_conv_filters
    if spec.constructor is None:
        backbone = _small_cnn(train, size, pooled)
    else:
        backbone = _pretrained(train, size, pooled)
    outputs = backbone(x)
    if not pooled:
        # New layers on the backbone's feature map, always trainable.
        for i, filters in enumerate(train.head_conv_filters):
            outputs = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=f"head_conv_{i}"
            )(outputs)
        outputs = keras.layers.GlobalAveragePooling2D(name="head_pool")(outputs)
    return keras.Model(inputs, outputs, name="image_encoder")


def build_tabular_encoder(
    train: Train,
    n_features: int,
    mean: np.ndarray | None = None,
    var: np.ndarray | None = None,
) -> keras.Model:
    """Features → standardised with the given train-split statistics → an MLP of ``train.dense_units``."""
    if mean is None or var is None:
        log.warning("no feature statistics given: the tabular features pass unscaled")
        mean, var = np.zeros(n_features), np.ones(n_features)
    mean = np.asarray(mean, dtype="float32").reshape(-1)
    var = np.asarray(var, dtype="float32").reshape(-1)
    if mean.shape != (n_features,) or var.shape != (n_features,):
        raise ValueError(
            f"feature mean/var must have {n_features} values each, got {mean.shape} and {var.shape}"
        )
    if not (np.isfinite(mean).all() and np.isfinite(var).all()) or (var < 0).any():
        raise ValueError(f"feature mean/var must be finite and var >= 0: {mean}, {var}")
    # A feature constant on the train split would be divided by ~0 (Keras floors the
    # std at 1e-7) and blow up on any other split; centre it only.
    var = np.where(var > 0, var, 1.0).astype("float32")

    inputs = keras.Input(shape=(n_features,), name="features")
    x = keras.layers.Normalization(mean=mean, variance=var, name="standardise", **_float32(train))(
        inputs
    )
    for i, units in enumerate(train.dense_units):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        x = keras.layers.Dropout(train.dropout, name=f"dropout_{i}")(x)
    return keras.Model(inputs, x, name="tabular_encoder")


def set_trainable_layers(backbone: keras.Model, n: int) -> None:
    """Leave only the top ``n`` weighted layers of ``backbone`` trainable (``-1`` = all).

    Layers are counted from the output down, and only those with trainable weights
    (convolutions, dense layers) count; BatchNormalization layers never count and,
    whenever the backbone is partly frozen (``n >= 0``), all of them stay frozen,
    which in Keras 3 also runs them in inference mode: fine-tuning on a few thousand
    cutouts would otherwise wreck the moving statistics the pretrained weights rely on.
    ``n = 0`` freezes the whole backbone (a pure feature extractor).
    """
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = True
    if n < 0:
        return
    weighted = [
        layer
        for layer in backbone.layers
        if layer.trainable_weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    if n > len(weighted):
        log.warning(
            "train.trainable_layers=%d but %s has only %d weighted layers: all of them train "
            "(BatchNormalization stays frozen; use -1 to train it too)",
            n,
            backbone.name,
            len(weighted),
        )
    keep = {id(layer) for layer in weighted[len(weighted) - n :]} if n else set()
    for layer in backbone.layers:
        layer.trainable = id(layer) in keep


def _min_size(train: Train) -> int:
    spec = ENCODERS[train.image_encoder]
    if spec.constructor is None:
        # Each conv block halves the image; the last one needs at least one pixel.
        return max(spec.min_size, 2 ** len(train.conv_filters))
    return spec.min_size


def _resolve_weights(train: Train) -> str | None:
    """``none`` → None, ``imagenet`` → "imagenet", anything else → an existing file's path."""
    if train.weights == "none":
        return None
    if train.weights == "imagenet":
        return "imagenet"
    path = Path(train.weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"train.weights: weights file {train.weights!r} not found "
            f"(give 'none', 'imagenet' or the path of an existing .weights.h5 / .h5 file)"
        )
    return str(path)


def _pretrained(train: Train, size: int, pooled: bool = True) -> keras.Model:
    """A keras.applications backbone without its top, average-pooled to one vector.

    ``pooled=False``: the backbone ends at its last feature map.
    """
    spec = ENCODERS[train.image_encoder]
    weights = _resolve_weights(train)
    constructor = getattr(keras.applications, spec.constructor)
    backbone = constructor(
        include_top=False,
        weights=weights,
        input_shape=(size, size, 3),
        pooling="avg" if pooled else None,
        name="backbone",
    )
    if weights is None:
        # From scratch, a few hundred steps are all there is: with keras.applications'
        # BatchNorm momentum of 0.99 the inference-time statistics stay near their
        # initial values and validation collapses to one class (seen with MobileNetV3Small,
        # val accuracy 0.23 on the simulated survey). 0.9 follows the data in ~20 steps.
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.9
    set_trainable_layers(backbone, train.trainable_layers)
    log.info(
        "%s backbone at %dx%d, weights=%s, trainable_layers=%d",
        train.image_encoder,
        size,
        size,
        train.weights,
        train.trainable_layers,
    )
    return backbone


def _small_cnn(train: Train, size: int, pooled: bool = True) -> keras.Model:
    """A CPU-friendly CNN: conv blocks (3x3 convs + ReLU, then a 2x2 max-pool), then pooling.

    One block per entry of ``train.conv_filters``, ``train.convs_per_block`` convs
    each; ``train.pooling`` turns the last map into a vector (average or flatten).

    No BatchNormalization: with a few hundred steps in all, its moving statistics lag
    the weights, and validation loss jumped from 0.33 to 2.4 between epochs on the
    simulated survey, so early stopping picked an arbitrary epoch. Three conv blocks
    train stably without it, and faster. Always fully trainable
    (``train.trainable_layers`` does not apply): it starts from scratch unless
    ``train.weights`` names a file of its own weights.
    """
    if not train.conv_filters:
        raise ValueError("train.conv_filters: the small CNN needs at least one conv block")
    if train.weights == "imagenet":
        raise ValueError("train.weights: there are no ImageNet weights for small_cnn")
    if train.trainable_layers >= 0:
        log.info("train.trainable_layers does not apply to small_cnn: all its layers train")
    inputs = keras.Input(shape=(size, size, 3), name="pixels")
    x = inputs
    for i, filters in enumerate(train.conv_filters):
        for j in range(train.convs_per_block):
            name = f"conv_{i}" if j == 0 else f"conv_{i}_{j}"
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    if pooled and train.pooling == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    elif pooled:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    weights = _resolve_weights(train)
    if weights is not None:
        backbone.load_weights(weights)
    return backbone


def _preprocess(x: keras.KerasTensor, kind: Preprocessing) -> keras.KerasTensor:
    """``preprocess_input`` as stock layers, so it is saved with the model.

    Only stock layers: a saved model must load without custom objects. Caffe's
    channel swap has no stock layer, so it is a frozen 3x3 Dense whose kernel is the
    RGB→BGR permutation (exact: each output is one input times 1); its kernel is set
    after building, so no custom initializer ends up in the saved config.
    """
    if kind == "builtin":
        return x
    if kind == "unit":
        return keras.layers.Rescaling(1.0 / 255.0, name="preprocess")(x)
    if kind == "tf":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(x)
    if kind == "torch":
        # (x / 255 - mean) / std  ==  x * (1 / (255 std)) - mean / std
        scale = [1.0 / (255.0 * s) for s in _TORCH_STD_RGB]
        offset = [-m / s for m, s in zip(_TORCH_MEAN_RGB, _TORCH_STD_RGB)]
        return keras.layers.Rescaling(scale, offset=offset, name="preprocess")(x)
    if kind == "caffe":
        swap = keras.layers.Dense(3, use_bias=False, trainable=False, name="rgb_to_bgr")
        x = swap(x)
        swap.set_weights([np.eye(3, dtype="float32")[::-1].copy()])
        offset = [-m for m in _CAFFE_MEAN_BGR]
        return keras.layers.Rescaling(1.0, offset=offset, name="preprocess")(x)
    raise ValueError(f"unknown preprocessing {kind!r}")
