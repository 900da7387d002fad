"""``cutouts.pack_size``: cutouts packed many to a file give the same manifest, dataset and images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skysort.config import validate_params
from skysort.data import cutout_packs
from skysort.data.atomic import read_json
from skysort.data.images import decode_jpeg
from skysort.pipeline.registry import run_stage

N_OBJECTS = 230
PACK = 64  # 4 blocks, the last one short


def _params(root: Path, pack_size: int, n: int = N_OBJECTS, **extra):
    raw = {"query": {"n_objects": n}, "cutouts": {"pack_size": pack_size}, **extra}
    params = validate_params(raw)
    return params.model_copy(update={"paths": params.paths.under(root)})


def _run(params, stages=("query", "cutouts", "clean")) -> None:
    for name in stages:
        run_stage(name, params)


@pytest.fixture(scope="module")
def loose(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("loose")
    _run(_params(root, 0))
    return root


@pytest.fixture()
def packed(tmp_path) -> Path:
    _run(_params(tmp_path, PACK))
    return tmp_path


def _cutouts(root: Path) -> Path:
    return root / "data/raw/cutouts"


def test_block_bounds_are_aligned_and_cover_the_rows_once():
    assert cutout_packs.block_bounds(0, 10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert cutout_packs.block_bounds(6, 13, 4) == [(6, 8), (8, 12), (12, 13)]
    assert cutout_packs.block_bounds(5, 5, 4) == []
    with pytest.raises(ValueError, match="pack_size"):
        cutout_packs.block_bounds(0, 10, 0)


def test_packed_cutouts_give_what_loose_files_give(loose, packed):
    for rel in ("data/raw/cutouts.parquet", "data/interim/dataset.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(loose / rel), pd.read_parquet(packed / rel))
    assert read_json(loose / "reports/clean.json") == read_json(packed / "reports/clean.json")
    a, b = np.load(loose / "data/interim/images.npy"), np.load(packed / "data/interim/images.npy")
    assert a.shape == b.shape and np.array_equal(a, b)
    # the folder: two files per block of PACK rows, no loose JPEG, no staging folder
    names = sorted(p.name for p in _cutouts(packed).iterdir())
    blocks = cutout_packs.block_bounds(0, N_OBJECTS, PACK)
    assert len(names) == 2 * len(blocks)
    assert cutout_packs.blocks_in(_cutouts(packed)) == blocks
    # each packed object's bytes are the loose file's, and the index keeps its sha256
    with cutout_packs.CutoutReader(_cutouts(packed)) as reader:
        assert reader.packed
        manifest = pd.read_parquet(packed / "data/raw/cutouts.parquet")
        for objid in manifest.loc[manifest["status"] == "ok", "objid"].to_numpy()[::9]:
            assert reader.read(int(objid)) == (_cutouts(loose) / f"{objid}.jpg").read_bytes()
        missing = manifest.loc[manifest["status"] != "ok", "objid"]
        assert len(missing) and all(reader.read(int(o)) is None for o in missing)


def test_a_rerun_keeps_complete_packs_and_remakes_an_incomplete_one(packed):
    params = _params(packed, PACK)
    folder = _cutouts(packed)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    manifest = pd.read_parquet(packed / "data/raw/cutouts.parquet")
    # a killed run: the second block's index never written, its staging folder half full
    # (some files, and the temp file of a write cut short)
    index = pd.read_parquet(cutout_packs.index_path(folder, PACK, 2 * PACK))
    cutout_packs.unpack(folder, PACK, 2 * PACK, index.iloc[: PACK // 2])
    staging = cutout_packs.staging_dir(folder, PACK, 2 * PACK)
    assert len(list(staging.glob("*.jpg"))) > 10
    (staging / ".123.jpg.abcd.tmp").write_bytes(b"half")
    cutout_packs.index_path(folder, PACK, 2 * PACK).unlink()
    run_stage("cutouts", params)
    after = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert set(after) == set(before)  # the staging folder is gone too
    remade = {n for n in after if after[n] != before[n]}
    assert remade == {
        f"{cutout_packs.block_name(PACK, 2 * PACK)}{s}" for s in (".jpgs", ".index.parquet")
    }
    pd.testing.assert_frame_equal(pd.read_parquet(packed / "data/raw/cutouts.parquet"), manifest)


def test_a_changed_byte_in_a_pack_drops_that_object_only(packed):
    params = _params(packed, PACK)
    folder = _cutouts(packed)
    index = pd.read_parquet(cutout_packs.index_path(folder, 0, PACK))
    victim = index[index["status"] == "ok"].iloc[3]
    pack = cutout_packs.pack_path(folder, 0, PACK)
    with open(pack, "r+b") as f:  # one byte inside the entropy-coded data, past the headers
        where = int(victim["offset"]) + int(victim["length"]) - 40
        f.seek(where)
        byte = f.read(1)
        f.seek(where)
        f.write(bytes([byte[0] ^ 0x55]))
    run_stage("clean", params)
    report = read_json(packed / "reports/clean.json")
    dropped = {r["objid"]: r["reason"] for r in report["dropped"]}
    assert dropped[int(victim["objid"])] in {"changed_on_disk", "unreadable_image"}
    kept = pd.read_parquet(packed / "data/interim/dataset.parquet")
    assert int(victim["objid"]) not in set(kept["objid"])
    # a pack removed by hand: the reader has no bytes for its objects (clean: file_deleted)
    os.remove(pack)
    with cutout_packs.CutoutReader(folder) as reader:
        assert reader.read(int(victim["objid"])) is None


def test_switching_layouts_leaves_one_layout(packed, loose):
    folder = _cutouts(packed)
    run_stage("cutouts", _params(packed, 0))
    names = [p.name for p in folder.iterdir()]
    assert names and all(n.endswith(".jpg") for n in names)
    assert not cutout_packs.is_packed(folder)
    run_stage("cutouts", _params(packed, PACK))
    assert not any(p.name.endswith(".jpg") for p in folder.iterdir())
    assert len(cutout_packs.blocks_in(folder)) == len(cutout_packs.block_bounds(0, N_OBJECTS, PACK))
    # a different pack size: the old packs are gone, the new ones cover every row
    run_stage("cutouts", _params(packed, 100))
    assert cutout_packs.blocks_in(folder) == [(0, 100), (100, 200), (200, N_OBJECTS)]
    run_stage("clean", _params(packed, 100))
    a, b = np.load(loose / "data/interim/images.npy"), np.load(packed / "data/interim/images.npy")
    assert np.array_equal(a, b)


def test_a_stale_block_is_checked_by_the_source_not_trusted(packed):
    """Another seed renders other pictures: a pack's key no longer matches and it is remade."""
    folder = _cutouts(packed)
    with cutout_packs.CutoutReader(folder) as reader:
        first = pd.read_parquet(cutout_packs.index_path(folder, 0, PACK))
        objid = int(first.loc[first["status"] == "ok", "objid"].iloc[0])
        old = reader.read(objid)
    _run(_params(packed, PACK, seed=7), stages=("cutouts",))
    with cutout_packs.CutoutReader(folder) as reader:
        new = reader.read(objid)
    assert new is not None and new != old
    decode_jpeg(new, size=_params(packed, PACK).data.image_size, min_pixel_std=0)


