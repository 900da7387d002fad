import numpy as np
import pandas as pd
import pytest

from skysort.config import Clean, Data, Params, Paths
from skysort.data.atomic import read_json, write_parquet
from skysort.data.cleaning import NoUsableRowsError, TooManyDroppedError
from skysort.data.splits import assign_splits
from skysort.pipeline.registry import run_stage
from skysort.targets import get as get_target
from tests.factories import bomb_jpeg, make_catalog, write_cutouts

MULTICLASS = get_target("multiclass")
DATA = Data(image_size=64)


def _run(tmp_path, catalog, manifest, **clean_kw):
    write_parquet(tmp_path / "catalog.parquet", catalog)
    write_parquet(tmp_path / "manifest.parquet", manifest)
    paths = Paths(
        catalog=tmp_path / "catalog.parquet",
        manifest=tmp_path / "manifest.parquet",
        cutouts_dir=tmp_path / "cutouts",
        dataset=tmp_path / "out" / "dataset.parquet",
        images=tmp_path / "out" / "images.npy",
        clean_report=tmp_path / "out" / "clean.json",
    )
    return run_stage("clean", Params(paths=paths, data=DATA, clean=Clean(**clean_kw), seed=1))


def test_every_fault_is_dropped_with_its_reason(tmp_path):
    catalog = make_catalog(30)
    catalog.loc[5, "g"] = np.nan
    manifest = write_cutouts(
        catalog, tmp_path / "cutouts", size=64, missing=(1,), corrupt=(2,), blank=(3,), html=(4,)
    )
    (tmp_path / "cutouts" / f"{catalog.objid[6]}.jpg").unlink()  # vanished after the fetch
    manifest.loc[7, ["status", "error"]] = ["error", "HTTP 500 after 4 attempts"]

    report = _run(tmp_path, catalog, manifest)

    assert report["dropped_by_reason"] == {
        "missing_image": 1,
        "file_deleted": 1,
        "unreadable_image": 1,
        "blank_image": 1,
        "not_jpeg": 1,
        "missing_features": 1,
        "fetch_error": 1,
    }
    dropped = {
        d["objid"]: d["reason"] for d in read_json(tmp_path / "out" / "clean.json")["dropped"]
    }
    assert dropped[int(catalog.objid[5])] == "missing_features"
    assert dropped[int(catalog.objid[2])] == "unreadable_image"
    assert dropped[int(catalog.objid[1])] == "missing_image"  # the server had none
    assert dropped[int(catalog.objid[6])] == "file_deleted"  # fetched, then gone from disk
    dataset = pd.read_parquet(tmp_path / "out" / "dataset.parquet")
    assert len(dataset) == 30 - 7 == report["kept_rows"]
    assert not set(dropped) & set(dataset["objid"].tolist())


def test_images_are_row_aligned_and_memory_mappable(tmp_path):
    catalog = make_catalog(12)
    manifest = write_cutouts(catalog, tmp_path / "cutouts", size=64, missing=(0,))
    _run(tmp_path, catalog, manifest)
    dataset = pd.read_parquet(tmp_path / "out" / "dataset.parquet")
    images = np.load(tmp_path / "out" / "images.npy", mmap_mode="r")
    assert isinstance(images, np.memmap)
    assert images.shape == (11, 64, 64, 3) and images.dtype == np.uint8
    assert dataset["row"].tolist() == list(range(11))
    from skysort.data.images import read_cutout

    for row in (0, 5, 10):
        objid = dataset.loc[row, "objid"]
        expected = read_cutout(tmp_path / "cutouts" / f"{objid}.jpg", 64, Clean().min_pixel_std)
        np.testing.assert_array_equal(images[row], expected)
    assert dataset["objid"].dtype == np.int64
    assert dataset["objid"].iloc[0] == catalog["objid"].iloc[1]  # exact 64-bit id


def test_split_is_stratified_seeded_and_keeps_unknown_labels_in_train():
    labels = pd.Series(["A"] * 50 + ["B"] * 20 + [None] * 10, dtype="string")
    split = assign_splits(labels, 0.2, 0.1, seed=3)
    again = assign_splits(labels, 0.2, 0.1, seed=3)
    other = assign_splits(labels, 0.2, 0.1, seed=4)
    assert (split == again).all() and not (split == other).all()
    assert ((split == "test") & (labels == "A").to_numpy()).sum() == 10
    assert ((split == "test") & (labels == "B").to_numpy()).sum() == 4
    assert ((split == "val") & (labels == "B").to_numpy()).sum() == 2
    assert (split[70:] == "train").all()


