"""Training throughput: samples/s of the fusion and image nets, and what the input pipeline costs.

    python benchmarks/train_throughput.py                  # 4,000 images of 64 px, batch 64
    python benchmarks/train_throughput.py --objects 1000 --epochs 2      # a quick try

For each model (``fusion``, ``image``, both with the small CNN, params.yaml's defaults
otherwise) it trains the compiled model of the train stage (``compile_model``) on the
same rows three ways and times each epoch after the first (the first traces the graph):

- the train stage's pipeline (``make_dataset`` over a packed ``images.npy`` read batch by
  batch, shuffled, with the dihedral augmentation ``train.augment`` turns on);
- the same pipeline without augmentation;
- the same arrays already in memory as float32 tensors (``from_tensor_slices``), the
  model's own ceiling on this machine.

Ratio = pipeline samples/s / in-memory samples/s (goal >= 0.9). It also counts the
model's multiply-adds per sample (convolutions and dense layers; training ~ 3x the
forward pass) and compares the FLOP/s reached with a float32 matrix product measured on
the same threads, the CPU's practical peak.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from results import Table, write_results

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def forward_flops(model: Any) -> int:
    """Multiply-adds x 2 of one sample's forward pass through every Conv2D and Dense layer."""
    total = 0
    for layer in _layers(model):
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2 * h * w * kh * kw * cin * cout
        elif kind == "Dense":
            n_in, n_out = layer.kernel.shape
            total += 2 * n_in * n_out
    return int(total)


def _layers(model: Any) -> list[Any]:
    out = []
    for layer in getattr(model, "layers", []):
        out.extend(_layers(layer) if hasattr(layer, "layers") else [layer])
    return out


def peak_flops(threads_note: list[str]) -> float:
    """FLOP/s of a 1024 x 1024 float32 matrix product, best of 5 rounds of 20."""
    import tensorflow as tf

    n = 1024
    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n))
    tf.linalg.matmul(a, b).numpy()  # warm up
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(20):
            c = tf.linalg.matmul(a, b)
        c.numpy()
        best = min(best, time.perf_counter() - started)
    threads_note.append(
        f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads()}"
    )
    return 2 * n**3 * 20 / best


class EpochClock:
    """Seconds per epoch, from a Keras callback."""

    def __init__(self) -> None:
        import keras

        clock = self

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                clock._started = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                clock.seconds.append(time.perf_counter() - clock._started)

        self.seconds: list[float] = []
        self.callback = Timer()


def measure(kind: str, args: argparse.Namespace, folder: Path) -> list[list[Any]]:
    import tensorflow as tf

    from skysort.config import Data, Train
    from skysort.data.packed import PackedWriter, open_images
    from skysort.model.fit import compile_model
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset

    data = Data()
    train = Train(model=kind, image_encoder="small_cnn", batch_size=args.batch_size)
    rng = np.random.default_rng(0)
    n, size = args.objects, data.image_size
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    features = rng.normal(size=(n, len(data.features))).astype(np.float32)
    y = rng.integers(0, len(data.classes), n).astype(np.int64)
    path = folder / f"{kind}.npy"
    with PackedWriter(path, n, (size, size, 3)) as writer:
        writer.write(0, images)
    packed = open_images(path)
    rows = np.arange(n)
    names = INPUTS_BY_MODEL[kind]
    steps = -(-n // args.batch_size)

    def fit(dataset: Any) -> float:
        tf.keras.utils.set_random_seed(0)
        net = compile_model(tf.distribute.get_strategy(), np.zeros(len(data.features)),
                            np.ones(len(data.features)), data=data, train=train,
                            steps_per_epoch=steps)  # fmt: skip
        clock = EpochClock()
        net.fit(dataset, epochs=args.epochs, verbose=0, callbacks=[clock.callback])
        fit.flops = forward_flops(net)  # type: ignore[attr-defined]
        return statistics.median(clock.seconds[1:])  # the first epoch traces the graph

    def pipeline(augment: bool) -> Any:
        return make_dataset(packed, features, rows, names, args.batch_size, y=y,
                            shuffle=True, augment=augment, seed=0, flips=train.flips)  # fmt: skip

    x = {}
    if "image" in names:
        x["image"] = tf.constant(images.astype(np.float32))
    if "features" in names:
        x["features"] = tf.constant(features)
    in_memory = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size)
    timed = {
        "in memory (float32 tensors)": fit(in_memory.prefetch(tf.data.AUTOTUNE)),
        "train stage's pipeline, augmented": fit(pipeline(True)),
        "train stage's pipeline, no augmentation": fit(pipeline(False)),
    }
    ceiling = n / timed["in memory (float32 tensors)"]
    flops = fit.flops  # type: ignore[attr-defined]
    out = []
    for how, seconds in timed.items():
        rate = n / seconds
        out.append([kind, how, round(seconds, 2), round(rate, 1), round(rate / ceiling, 3),
                    round(flops / 1e6, 2), round(3 * flops * rate / 1e9, 2)])  # fmt: skip
        print(*out[-1], sep=" | ")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=4, help="timed: every epoch after the first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=["fusion", "image"])
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be 2 or more: the first epoch is not timed")
    from skysort.config import Data

    n_features = len(Data().features)
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="skysort-throughput-") as tmp:
        for kind in args.models:
            rows += measure(kind, args, Path(tmp))
    notes: list[str] = []
    peak = peak_flops(notes)
    for row in rows:
        row.append(round(100 * row[-1] * 1e9 / peak, 1))
    worst = min(r[4] for r in rows if "augmented" in r[1])
    write_results(
        "train_throughput",
        [
            Table(
                [
                    "model",
                    "fed by",
                    "seconds per epoch",
                    "samples/s",
                    "ratio to in memory",
                    "forward MFLOP per sample",
                    "training GFLOP/s (3x forward)",
                    "% of the matmul peak",
                ],
                rows,
                caption="Training samples/s, the input pipeline against tensors in memory",
                digits=3,
            )  # fmt: skip
        ],
        title="Training throughput: the nets and their input pipeline",
        notes=[
            f"{args.objects} random 64 px images and {n_features} features per sample "
            f"(content does not change the arithmetic), batch {args.batch_size}, the median "
            f"of epochs 2..{args.epochs}; the small CNN encoder; TensorFlow's default threads "
            f"({notes[0]}). Load average before: {load_before}, after: "
            f"{[round(x, 2) for x in os.getloadavg()]}, on {os.cpu_count()} CPUs.",
            f"The CPU's practical peak: a 1024 x 1024 float32 matrix product reached "
            f"{peak / 1e9:.1f} GFLOP/s on the same threads. The worst ratio of the train "
            f"stage's pipeline (augmented) to in-memory tensors: {worst:.3f} (goal 0.9).",
        ],
        figures={
            "rows": rows,
            "peak_gflops": peak / 1e9,
            "objects": args.objects,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
        },  # fmt: skip
    )


if __name__ == "__main__":
    main()