def test_skyserver_packs_refetch_only_what_failed_and_never_a_valid_file(tmp_path):
    from tests.fakesky import FakeSkyServer, make_sky_catalog

    catalog = make_sky_catalog(10)
    failing = int(catalog["objid"][5])
    with FakeSkyServer(catalog=catalog) as fake:

        def params(**cutouts):
            p = validate_params(
                {
                    "source": {"kind": "skyserver", "skyserver": {"base_url": fake.url}},
                    "data": {"image_size": 64},
                    "cutouts": {"pack_size": 4, "backoff_s": 0.01, "retries": 1, **cutouts},
                }
            )
            return p.model_copy(update={"paths": p.paths.under(tmp_path)})

        paths = params().paths
        paths.catalog.parent.mkdir(parents=True)
        catalog.to_parquet(paths.catalog)
        fake.object_faults[failing] = ["500"] * 9
        run_stage("cutouts", params())
        first = pd.read_parquet(paths.manifest).set_index("objid")
        assert first.loc[failing, "status"] == "error"
        assert (first.drop(index=failing)["status"] == "ok").all()
        folder = Path(paths.cutouts_dir)
        assert cutout_packs.blocks_in(folder) == [(0, 4), (4, 8), (8, 10)]
        kept = {n: (folder / n).stat().st_mtime_ns for n in ("rows-0000000000-0000000004.jpgs",)}

        # the fault is gone: only the failed object is asked for again, only its block remade
        fake.object_faults.clear()
        seen = len(fake.fetched_objids())
        run_stage("cutouts", params())
        assert fake.fetched_objids()[seen:] == [failing]
        second = pd.read_parquet(paths.manifest)
        assert (second["status"] == "ok").all()
        assert {n: (folder / n).stat().st_mtime_ns for n in kept} == kept

        # other parameters (more in flight): every pack is checked again, nothing fetched
        seen = len(fake.fetched_objids())
        run_stage("cutouts", params(concurrency=2))
        assert fake.fetched_objids()[seen:] == []
        third = pd.read_parquet(paths.manifest)
        assert (third["attempts"] == 0).all()  # each file kept as on disk, as a resume records it
        same = ["objid", "status", "bytes", "sha256", "fingerprint"]
        pd.testing.assert_frame_equal(third[same], second[same])
        assert not any(p.name.endswith((".jpg", ".staging")) for p in folder.iterdir())


def test_shards_of_another_size_than_the_packs_give_the_same_dataset(tmp_path, loose):
    """Dask shards (``runner.shard_size``) need not be multiples of the pack size."""
    from skysort.pipeline import registry, sharding

    params = _params(tmp_path, PACK)
    run_stage("query", params)
    cutouts, clean = registry.get("cutouts"), registry.get("clean")
    n = cutouts.shards.prepare(params)
    bounds = sharding.shard_bounds(n, 100)
    parts = {
        i: cutouts.shards.shard(params, i, a, b) for i, (a, b) in reversed(list(enumerate(bounds)))
    }
    cutouts.merge(params, [parts[i] for i in sorted(parts)], n)
    assert cutout_packs.blocks_in(_cutouts(tmp_path)) == [
        (0, 64), (64, 100), (100, 128), (128, 192), (192, 200), (200, 230)
    ]  # fmt: skip
    assert clean.shards.prepare(params) == n
    clean.merge(params, [clean.shards.shard(params, i, a, b) for i, (a, b) in enumerate(bounds)], n)
    a, b = np.load(loose / "data/interim/images.npy"), np.load(tmp_path / "data/interim/images.npy")
    assert np.array_equal(a, b)
    pd.testing.assert_frame_equal(
        pd.read_parquet(loose / "data/raw/cutouts.parquet"),
        pd.read_parquet(tmp_path / "data/raw/cutouts.parquet"),
    )
