"""A stage's outputs are replaced together: a kill at any point leaves the old set or the new."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skysort.pipeline.outputs import journal_path, recover, replaced_together

ROOT = Path(__file__).resolve().parents[1]

# Run ``body`` in a child that dies (os._exit, no cleanup) at its N-th os.replace:
# every atomic write and every step of the swap is a rename, so N walks the kill
# through the whole write.
KILLER = """
import os, sys
sys.path.insert(0, {root!r})
_real, _n = os.replace, [0]
def _replace(a, b):
    if _n[0] == {kill_at}:
        os._exit(9)
    _n[0] += 1
    _real(a, b)
os.replace = _replace
{body}
"""


def _run_killed(body: str, kill_at: int, cwd: Path) -> int:
    code = KILLER.format(root=str(ROOT), kill_at=kill_at, body=textwrap.dedent(body))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True).returncode


def _state(paths: list[Path]) -> tuple:
    def one(p: Path) -> str:
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file())
            return "|".join(f"{q.relative_to(p)}={q.read_text()}" for q in files)
        return p.read_text() if p.exists() else "<missing>"

    return tuple(one(p) for p in paths)


WRITE_SET = """
from pathlib import Path
from skysort.data.atomic import write_json, write_bytes
from skysort.pipeline.outputs import replaced_together
finals = [Path("out/a.json"), Path("out/plots"), Path("reports/c.json")]
with replaced_together(finals) as (a, plots, c):
    write_json(a, {"v": "new"})
    plots.mkdir()
    write_bytes(plots / "p.txt", b"new")
    write_bytes(plots / "q.txt", b"new q")
    write_json(c, {"v": "new"})
"""


def test_a_kill_at_any_rename_leaves_the_old_set_or_the_new_one(tmp_path):
    finals = [tmp_path / "out/a.json", tmp_path / "out/plots", tmp_path / "reports/c.json"]
    seen = set()
    for kill_at in range(40):
        for p in finals:
            if p.is_dir():
                shutil.rmtree(p)
        (tmp_path / "out/plots").mkdir(parents=True, exist_ok=True)
        (tmp_path / "out/a.json").write_text(json.dumps({"v": "old"}))
        (tmp_path / "out/plots/p.txt").write_text("old")
        (tmp_path / "reports").mkdir(exist_ok=True)
        (tmp_path / "reports/c.json").write_text(json.dumps({"v": "old"}))
        old = _state(finals)
        code = _run_killed(WRITE_SET, kill_at, tmp_path)
        # recovery is what the stage's next run does first
        subprocess.run(
            [sys.executable, "-c", "from pathlib import Path; from skysort.pipeline.outputs import recover; "
             "recover([Path('out/a.json'), Path('out/plots'), Path('reports/c.json')])"],
            cwd=tmp_path, check=True,
        )  # fmt: skip
        state = _state(finals)
        assert state == old or all("new" in part for part in state), (kill_at, state)
        assert not journal_path([tmp_path / "out/a.json"]).exists()
        leftovers = [p.name for d in (tmp_path / "out", tmp_path / "reports") for p in d.iterdir()]
        assert sorted(leftovers) == ["a.json", "c.json", "plots"], leftovers
        seen.add("old" if state == old else "new")
        if code == 0:
            break
    assert code == 0 and seen == {"old", "new"}  # the kill landed before and inside the swap


def test_a_failure_inside_the_stage_keeps_the_previous_outputs(tmp_path):
    (tmp_path / "m.json").write_text("old metrics")
    with (
        pytest.raises(RuntimeError),
        replaced_together([tmp_path / "m.json", tmp_path / "p"]) as (m, p),
    ):
        m.write_text("new metrics")
        raise RuntimeError("plotting failed")
    assert (tmp_path / "m.json").read_text() == "old metrics"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.json"]


CLEAN_STAGE = """
from pathlib import Path
from skysort.config import Data, Params, Paths
from skysort.pipeline.registry import run_stage
paths = Paths(catalog=Path("catalog.parquet"), manifest=Path("manifest.parquet"),
              cutouts_dir=Path("cutouts"), dataset=Path("out/dataset.parquet"),
              images=Path("out/images.npy"), clean_report=Path("out/clean.json"))
run_stage("clean", Params(paths=paths, data=Data(image_size=64), seed={seed}))
"""


def _clean_outputs(root: Path) -> tuple:
    out = root / "out"
    names = ("dataset.parquet", "images.npy", "clean.json")
    report = json.loads((out / "clean.json").read_text())
    import pandas as pd

    split = tuple(pd.read_parquet(out / "dataset.parquet")["split"])
    images = hashlib.sha256((out / "images.npy").read_bytes()).hexdigest()
    # the shards' work folder (.images.npy.shards) is not an output: the next run empties it
    listed = sorted(p.name for p in out.iterdir() if not p.name.endswith(".shards"))
    return tuple(listed) == tuple(sorted(names)), (report["split_counts"]["test"], split, images)


@pytest.mark.slow
def test_the_clean_stage_killed_mid_write_leaves_one_complete_set(tmp_path):
    from skysort.data.atomic import write_parquet
    from tests.factories import make_catalog, write_cutouts

    catalog = make_catalog(40)
    write_parquet(tmp_path / "catalog.parquet", catalog)
    write_parquet(
        tmp_path / "manifest.parquet", write_cutouts(catalog, tmp_path / "cutouts", size=64)
    )
    assert _run_killed(CLEAN_STAGE.format(seed=1), 10_000, tmp_path) == 0
    clean_old = _clean_outputs(tmp_path)
    finals = [tmp_path / "out" / n for n in ("dataset.parquet", "images.npy", "clean.json")]
    results = set()
    for kill_at in range(30):
        code = _run_killed(CLEAN_STAGE.format(seed=2), kill_at, tmp_path)
        recover(finals)
        now = _clean_outputs(tmp_path)
        assert now[0], "a leftover or a missing output"
        results.add("old" if now == clean_old else "new")
        if code == 0:
            break
        assert _run_killed(CLEAN_STAGE.format(seed=1), 10_000, tmp_path) == 0  # back to old
    new = _clean_outputs(tmp_path)
    assert code == 0 and new != clean_old and results == {"old", "new"}
