"""``train.distribute``: training under a tf.distribute strategy, on CPU.

Each strategy runs in a subprocess: logical CPU devices and a multi-worker strategy
must be set up before TensorFlow initialises, which this test process has done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from skysort.config import Impute
from skysort.model.distribute import is_chief
from tests.factories import make_catalog, prepare_training_inputs

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import tensorflow as tf

    root, kind, n_cpus, model = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if n_cpus > 1:  # split the one CPU into logical devices: one replica each
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n_cpus)])
    from skysort.config import Data, Train
    from skysort.stages.train import train_model

    cfg = Train(epochs=2, batch_size=32, conv_filters=(8,), dense_units=(16,), patience=2,
                distribute=kind, model=model)
    out = root / kind
    report = train_model(dataset=root / "dataset.parquet", images=root / "images.npy",
                         labels=root / "labels.parquet", train_index=root / "index.npy",
                         model=out / "model.keras", dvclive=out / "dvclive",
                         train_report=out / "train.json", thresholds=out / "thresholds.json",
                         contract=out / "contract.json",
                         data=Data(image_size=64), train=cfg, seed=0, task="multiclass")
    print("REPORT", json.dumps({k: report[k] for k in ("distribute", "replicas", "epochs_run")}))
    """
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("distribute")
    return prepare_training_inputs(root, make_catalog(90), Impute(enabled=False))


@pytest.mark.slow  # trains in a subprocess per strategy
@pytest.mark.parametrize(
    ("kind", "n_cpus", "model", "replicas"),
    [("mirrored", 2, "fusion", 2), ("multiworker", 1, "tabular", 1)],
)
def test_training_under_a_strategy_records_it_and_its_replicas(
    prepared, kind, n_cpus, model, replicas
):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(prepared), kind, str(n_cpus), model],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("REPORT "))
    assert json.loads(line.removeprefix("REPORT ")) == {
        "distribute": kind,
        "replicas": replicas,
        "epochs_run": 2,
    }
    saved = json.loads((prepared / kind / "train.json").read_text())
    assert saved["distribute"] == kind and saved["replicas"] == replicas
    assert (prepared / kind / "model.keras").stat().st_size > 0


def test_only_the_chief_writes_outputs():
    assert is_chief("")  # no TF_CONFIG: a process is its own chief
    worker = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}
    assert is_chief(json.dumps(worker))
    worker["task"]["index"] = 1
    assert not is_chief(json.dumps(worker))
    with_chief = {
        "cluster": {"chief": ["c:1"], "worker": ["a:1"]},
        "task": {"type": "worker", "index": 0},
    }
    assert not is_chief(json.dumps(with_chief))
    with_chief["task"] = {"type": "chief", "index": 0}
    assert is_chief(json.dumps(with_chief))
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        is_chief("{nope")