def test_no_usable_rows_is_a_clear_error_and_writes_nothing(tmp_path):
    catalog = make_catalog(4)
    manifest = write_cutouts(catalog, tmp_path / "cutouts", size=64, missing=(0, 1, 2, 3))
    with pytest.raises(NoUsableRowsError, match="no usable rows remain out of 4"):
        _run(tmp_path, catalog, manifest)
    assert not (tmp_path / "out" / "dataset.parquet").exists()
    assert not (tmp_path / "out" / "images.npy").exists()


def test_a_decompression_bomb_on_disk_is_dropped_with_its_reason(tmp_path):
    catalog = make_catalog(12)
    manifest = write_cutouts(catalog, tmp_path / "cutouts", size=64)
    (tmp_path / "cutouts" / f"{catalog.objid[3]}.jpg").write_bytes(bomb_jpeg())
    report = _run(tmp_path, catalog, manifest)
    assert report["dropped_by_reason"] == {"oversized_image": 1}
    assert report["kept_rows"] == 11


def _previous_outputs(tmp_path):
    out = tmp_path / "out"
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def test_a_short_manifest_fails_the_stage_naming_the_counts(tmp_path):
    catalog = make_catalog(50)
    manifest = write_cutouts(catalog, tmp_path / "cutouts", size=64)
    _run(tmp_path, catalog, manifest)  # a good run first: its outputs must survive
    before = _previous_outputs(tmp_path)
    with pytest.raises(TooManyDroppedError, match=r"drop 40 of 50 rows .*'not_in_manifest': 40"):
        _run(tmp_path, catalog, manifest.iloc[:10])
    assert _previous_outputs(tmp_path) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(before)  # no work dir


def test_files_deleted_from_disk_are_their_own_reason_and_count_against_the_budget(tmp_path):
    catalog = make_catalog(50)
    manifest = write_cutouts(catalog, tmp_path / "cutouts", size=64)
    for objid in catalog.objid[:25]:
        (tmp_path / "cutouts" / f"{objid}.jpg").unlink()
    with pytest.raises(TooManyDroppedError, match="'file_deleted': 25"):
        _run(tmp_path, catalog, manifest)
    report = _run(tmp_path, catalog, manifest, max_drop_fraction=0.6)
    assert report["dropped_by_reason"] == {"file_deleted": 25}


def test_a_file_changed_since_the_fetch_is_caught_by_its_sha256(tmp_path):
    catalog = make_catalog(12)
    manifest = write_cutouts(catalog, tmp_path / "cutouts", size=64)
    swapped = tmp_path / "cutouts" / f"{catalog.objid[4]}.jpg"
    swapped.write_bytes((tmp_path / "cutouts" / f"{catalog.objid[5]}.jpg").read_bytes())
    report = _run(tmp_path, catalog, manifest)
    assert report["dropped_by_reason"] == {"changed_on_disk": 1}


def test_rows_left_out_by_design_do_not_count_against_the_drop_budget(tmp_path):
    from skysort.data.cleaning import write_outputs

    catalog = make_catalog(10)
    reasons = pd.Series([np.nan] * 10, index=catalog.index, dtype="object")
    reasons.iloc[:6] = "not_a_label_class"  # stars in a galaxy-morphology task
    reasons.iloc[6] = "missing_image"
    kept = int(reasons.isna().sum())
    images = (np.zeros((64, 64, 3), np.uint8) for _ in range(kept))
    out = [tmp_path / n for n in ("d.parquet", "i.npy", "r.json")]
    report = write_outputs(
        catalog, reasons, images, *out, data=DATA, clean=Clean(), seed=1, target=MULTICLASS
    )
    assert report["kept_rows"] == 3  # 1 of the 4 eligible rows dropped: 25 %, within budget
    reasons.iloc[7] = "missing_image"
    with pytest.raises(TooManyDroppedError, match="drop 2 of 4 rows"):
        write_outputs(
            catalog, reasons, iter([]), *out, data=DATA, clean=Clean(), seed=1, target=MULTICLASS
        )


