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

Ratio = pipeline samples/s / in-memory samples/s (goal >= 0.9). Then, since the model
itself is the limit, the fusion net fed from memory is timed again under each of a few
changes that might speed it up (:data:`TRIES`: threads, bfloat16 mixed precision, a
centre crop that feeds the encoder fewer pixels), each in its own process. It also counts the
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


def measure(
    kind: str,
    args: argparse.Namespace,
    folder: Path,
    update: dict[str, Any] | None = None,
    only_in_memory: bool = False,
) -> list[list[Any]]:
    import tensorflow as tf

    from skysort.config import Data, Train
    from skysort.data.packed import PackedWriter, open_images
    from skysort.model.fit import compile_model
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset

    data = Data()
    train = Train(model=kind, image_encoder="small_cnn", batch_size=args.batch_size)
    train = Train.model_validate(train.model_dump() | (update or {}))
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
    ways = {"in memory (float32 tensors)": lambda: in_memory.prefetch(tf.data.AUTOTUNE)}
    if not only_in_memory:
        ways["train stage's pipeline, augmented"] = lambda: pipeline(True)
        ways["train stage's pipeline, no augmentation"] = lambda: pipeline(False)
    # Each way is fitted --repeats times, the ways taking turns, and the fastest fit
    # counts: on a shared 2-core machine one fit can run at half speed for reasons of
    # its own (other work, thread placement), which the turns keep from looking like
    # one way's cost.
    timed: dict[str, list[float]] = {how: [] for how in ways}
    for _ in range(args.repeats):
        for how, make in ways.items():
            timed[how].append(fit(make()))
    ceiling = n / min(timed["in memory (float32 tensors)"])
    flops = fit.flops  # type: ignore[attr-defined]
    out = []
    for how, all_seconds in timed.items():
        seconds = min(all_seconds)
        rate = n / seconds
        out.append([kind, how, round(seconds, 2), round(rate, 1), round(rate / ceiling, 3),
                    round(flops / 1e6, 2), round(3 * flops * rate / 1e9, 2),
                    " / ".join(f"{n / x:.0f}" for x in all_seconds)])  # fmt: skip
        print(*out[-1], sep=" | ")
    return out


TRIES: dict[str, dict[str, Any]] = {
    "as measured above (TensorFlow's default threads, float32)": {},
    "one intra-op thread": {"threads": 1},
    "mixed_bfloat16 (the CPU has AVX512_BF16)": {"policy": "mixed_bfloat16"},
    "train.center_crop 32 (a quarter of the pixels)": {"train": {"center_crop": 32}},
}
"""What might move the fusion net's own speed; each is timed in a process of its own,
since TensorFlow's threads and Keras's dtype policy are fixed once set."""


def run_try(name: str, args: argparse.Namespace) -> None:
    """One of :data:`TRIES` in this process: the fusion net fed from memory; prints JSON."""
    import json

    import tensorflow as tf

    how = TRIES[name]
    if "threads" in how:
        tf.config.threading.set_intra_op_parallelism_threads(how["threads"])
    if "policy" in how:
        import keras

        keras.mixed_precision.set_global_policy(how["policy"])
    with tempfile.TemporaryDirectory(prefix="skysort-throughput-") as tmp:
        (row,) = measure("fusion", args, Path(tmp), how.get("train"), only_in_memory=True)
    print("TRY " + json.dumps(row))


def tries(args: argparse.Namespace) -> list[list[Any]]:
    """Every try of :data:`TRIES`, each in a child process: its row (samples/s, FLOPs)."""
    import json
    import subprocess
    import sys

    out = []
    for name in TRIES:
        command = [sys.executable, __file__, "--try", name, "--objects", str(args.objects),
                   "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--repeats", str(args.repeats)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        line = next((x for x in done.stdout.splitlines() if x.startswith("TRY ")), None)
        if line is None:
            out.append([name, None, None, None, None, f"failed: {done.stderr.strip()[-300:]}"])
            continue
        row = json.loads(line[4:])
        out.append([name, row[2], row[3], row[5], row[7], ""])
        print(*out[-1], sep=" | ", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=4, help="timed: every epoch after the first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=["fusion", "image"])
    parser.add_argument(
        "--repeats", type=int, default=3, help="fits of each way, taking turns; the fastest counts"
    )
    parser.add_argument(
        "--no-tries", action="store_true", help="skip the table of what might speed the net up"
    )
    parser.add_argument("--try", dest="one_try", choices=list(TRIES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be 2 or more: the first epoch is not timed")
    if args.one_try:
        run_try(args.one_try, args)
        return
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
        row.insert(7, round(100 * row[6] * 1e9 / peak, 1))
    worst = min(r[4] for r in rows if "augmented" in r[1])
    tried = [] if args.no_tries else tries(args)
    for row in tried:
        share = round(100 * 3 * row[3] * 1e6 * row[2] / peak, 1) if row[2] is not None else None
        row.insert(4, share)
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
                    "samples/s of each fit",
                ],
                rows,
                caption="Training samples/s, the input pipeline against tensors in memory",
                digits=3,
            ),  # fmt: skip
            *(
                [
                    Table(
                        [
                            "fusion net, fed from memory",
                            "seconds per epoch",
                            "samples/s",
                            "forward MFLOP per sample",
                            "% of the float32 matmul peak",
                            "samples/s of each fit",
                            "failed",
                        ],
                        tried,
                        caption="What might move the net's own speed",
                        digits=3,
                    )
                ]
                if tried
                else []
            ),  # fmt: skip
        ],
        title="Training throughput: the nets and their input pipeline",
        notes=[
            f"{args.objects} random 64 px images and {n_features} features per sample "
            f"(content does not change the arithmetic), batch {args.batch_size}, the median "
            f"of epochs 2..{args.epochs} of a fit, the fastest of {args.repeats} fits per way "
            f"(the ways taking turns; every fit's samples/s in the last column); the small "
            f"CNN encoder; TensorFlow's default threads "
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
            "tries": tried,
        },  # fmt: skip
    )


if __name__ == "__main__":
    main()
