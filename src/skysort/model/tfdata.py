"""``tf.data`` input pipelines over the packed image array, read one batch at a time."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from skysort.data.packed import PackedImages
from skysort.model.contract import INPUTS_BY_MODEL  # noqa: F401  (re-exported)

FLIPS: tuple[str, ...] = ("horizontal", "vertical", "transpose")


def make_dataset(
    images: np.ndarray | PackedImages,
    features: np.ndarray,
    rows: np.ndarray,
    inputs: tuple[str, ...],
    batch_size: int,
    *,
    y: np.ndarray | None = None,
    shuffle: bool = False,
    augment: bool = False,
    seed: int = 0,
    flips: tuple[str, ...] = FLIPS,
) -> tf.data.Dataset:
    """Batches of ``{"image", "features"}`` (only the keys in ``inputs``) gathered from ``rows``.

    ``images`` is the packed file (:class:`skysort.data.packed.PackedImages`) or any
    array: only one batch of images is read from it at a time. Each epoch
    reshuffles with a seed derived from ``seed``, so runs are repeatable.
    Augmentation draws one of the 8 flips / 90° rotations per image: the sky has no "up"
    (``flips`` may leave some out). ``y`` is a vector of class codes (multiclass) or a
    float label matrix with NaN for unknown labels (multilabel).
    """
    rows = np.asarray(rows, dtype=np.int64)
    size = images.shape[1]
    epoch = [0]

    def batches():
        order = rows
        if shuffle:
            order = rows[np.random.default_rng(seed + epoch[0]).permutation(len(rows))]
            epoch[0] += 1
        for start in range(0, len(order), batch_size):
            b = order[start : start + batch_size]
            x = {}
            if "image" in inputs:
                # A packed file reads the batch's rows in ascending order, in one read per
                # run of consecutive rows, and returns them in batch order.
                x["image"] = np.asarray(images[b])
            if "features" in inputs:
                x["features"] = features[b]
            yield (x, y[b]) if y is not None else x

    x_sig = {}
    if "image" in inputs:
        x_sig["image"] = tf.TensorSpec((None, size, size, 3), tf.uint8)
    if "features" in inputs:
        x_sig["features"] = tf.TensorSpec((None, features.shape[1]), tf.float32)
    if y is not None and np.ndim(y) == 2:
        y = np.asarray(y, dtype=np.float32)
        y_sig = tf.TensorSpec((None, y.shape[1]), tf.float32)
    else:
        y_sig = tf.TensorSpec((None,), tf.int64)
    sig = (x_sig, y_sig) if y is not None else x_sig
    ds = tf.data.Dataset.from_generator(batches, output_signature=sig)
    # A generator has unknown length; stating it lets Keras show progress and not warn.
    n_batches = -(-len(rows) // batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_batches))

    def prepare(x, *rest):
        if "image" in x:
            img = tf.cast(x["image"], tf.float32)
            if augment:
                img = dihedral(img, seed, flips)
            x = {**x, "image": img}
        return (x, *rest) if rest else x

    # A sequential map, on purpose. Under op determinism (the train stage) tf.data would
    # rewrite a parallel map into this one anyway, since the generator is a stateful
    # py_func; and TF 2.21's rewrite keeps ParallelMapDatasetV2's use_unbounded_threadpool
    # attribute, which MapDataset lacks, so every run logged an E0000 "NodeDef mentions
    # attribute" line. The map only casts (and flips) one batch at a time.
    return ds.map(prepare).prefetch(tf.data.AUTOTUNE)


def dihedral(img: tf.Tensor, seed: int, flips: tuple[str, ...] = FLIPS) -> tf.Tensor:
    """Apply a random one of the 8 symmetries of the square to each image of a batch.

    ``flips`` names the operations drawn from (``horizontal``, ``vertical``,
    ``transpose``); all three give the 8 symmetries. The random draw is the same
    whichever are left out, so the others stay as they were.
    """
    n = tf.shape(img)[0]
    draw = tf.random.uniform((n, 3), seed=seed)
    if "horizontal" in flips:
        flip_lr = draw[:, 0] < 0.5
        img = tf.where(flip_lr[:, None, None, None], tf.reverse(img, axis=[2]), img)
    if "vertical" in flips:
        flip_ud = draw[:, 1] < 0.5
        img = tf.where(flip_ud[:, None, None, None], tf.reverse(img, axis=[1]), img)
    if "transpose" not in flips:
        return img
    transpose = draw[:, 2] < 0.5
    return tf.where(transpose[:, None, None, None], tf.transpose(img, [0, 2, 1, 3]), img)
