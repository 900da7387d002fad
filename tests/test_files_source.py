"""source.kind: files: the user's own catalog file and images, messy as real files are."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skysort.config import (
    Clean,
    ConfigError,
    Data,
    FilesSource,
    Params,
    Paths,
    Source,
    Train,
    validate_params,
)
from skysort.data.atomic import read_json
from skysort.pipeline.registry import run_stage
from skysort.sources.files.catalog import FilesError
from skysort.sources.files.images import fit_square
from tests.factories import SHARED_SDSS17

LABELS = ("elliptical", "spiral", "edge_on", "merger")
DATA = Data(features=("flux_a", "flux_b"), classes=("cat", "dog"), image_size=64)


def _params(tmp_path: Path, catalog: Path, files: FilesSource, data: Data = DATA, **kw) -> Params:
    out = tmp_path / "out"
    paths = (
        Paths()
        .under(out)
        .model_copy(update={"source_catalog": catalog, "source_images": tmp_path / "images"})
    )
    if files.images == "none":
        kw.setdefault("train", Train(model="tabular"))
    return Params(paths=paths, source=Source(kind="files", files=files), data=data, **kw)


def _write_csv(path: Path, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    body = text.strip("\n").replace("\n", "\r\n" if crlf else "\n") + ("\r\n" if crlf else "\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode())
    return path


def _tabular_csv(n: int = 40) -> str:
    rows = ["objid,flux_a,flux_b,kind,note"]
    for i in range(n):
        kind = "cat" if i % 2 else "dog"
        a = 1.0 + 2.0 * (kind == "cat") + 0.1 * (i % 5)
        rows.append(f'{1237648704577142822 + i},{a:.2f},{0.5 * i:.2f},{kind},"a, quoted ""note"""')
    return "\n".join(rows)


FILES = FilesSource(id_column="objid", label_column="kind")


# ---------------------------------------------------------------- reading the catalog


def test_bom_crlf_and_quoted_fields_read_into_the_contract(tmp_path):
    csv = _write_csv(tmp_path / "cat.csv", _tabular_csv(), bom=True, crlf=True)
    report = run_stage("query", _params(tmp_path, csv, FILES))
    catalog = pd.read_parquet(tmp_path / "out/data/raw/catalog.parquet")
    assert catalog["objid"].dtype == np.int64
    assert catalog["objid"].iloc[-1] == 1237648704577142822 + 39  # exact: never through float
    assert catalog["class"].tolist()[:2] == ["dog", "cat"]
    assert catalog["flux_a"].dtype == np.float64 and catalog["ra"].isna().all()
    assert report["notes"] == ["UTF-8 byte order mark removed", "CRLF line endings"]
    assert report["unused_columns"] == ["note"] and report["class_counts"] == {"dog": 20, "cat": 20}


def test_parquet_catalog_reads_the_same(tmp_path):
    csv = _write_csv(tmp_path / "cat.csv", _tabular_csv())
    frame = pd.read_csv(csv, dtype={"objid": "int64"})
    frame.to_parquet(tmp_path / "cat.parquet")
    run_stage("query", _params(tmp_path, tmp_path / "cat.parquet", FILES))
    catalog = pd.read_parquet(tmp_path / "out/data/raw/catalog.parquet")
    assert catalog["objid"].iloc[-1] == 1237648704577142822 + 39


def test_spreadsheet_ids_are_an_error_naming_file_line_and_column(tmp_path):
    text = _tabular_csv(6).replace("1237648704577142822,", "1.23765E+18,")
    text = text.replace("1237648704577142823,", "1.23765E+18,")
    csv = _write_csv(tmp_path / "cat.csv", text)
    with pytest.raises(FilesError) as exc:
        run_stage("query", _params(tmp_path, csv, FILES))
    message = str(exc.value)
    assert str(csv) in message and "column 'objid'" in message
    assert "line 2 ('1.23765E+18')" in message and "scientific notation" in message
    assert "bad_ids: row_ids" in message


def test_row_ids_where_the_user_allows_with_a_warning(tmp_path, caplog):
    text = _tabular_csv(6).replace("1237648704577142824,", "1237648704577142822,")  # repeated
    csv = _write_csv(tmp_path / "cat.csv", text)
    files = FILES.model_copy(update={"bad_ids": "row_ids"})
    with caplog.at_level(logging.WARNING):
        report = run_stage("query", _params(tmp_path, csv, files))
    assert "1 row(s) repeat an earlier id: line 4 ('1237648704577142822')" in caplog.text
    catalog = pd.read_parquet(tmp_path / "out/data/raw/catalog.parquet")
    assert catalog["objid"].tolist() == [1, 2, 3, 4, 5, 6]
    assert report["ids"].startswith("row numbers")


