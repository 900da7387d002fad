"""skysort.model.tfdata under op determinism, as the train stage runs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Its own process: op determinism is process-wide and cannot be switched off again.
SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    from skysort.model.tfdata import make_dataset

    tf.config.experimental.enable_op_determinism()
    images, features = np.zeros((10, 8, 8, 3), np.uint8), np.zeros((10, 2), np.float32)
    ds = make_dataset(images, features, np.arange(10), ("image", "features"), 4,
                      y=np.zeros(10, np.int64), shuffle=True, augment=True, seed=1)
    assert sum(len(y) for _, y in ds) == 10

    # The packed file read batch by batch gives the same batches as the array in memory.
    import tempfile
    from pathlib import Path
    from skysort.data.packed import PackedWriter, open_images
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    rows = np.array([4, 1, 1, 9, 0, 7, 7, 3])
    with tempfile.TemporaryDirectory() as tmp:
        with PackedWriter(Path(tmp) / "i.npy", 10, (8, 8, 3)) as out:
            out.write(0, images)
        packed = open_images(Path(tmp) / "i.npy")
        batches = [make_dataset(source, features, rows, ("image", "features"), 3,
                                y=np.zeros(10, np.int64), shuffle=True, seed=2)
                   for source in (images, packed)]
        for (a, _), (b, _) in zip(*batches):
            assert np.array_equal(a["image"].numpy(), b["image"].numpy())
    """
)


def test_a_deterministic_augmented_pipeline_logs_no_tensorflow_error():
    # TF 2.21 logged "E0000 ... NodeDef mentions attribute use_unbounded_threadpool" when
    # op determinism rewrote a parallel map into a sequential one; readers took it for a failure.
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "E0000" not in proc.stderr, proc.stderr[-3000:]