def test_images_are_decoded_and_packed_a_batch_at_a_time_with_the_same_result(
    tmp_path, monkeypatch
):
    # Batches of 4 rows: dropped rows fall inside and across batches; the packed array
    # must be exactly the kept rows' decoded cutouts, in catalog order.
    from skysort.data import cleaning
    from skysort.data.images import read_cutout
    from skysort.stages import clean

    monkeypatch.setattr(cleaning, "DECODE_BATCH", 4)
    monkeypatch.setattr(clean, "DECODE_BATCH", 4)
    catalog = make_catalog(23)
    manifest = write_cutouts(
        catalog, tmp_path / "cutouts", size=64, missing=(0, 9), corrupt=(3,), blank=(4, 22)
    )
    report = _run(tmp_path, catalog, manifest)
    assert report["kept_rows"] == 18
    dataset = pd.read_parquet(tmp_path / "out" / "dataset.parquet")
    images = np.load(tmp_path / "out" / "images.npy")
    expected = [
        read_cutout(tmp_path / "cutouts" / f"{o}.jpg", 64, Clean().min_pixel_std)
        for o in dataset["objid"]
    ]
    np.testing.assert_array_equal(images, np.stack(expected))


def test_packed_images_read_any_rows_like_the_array_numpy_maps(tmp_path):
    from skysort.data.packed import PackedWriter, open_images

    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    path = tmp_path / "images.npy"
    with PackedWriter(path, 10, (4, 4, 3)) as out:
        out.write(4, array[4:])  # any order, in blocks or one at a time
        for i in range(4):
            out.write(i, array[i])
    mapped = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(mapped, array)
    images = open_images(path)
    assert images.shape == (10, 4, 4, 3) and len(images) == 10 and images.dtype == np.uint8
    for key in (3, -1, slice(2, 7), slice(None, None, 3), np.array([9, 0, 5, 5, 1, 2, 3]),
                np.array([], dtype=np.int64), np.arange(10) % 2 == 0):  # fmt: skip
        np.testing.assert_array_equal(images[key], array[key])
    np.testing.assert_array_equal(np.asarray(images), array)
    with pytest.raises(IndexError):
        images[np.array([10])]


def test_a_packed_file_with_a_row_never_written_is_refused(tmp_path):
    from skysort.data.packed import PackedWriter

    never = pytest.raises(ValueError, match="1 of 3 images never written")
    with never, PackedWriter(tmp_path / "i.npy", 3, (2, 2, 3)) as out:
        out.write(0, np.zeros((2, 2, 2, 3), np.uint8))
    past_the_end = pytest.raises(ValueError, match="cannot write")
    with past_the_end, PackedWriter(tmp_path / "j.npy", 3, (2, 2, 3)) as out:
        out.write(2, np.zeros((2, 2, 2, 3), np.uint8))


def test_the_quick_blank_check_decides_as_numpy_std_does():
    from skysort.data.images import BadImage, decode_jpeg, encode_jpeg

    rng = np.random.default_rng(1)
    for k in range(60):
        image = rng.normal(100, rng.uniform(0, 4), (16, 16, 3)).clip(0, 255).astype(np.uint8)
        if k % 5 == 0:
            image[..., k % 3] = 200  # one flat channel
        data = encode_jpeg(image)
        decoded = decode_jpeg(data, min_pixel_std=0)
        spread = float(decoded.reshape(-1, 3).std(axis=0).max())
        for limit in (0.0, 1.0, 2.0, spread, np.nextafter(spread, np.inf), 3.0):
            try:
                decode_jpeg(data, min_pixel_std=limit)
                blank = False
            except BadImage as exc:
                blank = exc.reason == "blank_image"
            assert blank == (spread < limit), (k, limit, spread)


def test_a_row_view_reads_only_the_rows_asked_for(tmp_path):
    from skysort.data.packed import PackedWriter, RowView, open_images

    array = np.arange(6 * 2 * 2 * 3, dtype=np.uint8).reshape(6, 2, 2, 3)
    with PackedWriter(tmp_path / "i.npy", 6, (2, 2, 3)) as out:
        out.write(0, array)
    view = RowView(open_images(tmp_path / "i.npy"), np.array([5, 0, 3]))
    assert view.shape == (3, 2, 2, 3) and len(view) == 3
    np.testing.assert_array_equal(view[0], array[5])
    np.testing.assert_array_equal(view[1:], array[[0, 3]])