def test_unknown_column_is_named_with_a_suggestion(tmp_path):
    csv = _write_csv(tmp_path / "cat.csv", _tabular_csv(4))
    data = DATA.model_copy(update={"features": ("Flux_A", "flux_b")})
    with pytest.raises(
        FilesError, match=r"no column 'Flux_A' \(data.features\) \(did you mean 'flux_a'\?\)"
    ):
        run_stage("query", _params(tmp_path, csv, FILES, data=data))


def test_unknown_class_names_the_file_row_and_column(tmp_path):
    text = _tabular_csv(6).replace(",cat,", ",Cat,", 1).replace(",dog,", ",bird,")
    csv = _write_csv(tmp_path / "cat.csv", text)
    with pytest.raises(FilesError) as exc:
        run_stage("query", _params(tmp_path, csv, FILES))
    message = str(exc.value)
    assert "column 'kind' (source.files.label_column)" in message
    assert "'Cat' (1 rows, first at line 3, did you mean 'cat'?)" in message
    assert "'bird' (3 rows, first at line 2)" in message


def test_missing_and_sentinel_features_are_reported_then_dropped_by_clean(tmp_path, caplog):
    lines = [line.split(",", 4) for line in _tabular_csv(40).split("\n")]
    lines[3][1] = "-9999"  # line 4
    lines[5][1:3] = ["", ""]  # line 6
    lines[7][1] = "n/a"  # line 8
    text = [",".join(fields) for fields in lines]
    csv = _write_csv(tmp_path / "cat.csv", "\n".join(text))
    params = _params(tmp_path, csv, FILES)
    with caplog.at_level(logging.WARNING):
        report = run_stage("query", params)
    missing = report["missing_features"]["flux_a"]
    assert missing["sentinel"] == {"rows": 1, "first": "line 4 ('-9999')"}
    assert missing["blank"]["rows"] == 2 and "not trained on" in caplog.text
    run_stage("cutouts", params)
    clean = run_stage("clean", params)
    assert clean["dropped_by_reason"] == {"missing_features": 3} and clean["kept_rows"] == 37


def test_non_sdss_names_only_with_the_files_source():
    with pytest.raises(ConfigError, match="data.classes"):
        validate_params({"data": {"classes": ["cat", "dog"], "features": ["u"]}})
    with pytest.raises(ConfigError, match="data.features"):
        validate_params({"data": {"features": ["flux"]}})
    params = validate_params(
        {
            "source": {"kind": "files"},
            "train": {"model": "tabular"},
            "data": {"classes": ["cat", "dog"], "features": ["flux"]},
        }
    )
    assert params.data.classes == ("cat", "dog")


@pytest.mark.parametrize("model", ["image", "fusion"])
def test_image_models_are_refused_for_tabular_only_data(model):
    with pytest.raises(ConfigError) as exc:
        validate_params({"source": {"kind": "files", "files": {"images": "none"}},
                         "train": {"model": model}})  # fmt: skip
    assert f"train.model: '{model}' needs images" in str(exc.value)
    assert "tabular-only" in str(exc.value)


def test_tabular_only_data_packs_empty_width_images(tmp_path):
    csv = _write_csv(tmp_path / "cat.csv", _tabular_csv(30))
    params = _params(tmp_path, csv, FILES)
    run_stage("query", params)
    assert run_stage("cutouts", params)["objects"] == 0
    report = run_stage("clean", params)
    images = np.load(tmp_path / "out/data/interim/images.npy", mmap_mode="r")
    assert images.shape == (30, 0, 0, 3) and report["kept_rows"] == 30


# ---------------------------------------------------------------- images


def test_resize_policies_keep_what_they_promise():
    wide = Image.new("RGB", (200, 100), (255, 255, 255))
    pad = np.asarray(fit_square(wide, 64, "pad"))
    assert pad.shape == (64, 64, 3)
    assert pad[0].max() == 0 and pad[32].min() > 200  # black bands above and below the image
    assert np.asarray(fit_square(wide, 64, "crop")).min() > 200
    assert np.asarray(fit_square(wide, 64, "stretch")).min() > 200


