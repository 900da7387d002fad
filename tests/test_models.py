"""Models and losses: every model kind and backbone builds and trains a step, freezing,
weights files, focal loss against numpy, and a save/load round trip.

Backbone steps run eagerly: tracing a graph for ResNet50 or DenseNet121 costs 20-40 s
on two CPU cores, an eager step 1-3 s, and graph mode is exercised by the small models.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from skysort.config import IMAGE_ENCODERS, Params, Train
from skysort.model.build import (
    ENCODERS,
    build_model,
    build_tabular_encoder,
    encoder_input_size,
    set_trainable_layers,
)
from skysort.model.losses import SparseCategoricalFocalLoss, make_loss
from skysort.model.tfdata import make_dataset

TINY = {"conv_filters": (4, 8), "dense_units": (8,), "dropout": 0.1}
N_FEATURES = 3
N_CLASSES = 3
BACKBONES = [name for name in IMAGE_ENCODERS if name != "small_cnn"]
# Module of keras.applications holding each family's preprocess_input.
PREPROCESS_MODULE = {
    "resnet50": "resnet50",
    "densenet121": "densenet",
    "vgg16": "vgg16",
    "vgg19": "vgg19",
    "xception": "xception",
    "efficientnetb0": "efficientnet",
    "efficientnetb1": "efficientnet",
    "efficientnetb2": "efficientnet",
    "mobilenetv3small": "mobilenet_v3",
    "mobilenetv3large": "mobilenet_v3",
}


def batch(size: int, n: int = 4, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    x = {
        "image": rng.integers(0, 256, (n, size, size, 3)).astype("float32"),
        "features": rng.normal(18, 2, (n, N_FEATURES)).astype("float32"),
    }
    return x, np.arange(n) % N_CLASSES


def train_one_step(model: keras.Model, train: Train, x: dict, y: np.ndarray, eager: bool) -> float:
    """One optimizer step; asserts the loss is finite and some trainable weight moved."""
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=make_loss(train, N_CLASSES),
        jit_compile=False,
        run_eagerly=eager,
    )
    x = {k: v for k, v in x.items() if k in model.input}
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])
    assert np.isfinite(loss)
    after = [w.numpy() for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    return loss


def backbone_of(model: keras.Model) -> keras.Model:
    return model.get_layer("image_encoder").get_layer("backbone")


@pytest.mark.parametrize(
    ("kind", "names"),
    [("tabular", ["features"]), ("image", ["image"]), ("fusion", ["features", "image"])],
)
def test_each_model_kind_names_its_inputs_and_fits_one_step(kind: str, names: list[str]) -> None:
    train = Train(model=kind, **TINY)
    x, y = batch(32)
    features = x["features"]
    model = build_model(
        train, N_FEATURES, N_CLASSES, 32, features.mean(axis=0), features.var(axis=0)
    )
    assert sorted(t.name for t in model.inputs) == names
    # The real input pipeline: uint8 images (cast to float32 there), int64 labels.
    images = x["image"].astype("uint8")
    ds = make_dataset(images, features, np.arange(4), tuple(names), 4, y=y.astype("int64"))
    model.compile(optimizer="adam", loss=make_loss(train, N_CLASSES), jit_compile=False)
    history = model.fit(ds, epochs=1, steps_per_epoch=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    proba = model.predict({k: x[k] for k in names}, verbose=0)
    assert proba.shape == (4, N_CLASSES)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("encoder", ["small_cnn", "mobilenetv3small"])
def test_fusion_projects_the_image_features_to_the_tabular_width(encoder: str) -> None:
    train = Train(model="fusion", image_encoder=encoder, **TINY)
    model = build_model(train, N_FEATURES, N_CLASSES, 32)
    width = train.dense_units[-1]
    assert model.get_layer("image_projection").units == width
    # the fused vector is half image, half tabular, whatever the backbone's feature count
    assert model.get_layer("fuse").output.shape[-1] == 2 * width
    image_only = build_model(Train(model="image", image_encoder=encoder, **TINY), 3, 3, 32)
    assert "image_projection" not in [layer.name for layer in image_only.layers]


def test_modality_dropout_drops_whole_image_vectors_in_training_only() -> None:
    train = Train(model="fusion", modality_dropout=0.5, **TINY)
    model = build_model(train, N_FEATURES, N_CLASSES, 32)
    layer = model.get_layer("modality_dropout")
    x = np.ones((400, train.dense_units[-1]), dtype="float32")
    dropped = keras.ops.convert_to_numpy(layer(x, training=True))
    zero_rows = (dropped == 0).all(axis=1)
    # whole vectors go, at about the given rate; the rest are kept and rescaled
    assert 0.35 < zero_rows.mean() < 0.65
    np.testing.assert_allclose(dropped[~zero_rows], 2.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    off = build_model(Train(model="fusion", modality_dropout=0.0, **TINY), 3, 3, 32)
    assert "modality_dropout" not in [layer.name for layer in off.layers]


def test_model_accepts_uint8_images_like_float() -> None:
    model = build_model(Train(model="image", **TINY), N_FEATURES, N_CLASSES, 32)
    x, _ = batch(32)
    as_float = model.predict({"image": x["image"]}, verbose=0)
    as_uint8 = model.predict({"image": x["image"].astype("uint8")}, verbose=0)
    np.testing.assert_array_equal(as_float, as_uint8)


def test_small_cnn_at_defaults_is_about_100k_parameters() -> None:
    model = build_model(Train(model="image"), N_FEATURES, N_CLASSES, 64)
    encoder = backbone_of(model)
    assert 80_000 < encoder.count_params() < 120_000
    assert [layer.name for layer in encoder.layers if "conv" in layer.name] == [
        "conv_0",
        "conv_1",
        "conv_2",
    ]
    assert all(layer.trainable for layer in encoder.layers)


# Building a keras.applications backbone and stepping it costs 2-8 s each even eagerly. The
# quick tier keeps the smallest (MobileNetV3Small) in the freezing, weights and fusion tests.
@pytest.mark.slow
@pytest.mark.parametrize("encoder", BACKBONES)
def test_backbone_builds_preprocesses_like_keras_and_trains_one_step(encoder: str) -> None:
    keras.utils.set_random_seed(0)
    train = Train(model="image", image_encoder=encoder, **TINY)
    size = 32
    model = build_model(train, N_FEATURES, N_CLASSES, size)
    expected = max(size, ENCODERS[encoder].min_size)
    assert encoder_input_size(train, size) == expected
    assert backbone_of(model).input.shape[1:] == (expected, expected, 3)

    # The model's own preprocessing equals keras.applications' preprocess_input.
    image_encoder = model.get_layer("image_encoder")
    x, y = batch(size)
    module = getattr(keras.applications, PREPROCESS_MODULE[encoder])
    reference = module.preprocess_input(x["image"].copy())
    if ENCODERS[encoder].preprocessing == "builtin":
        np.testing.assert_array_equal(reference, x["image"])  # the backbone does it itself
        assert not any(layer.name == "preprocess" for layer in image_encoder.layers)
    else:
        probe = keras.Model(image_encoder.input, image_encoder.get_layer("preprocess").output)
        if expected != size:  # compare after the same resize
            resized = np.asarray(keras.layers.Resizing(expected, expected)(x["image"]))
            reference = module.preprocess_input(resized.copy())
        np.testing.assert_allclose(probe.predict(x["image"], verbose=0), reference, atol=1e-4)

    train_one_step(model, train, x, y, eager=True)


def test_trainable_layers_leaves_exactly_the_top_n_weighted_layers_and_freezes_batchnorm() -> None:
    keras.utils.set_random_seed(0)
    train = Train(model="image", image_encoder="mobilenetv3small", trainable_layers=3, **TINY)
    model = build_model(train, N_FEATURES, N_CLASSES, 32)
    backbone = backbone_of(model)
    weighted = [
        layer
        for layer in backbone.layers
        if layer.weights
        and not isinstance(layer, keras.layers.BatchNormalization | keras.layers.Normalization)
    ]
    trainable = [layer for layer in backbone.layers if layer.trainable_weights]
    assert [layer.name for layer in trainable] == [layer.name for layer in weighted[-3:]]
    bns = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and not any(layer.trainable for layer in bns)

    frozen = {w.path: w.numpy().copy() for w in backbone.weights if not w.trainable}
    x, y = batch(32)
    train_one_step(model, train, x, y, eager=True)
    # Frozen weights and BatchNorm moving statistics (inference mode) did not move.
    for w in backbone.weights:
        if w.path in frozen:
            np.testing.assert_array_equal(w.numpy(), frozen[w.path], err_msg=w.path)


@pytest.mark.slow  # builds VGG16 three times
@pytest.mark.parametrize("n", [-1, 0, 5])
def test_trainable_layers_counts_on_vgg16(n: int) -> None:
    train = Train(model="image", image_encoder="vgg16", trainable_layers=n, **TINY)
    backbone = backbone_of(build_model(train, N_FEATURES, N_CLASSES, 32))
    convs = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 13
    trainable = [layer.name for layer in backbone.layers if layer.trainable_weights]
    assert trainable == [c.name for c in (convs if n < 0 else convs[len(convs) - n :])]


def test_set_trainable_layers_beyond_the_count_trains_every_weighted_layer() -> None:
    backbone = backbone_of(build_model(Train(model="image", **TINY), N_FEATURES, N_CLASSES, 32))
    set_trainable_layers(backbone, 100)
    convs = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(c.trainable for c in convs)
    assert not any(
        layer.trainable
        for layer in backbone.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    set_trainable_layers(backbone, -1)
    assert all(layer.trainable for layer in backbone.layers)


@pytest.mark.parametrize("encoder", ["mobilenetv3small", "small_cnn"])
def test_weights_load_from_a_local_file(encoder: str, tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    source = build_model(Train(model="image", image_encoder=encoder, **TINY), 3, 3, 32)
    path = tmp_path / "backbone.weights.h5"
    backbone_of(source).save_weights(path)

    keras.utils.set_random_seed(2)  # a different random init, so equality means "loaded"
    fresh = build_model(Train(model="image", image_encoder=encoder, **TINY), 3, 3, 32)
    loaded = build_model(
        Train(model="image", image_encoder=encoder, weights=str(path), **TINY), 3, 3, 32
    )
    want = backbone_of(source).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(want, backbone_of(fresh).get_weights()))
    got = backbone_of(loaded).get_weights()
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_backbone_from_scratch_uses_fast_batchnorm_statistics(tmp_path: Path) -> None:
    def momenta(model: keras.Model) -> set[float]:
        return {
            layer.momentum
            for layer in backbone_of(model).layers
            if isinstance(layer, keras.layers.BatchNormalization)
        }

    scratch = build_model(Train(model="image", image_encoder="mobilenetv3small", **TINY), 3, 3, 32)
    assert momenta(scratch) == {0.9}
    # with given weights the backbone keeps keras.applications' own momentum
    path = tmp_path / "backbone.weights.h5"
    backbone_of(scratch).save_weights(path)
    loaded = build_model(
        Train(model="image", image_encoder="mobilenetv3small", weights=str(path), **TINY),
        3,
        3,
        32,
    )
    assert 0.9 not in momenta(loaded)  # MobileNetV3's is 0.999


@pytest.mark.parametrize("encoder", ["resnet50", "small_cnn"])
def test_missing_weights_file_names_the_parameter(encoder: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope.weights.h5"
    train = Train(model="image", image_encoder=encoder, weights=str(missing), **TINY)
    with pytest.raises(FileNotFoundError, match="train.weights") as info:
        build_model(train, N_FEATURES, N_CLASSES, 32)
    assert str(missing) in str(info.value)


def test_small_cnn_has_no_imagenet_weights() -> None:
    with pytest.raises(ValueError, match="train.weights"):
        build_model(Train(model="image", weights="imagenet", **TINY), 3, 3, 32)


def test_encoder_input_size() -> None:
    assert encoder_input_size(Train(image_encoder="small_cnn"), 64) == 64
    assert encoder_input_size(Train(image_encoder="resnet50"), 64) == 64
    assert encoder_input_size(Train(image_encoder="xception"), 64) == 71
    assert encoder_input_size(Train(image_encoder="resnet50", backbone_input_size=96), 64) == 96
    with pytest.raises(ValueError, match="train.backbone_input_size"):
        encoder_input_size(Train(image_encoder="xception", backbone_input_size=64), 64)
    with pytest.raises(ValueError, match="train.backbone_input_size"):
        encoder_input_size(Train(image_encoder="small_cnn", backbone_input_size=4), 64)


def test_model_resizes_when_the_encoder_wants_another_size() -> None:
    train = Train(model="image", backbone_input_size=16, **TINY)
    model = build_model(train, N_FEATURES, N_CLASSES, 32)
    encoder = model.get_layer("image_encoder")
    assert encoder.get_layer("resize").output.shape[1:] == (16, 16, 3)
    assert backbone_of(model).input.shape[1:] == (16, 16, 3)
    same = build_model(Train(model="image", **TINY), N_FEATURES, N_CLASSES, 32)
    assert "resize" not in [layer.name for layer in same.get_layer("image_encoder").layers]


def test_a_center_crop_model_sees_only_the_central_pixels() -> None:
    train = Train(model="image", center_crop=8, **TINY)
    model = build_model(train, N_FEATURES, N_CLASSES, 32)
    assert backbone_of(model).input.shape[1:] == (8, 8, 3)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    changed = images.copy()
    changed[:, :12] = 0.0  # rows 0-11: outside the central 8 (rows 12-19)
    changed[:, :, 20:] = 255.0  # columns 20-31
    inside = images.copy()
    inside[:, 16, 16] = 255.0 - inside[:, 16, 16]
    out = model.predict(images, verbose=0)
    np.testing.assert_allclose(model.predict(changed, verbose=0), out, atol=1e-6)
    assert not np.allclose(model.predict(inside, verbose=0), out, atol=1e-6)


def test_small_cnn_blocks_and_pooling_follow_the_params() -> None:
    train = Train(model="image", convs_per_block=2, pooling="flatten", **TINY)
    backbone = backbone_of(build_model(train, N_FEATURES, N_CLASSES, 32))
    convs = [layer.name for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == ["conv_0", "conv_0_1", "conv_1", "conv_1_1"]
    assert backbone.output.shape[1:] == (8 * 8 * 8,)  # 32 px, two 2x2 pools, 8 filters
    plain = backbone_of(build_model(Train(model="image", **TINY), N_FEATURES, N_CLASSES, 32))
    assert plain.output.shape[1:] == (8,)


@pytest.mark.parametrize("field", [{"convs_per_block": 2}, {"pooling": "flatten"}])
def test_small_cnn_shape_options_are_refused_for_other_encoders(field) -> None:
    with pytest.raises(ValueError, match="shapes small_cnn only"):
        Train(image_encoder="resnet50", **field)


def test_a_center_crop_larger_than_the_cutouts_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match="train.center_crop: 96 pixels is larger than the cutouts"):
        Params(train={"center_crop": 96}, data={"image_size": 64})
    assert Params(train={"center_crop": 32}, data={"image_size": 64}).train.center_crop == 32


def test_tabular_encoder_standardises_with_the_given_statistics() -> None:
    mean = np.array([10.0, 20.0, 5.0])
    var = np.array([4.0, 9.0, 0.0])  # a feature constant on the train split
    encoder = build_tabular_encoder(Train(**TINY), 3, mean, var)
    probe = keras.Model(encoder.input, encoder.get_layer("standardise").output)
    x = np.array([[12.0, 17.0, 6.0], [10.0, 20.0, 5.0]], dtype="float32")
    want = np.array([[1.0, -1.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(probe.predict(x, verbose=0), want, atol=1e-5)
    with pytest.raises(ValueError, match="4 values"):
        build_tabular_encoder(Train(**TINY), 4, mean, var)


PROBS = np.array(
    [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5], [0.05, 0.9, 0.05]], dtype="float32"
)
LABELS = np.array([0, 2, 2, 0])


def numpy_focal(gamma: float, alpha: list[float] | None = None) -> np.ndarray:
    p = PROBS[np.arange(len(LABELS)), LABELS].astype("float64")
    a = np.ones(len(LABELS)) if alpha is None else np.asarray(alpha)[LABELS]
    return -a * (1 - p) ** gamma * np.log(p)


def test_focal_loss_equals_a_hand_computation() -> None:
    alpha = [0.25, 1.0, 2.0]
    loss = SparseCategoricalFocalLoss(gamma=2.0, alpha=alpha)
    want = numpy_focal(2.0, alpha)
    assert float(loss(LABELS, PROBS)) == pytest.approx(want.mean(), rel=1e-5)
    # (batch, 1) labels, as Keras sometimes passes them, give the same.
    assert float(loss(LABELS[:, None], PROBS)) == pytest.approx(want.mean(), rel=1e-5)
    # Sample weights multiply per-sample losses (class_weight in fit arrives this way).
    w = np.array([1.0, 0.0, 2.0, 1.0])
    got = float(loss(LABELS, PROBS, sample_weight=w))
    assert got == pytest.approx((w * want).sum() / len(w), rel=1e-5)
    # Focusing: an easy example (p=0.7) loses far more than a hard one (p=0.05).
    per_sample = numpy_focal(2.0)
    plain = numpy_focal(0.0)
    assert per_sample[0] / plain[0] < 0.1 < per_sample[3] / plain[3]


def test_focal_loss_at_gamma_zero_is_crossentropy() -> None:
    focal = make_loss(Train(loss="focal", focal_gamma=0.0), N_CLASSES)
    crossentropy = make_loss(Train(loss="crossentropy"), N_CLASSES)
    assert isinstance(focal, SparseCategoricalFocalLoss)
    assert isinstance(crossentropy, keras.losses.SparseCategoricalCrossentropy)
    assert float(focal(LABELS, PROBS)) == pytest.approx(float(crossentropy(LABELS, PROBS)))
    assert float(focal(LABELS, PROBS)) == pytest.approx(numpy_focal(0.0).mean(), rel=1e-5)
    # A confident wrong answer is large but finite (probabilities are clipped).
    assert np.isfinite(float(focal(np.array([1]), np.array([[1.0, 0.0, 0.0]]))))


def test_focal_loss_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="gamma"):
        SparseCategoricalFocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        SparseCategoricalFocalLoss(alpha=[1.0, -0.5])
    with pytest.raises(ValueError, match="2 classes"):
        make_loss(Train(), 1)


@pytest.mark.parametrize(
    ("kind", "encoder", "loss"),
    [
        ("fusion", "small_cnn", "focal"),
        pytest.param("image", "vgg16", "crossentropy", marks=pytest.mark.slow),
    ],
)
def test_saved_model_loads_without_custom_objects_and_predicts_the_same(
    kind: str, encoder: str, loss: str, tmp_path: Path
) -> None:
    keras.utils.set_random_seed(0)
    train = Train(model=kind, image_encoder=encoder, loss=loss, focal_gamma=1.5, **TINY)
    x, y = batch(32)
    f = x["features"]
    model = build_model(train, N_FEATURES, N_CLASSES, 32, f.mean(axis=0), f.var(axis=0))
    train_one_step(model, train, x, y, eager=encoder != "small_cnn")
    inputs = {k: v for k, v in x.items() if k in model.input}
    before = model.predict(inputs, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), before)
    if loss == "focal":
        assert isinstance(loaded.loss, SparseCategoricalFocalLoss)
        assert loaded.loss.gamma == 1.5
    if encoder == "vgg16":  # the caffe channel swap survives as weights, not config
        swap = loaded.get_layer("image_encoder").get_layer("rgb_to_bgr")
        np.testing.assert_array_equal(swap.get_weights()[0], np.eye(3)[::-1])
        assert not swap.trainable_weights


@pytest.mark.slow
def test_saved_focal_model_loads_in_a_fresh_process(tmp_path: Path) -> None:
    """What the evaluate stage does: a new process that imports only skysort.model.losses."""
    train = Train(model="fusion", loss="focal", **TINY)
    x, y = batch(32)
    model = build_model(train, N_FEATURES, N_CLASSES, 32)
    model.compile(optimizer="adam", loss=make_loss(train, N_CLASSES))
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "x.npz", **x)
    np.save(tmp_path / "want.npy", model.predict(x, verbose=0))
    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        import skysort.model.losses
        model = keras.models.load_model({str(tmp_path / "model.keras")!r})
        x = dict(np.load({str(tmp_path / "x.npz")!r}))
        want = np.load({str(tmp_path / "want.npy")!r})
        np.testing.assert_array_equal(model.predict(x, verbose=0), want)
        assert type(model.loss).__name__ == "SparseCategoricalFocalLoss"
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_mixed_bfloat16_computes_in_bfloat16_keeps_scaling_and_outputs_float32(
    tmp_path: Path,
) -> None:
    """train.precision: the convolutions and dense layers compute in bfloat16, the feature
    scaling and the probabilities stay float32; the process's policy is put back, the
    policy survives a save and load, and Grad-CAM reads the model."""
    from keras.layers import Conv2D

    from skysort.evaluation.explain import gradcam, split_at_feature_map

    keras.utils.set_random_seed(0)
    train = Train(model="fusion", precision="mixed_bfloat16", **TINY)
    x, y = batch(32)
    f = x["features"]
    model = build_model(train, N_FEATURES, N_CLASSES, 32, f.mean(axis=0), f.var(axis=0))
    assert keras.config.dtype_policy().name == "float32"  # the process's policy is back
    convs = [c for c in _all_layers(model.get_layer("image_encoder")) if isinstance(c, Conv2D)]
    assert convs and all(layer.compute_dtype == "bfloat16" for layer in convs)
    assert all(layer.variable_dtype == "float32" for layer in convs)
    tabular = model.get_layer("tabular_encoder")
    assert tabular.get_layer("standardise").compute_dtype == "float32"
    assert model.get_layer("probabilities").compute_dtype == "float32"
    train_one_step(model, train, x, y, eager=False)
    before = model.predict(x, verbose=0)
    assert before.dtype == np.float32 and np.allclose(before.sum(axis=1), 1.0, atol=1e-5)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.get_layer("probabilities").compute_dtype == "float32"
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    heat = gradcam(split_at_feature_map(loaded), x["image"][0], f[0], target=1)
    assert heat.shape == (32, 32) and np.isfinite(heat).all() and heat.max() <= 1.0
    default = build_model(Train(model="fusion", **TINY), N_FEATURES, N_CLASSES, 32)
    assert default.get_layer("probabilities").compute_dtype == "float32"
    assert all(c.compute_dtype == "float32" for c in _all_layers(default))


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer, those of nested models included."""
    out = []
    for layer in model.layers:
        out += _all_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return out