def _image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    blob = 200 * np.exp(-((xx - width / 2) ** 2 + (yy - height / 2) ** 2) / (width * height / 20))
    pixels = blob[..., None] + rng.normal(30, 8, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _multilabel_folder(tmp_path: Path, n: int = 24) -> Path:
    """Non-square JPEGs named by id, four label columns with NaN, one missing, one corrupt file."""
    images = tmp_path / "images"
    images.mkdir()
    rows = ["id,flux_a,flux_b,kind," + ",".join(LABELS)]
    for i in range(n):
        ident = 5000 + i
        if i != 3:  # the CSV lists it, the folder lacks it
            _image(90 if i % 2 else 50, 60 if i % 2 else 120, i).save(images / f"{ident}.jpg")
        labels = ["" if (i + k) % 5 == 0 else str((i >> k) & 1) for k in range(4)]
        labels[1] = "NaN" if i % 7 == 0 else labels[1]
        rows.append(f"{ident},{i % 3 + 0.5},{i * 0.1:.1f},{'cat' if i % 2 else 'dog'},"
                    + ",".join(labels))  # fmt: skip
    (images / "5005.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return _write_csv(tmp_path / "labels.csv", "\n".join(rows))


@pytest.mark.parametrize("resize", ["pad", "crop", "stretch"])
def test_a_folder_of_non_square_images_with_multilabel_columns(tmp_path, resize):
    csv = _multilabel_folder(tmp_path)
    files = FilesSource(id_column="id", label_column="kind", label_columns=LABELS,
                        images="folder", image_pattern="{id}.jpg", resize=resize)  # fmt: skip
    params = _params(tmp_path, csv, files, clean=Clean(min_pixel_std=1.0))
    run_stage("query", params)
    catalog = pd.read_parquet(tmp_path / "out/data/raw/catalog.parquet")
    assert catalog["spiral"].isna().sum() == 7 and set(catalog["merger"].dropna()) <= {0.0, 1.0}
    cutouts = run_stage("cutouts", params)
    assert cutouts["status_counts"] == {"ok": 22, "missing": 1, "error": 1}
    report = run_stage("clean", params)
    assert report["dropped_by_reason"] == {"missing_image": 1, "unreadable_image": 1}
    details = {d["objid"]: d for d in read_json(tmp_path / "out/reports/clean.json")["dropped"]}
    assert "no such file" in details[5003]["detail"] and "5003.jpg" in details[5003]["detail"]
    assert "unreadable image" in details[5005]["detail"]
    dataset = pd.read_parquet(tmp_path / "out/data/interim/dataset.parquet")
    images = np.load(tmp_path / "out/data/interim/images.npy")
    assert images.shape == (22, 64, 64, 3) and len(dataset) == 22
    assert dataset[list(LABELS)].isna().any().any()  # unknown labels stay unknown


def test_image_paths_from_a_column_relative_to_the_images_folder(tmp_path):
    images = tmp_path / "images" / "GALAXY"
    images.mkdir(parents=True)
    rows = ["objid,class,image,flux_a,flux_b"]
    for i in range(6):
        _image(40, 30, i).save(images / f"{i}.png")  # any format Pillow reads
        rows.append(f"{100 + i},{'cat' if i % 2 else 'dog'},GALAXY/{i}.png,1,2")
    csv = _write_csv(tmp_path / "labels.csv", "\n".join(rows))
    files = FilesSource(id_column="objid", images="column", image_column="image")
    params = _params(tmp_path, csv, files, clean=Clean(min_pixel_std=1.0))
    run_stage("query", params)
    assert run_stage("cutouts", params)["status_counts"] == {"ok": 6}
    with Image.open(tmp_path / "out/data/raw/cutouts/100.jpg") as cutout:
        assert cutout.size == (64, 64) and cutout.format == "JPEG"


def _multilabel_raw(**files) -> dict:
    return {
        "task": "multilabel",
        "source": {"kind": "files", "files": {"id_column": "id", "label_column": None,
                                              "images": "folder", **files}},
        "data": {"features": ["flux_a", "flux_b"], "labels": list(LABELS)},
    }  # fmt: skip


def test_multilabel_task_reads_the_data_labels_columns_from_the_file(tmp_path):
    """task: multilabel takes its label columns from data.labels: no second list to keep."""
    csv = _multilabel_folder(tmp_path)
    params = validate_params(_multilabel_raw())
    paths = Paths().under(tmp_path / "out")
    params = params.model_copy(update={"paths": paths.model_copy(update={
        "source_catalog": csv, "source_images": tmp_path / "images"})})  # fmt: skip
    run_stage("query", params)
    catalog = pd.read_parquet(tmp_path / "out/data/raw/catalog.parquet")
    assert catalog["spiral"].isna().sum() == 7 and catalog["class"].isna().all()
    run_stage("cutouts", params)
    report = run_stage("clean", params)  # no class column: nothing dropped as another class
    assert report["dropped_by_reason"] == {"missing_image": 1, "unreadable_image": 1}
    assert set(report["label_counts_by_split"]["train"]) == set(LABELS)


def test_label_columns_that_differ_from_data_labels_are_refused_at_load():
    raw = _multilabel_raw(label_columns=["elliptical", "spiral"])
    with pytest.raises(ConfigError) as exc:
        validate_params(raw)
    assert "source.files.label_columns: ['elliptical', 'spiral'] differ from data.labels" in str(
        exc.value
    )
    assert validate_params(_multilabel_raw(label_columns=list(LABELS[::-1])))  # same columns


def test_a_class_column_with_no_label_class_is_refused_at_load():
    """label_classes keeps rows of those classes: none of the file's would be kept."""
    raw = _multilabel_raw(label_column="kind")
    raw["data"]["classes"] = ["cat", "dog"]
    with pytest.raises(ConfigError, match=r"data.label_classes: \['GALAXY'\] are not in data"):
        validate_params(raw)
    raw["data"]["label_classes"] = ["cat"]
    assert validate_params(raw).data.label_classes == ("cat",)


def test_the_multiclass_task_needs_a_class_column():
    raw = {"source": {"kind": "files", "files": {"label_column": None}},
           "data": {"features": ["x"]}, "train": {"model": "tabular"}}  # fmt: skip
    with pytest.raises(ConfigError, match="source.files.label_column: the multiclass task needs"):
        validate_params(raw)


def test_a_missing_label_column_is_named_with_its_key(tmp_path):
    csv = _multilabel_folder(tmp_path)
    raw = _multilabel_raw(label_column="class")
    raw["data"]["labels"] = ["elliptical", "Spiral", "edge_on", "merger"]
    params = validate_params(raw)
    paths = Paths().under(tmp_path / "out").model_copy(update={"source_catalog": csv})
    with pytest.raises(FilesError) as exc:
        run_stage("query", params.model_copy(update={"paths": paths}))
    message = str(exc.value)
    assert "no column 'Spiral' (data.labels) (did you mean 'spiral'?)" in message
    assert "no column 'class' (source.files.label_column)" in message
    assert "a class column is optional: set it to null" in message


def test_image_only_data_needs_the_image_model():
    """No feature column (the origin multi-label system's CSV): only images to learn from."""
    raw = _multilabel_raw()
    raw["data"]["features"] = []
    with pytest.raises(ConfigError, match="train.model: 'fusion' needs tabular features"):
        validate_params(raw)
    raw["train"] = {"model": "image"}
    assert validate_params(raw).data.features == ()
    with pytest.raises(ConfigError, match="impute.image_features: false leaves"):
        validate_params({**raw, "impute": {"image_features": False}})
    with pytest.raises(ConfigError, match="data.features: at least one feature is needed"):
        validate_params({"data": {"features": []}, "train": {"model": "image"}})


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_image_only_data_through_impute_and_baselines(tmp_path, task):
    """Nothing tabular to fit: the baselines say so, the multiclass imputer fills nothing."""
    csv = _multilabel_folder(tmp_path)
    raw = _multilabel_raw(label_column="kind" if task == "multiclass" else None)
    raw["task"] = task
    raw["data"].update(features=[], classes=["cat", "dog"], label_classes=["cat", "dog"])
    raw["train"] = {"model": "image"}
    raw["impute"] = {"n_estimators": 10, "max_iter": 1}
    params = validate_params(raw)
    paths = Paths().under(tmp_path / "out")
    params = params.model_copy(update={"paths": paths.model_copy(update={
        "source_catalog": csv, "source_images": tmp_path / "images"})})  # fmt: skip
    text = csv.read_text().replace(",dog,", ",,", 2)  # two unknown classes
    csv.write_text(text)
    for stage in ("query", "cutouts", "clean"):
        run_stage(stage, params)
    impute = run_stage("impute", params)
    if task == "multiclass":
        assert "nothing to impute from" in impute["note"] and impute["imputed"] == 0
    else:  # the morphology of the images is enough for the multilabel imputer
        assert set(impute["per_label"]) == set(LABELS)
    baselines = run_stage("baselines", params)
    assert baselines["models"] == {} and "data.features is empty" in baselines["skipped"]
    assert read_json(tmp_path / "out/reports/baselines.json") == baselines


def test_image_paths_may_not_leave_the_images_folder(tmp_path):
    csv = _write_csv(tmp_path / "labels.csv", "objid,class,image,flux_a,flux_b\n1,cat,../x.jpg,1,2")
    files = FilesSource(id_column="objid", images="column", image_column="image")
    with pytest.raises(FilesError, match=r"without '\.\.'.*line 2 \('\.\./x\.jpg'\)"):
        run_stage("query", _params(tmp_path, csv, files))


# ---------------------------------------------------------------- the real SDSS17 sample


@pytest.mark.skipif(not SHARED_SDSS17.is_file(), reason="the shared SDSS17 sample is absent")
def test_real_sdss17_slice_tabular_only_through_the_baselines(tmp_path, caplog):
    """query -> cutouts -> clean -> impute -> balance -> baselines on 600 real rows."""
    with SHARED_SDSS17.open("rb") as f:
        head = b"".join(f.readline() for _ in range(601))
    (tmp_path / "sdss17.csv").write_bytes(head)  # a copy: the project never reads ../shared
    raw = {
        "source": {"kind": "files", "files": {
            "id_column": "obj_ID", "bad_ids": "row_ids", "label_column": "class",
            "ra_column": "alpha", "dec_column": "delta"}},
        "data": {"features": ["u", "g", "r", "i", "z", "redshift"]},
        "train": {"model": "tabular"},
        "impute": {"n_estimators": 20, "max_iter": 2},
        "baselines": {"models": ["logreg", "gboost"], "cv_folds": 2},
    }  # fmt: skip
    params = validate_params(raw)
    params = params.model_copy(update={"paths": Paths().under(tmp_path / "out").model_copy(
        update={"source_catalog": tmp_path / "sdss17.csv"})})  # fmt: skip
    with caplog.at_level(logging.WARNING):
        query = run_stage("query", params)
    assert "scientific notation" in caplog.text and query["rows"] == 600
    assert query["notes"] == ["CRLF line endings"]
    run_stage("cutouts", params)
    assert run_stage("clean", params)["kept_rows"] == 600
    for stage in ("impute", "balance"):
        run_stage(stage, params)
    baselines = run_stage("baselines", params)
    assert baselines["models"]["gboost"]["accuracy"] > 0.85
    shutil.rmtree(tmp_path / "out")


# ---------------------------------------------------------------- DVC


def test_dvc_reruns_what_depends_on_an_edited_row_or_image(tmp_path, monkeypatch):
    """A real git + DVC repo: the catalog file and the image folder are the stages' deps."""
    import yaml

    from skysort.config import load_params
    from tests.project import dvc, git, make_project

    root = make_project(tmp_path / "proj")
    assert dvc("status", cwd=root).returncode == 0  # default source: data/external exists
    external = root / "data/external"
    shutil.move(_multilabel_folder(tmp_path), external / "labels.csv")
    shutil.move(tmp_path / "images", external / "images")
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["paths"].update(
        source_catalog="data/external/labels.csv", source_images="data/external/images"
    )
    raw["source"].update(kind="files", files={"id_column": "id", "label_column": "kind",
                                               "label_columns": list(LABELS), "images": "folder"})  # fmt: skip
    raw["data"].update(features=["flux_a", "flux_b"], classes=["cat", "dog"])
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    git("add", "-A", cwd=root)
    git("commit", "-qm", "files source", cwd=root)
    monkeypatch.chdir(root)
    params = load_params("params.yaml")
    run_stage("query", params)
    run_stage("cutouts", params)
    dvc("commit", "-f", "query", "cutouts", cwd=root)
    assert dvc("status", "query", "cutouts", "--json", cwd=root).stdout.strip() == "{}"

    _image(30, 20, 99).save(external / "images/5000.jpg")
    stale = dvc("status", "query", "cutouts", "--json", cwd=root).stdout
    assert "cutouts" in stale and "query" not in stale and "data/external/images" in stale

    csv = external / "labels.csv"
    csv.write_text(csv.read_text().replace(",0.1,", ",0.2,", 1))
    stale = dvc("status", "query", "--json", cwd=root).stdout
    assert "query" in stale and "data/external/labels.csv" in stale


def test_two_classes_score_a_binary_roc_auc():
    """Files often hold two classes; ROC-AUC then scores the second class's probability."""
    from skysort.evaluation.metrics import classification_scores

    y = np.array([0, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert classification_scores(y, proba.argmax(1), ("a", "b"), proba)["roc_auc_macro"] == 1.0
