"""What the user owns is never touched: outputs stay in their own places inside the
project, and the user's own catalog and images are read safely, row by row.

Each test stands for one case a hostile review of the files source, the multi-label
task and the output paths found (a folder output swallowing the reports, cutouts
written over the user's images, paths and links leading out of the project, ragged
CSV rows, 16-bit and single-colour images, tabular-only multi-label data, bad image
paths, ids beyond 64 bits, unclear messages).
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from skysort.config import (
    ConfigError,
    Data,
    FilesSource,
    Impute,
    Params,
    Paths,
    Source,
    Train,
    load_params,
)
from skysort.data.atomic import read_json
from skysort.data.images import BadImage, decode_jpeg, encode_jpeg
from skysort.evaluation import plots
from skysort.evaluation.metrics import multilabel_scores
from skysort.pipeline.outputs import replaced_together
from skysort.pipeline.registry import run_stage
from skysort.sources.files.catalog import IMAGE_SOURCE, FilesError
from skysort.sources.files.images import copy_images, square_jpeg

LABELS = ("elliptical", "spiral", "edge_on", "merger")
DATA = Data(features=("flux_a", "flux_b"), classes=("cat", "dog"), image_size=64)
FILES = FilesSource(id_column="objid", label_column="kind")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder (the working directory) holding a ``params.yaml`` of defaults."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "params.yaml").write_text("{}\n")
    monkeypatch.chdir(root)
    return root


def _params(tmp_path: Path, catalog: Path, files: FilesSource, data: Data = DATA, **kw) -> Params:
    paths = (
        Paths()
        .under(tmp_path / "out")
        .model_copy(update={"source_catalog": catalog, "source_images": tmp_path / "images"})
    )
    if files.images == "none":
        kw.setdefault("train", Train(model="tabular"))
    return Params(paths=paths, source=Source(kind="files", files=files), data=data, **kw)


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(n: int = 12, trailing: str = "") -> list[str]:
    lines = ["objid,flux_a,flux_b,kind"]
    for i in range(n):
        lines.append(f"{100 + i},{1 + i % 3}.5,{0.5 * i},{'cat' if i % 2 else 'dog'}{trailing}")
    return lines


def _picture(size: int = 40, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def _manifest(tmp_path: Path, names: list[object]) -> dict[int, tuple[str, str]]:
    """Cutouts of rows naming ``names`` (objid 1, 2, ...); each row's status and error."""
    catalog = pd.DataFrame({"objid": np.arange(1, len(names) + 1), IMAGE_SOURCE: names})
    manifest = copy_images(
        catalog, tmp_path / "images", tmp_path / "cutouts", size=64, resize="pad"
    )
    return {int(o): (s, e) for o, s, e in manifest[["objid", "status", "error"]].itertuples(False)}


# ---------------------------------------------------------------- 1, 2: outputs in their own places


def test_an_output_folder_holding_other_outputs_is_refused_naming_both(project):
    with pytest.raises(ConfigError) as exc:
        load_params("params.yaml", ["paths.plots=reports"])
    message = str(exc.value)
    assert "paths.plots" in message and "paths.clean_report" in message
    with pytest.raises(ConfigError) as exc:
        load_params("params.yaml", ["paths.metrics=reports/clean.json"])
    assert "paths.metrics" in str(exc.value) and "paths.clean_report" in str(exc.value)


def test_the_swap_never_removes_a_folder_holding_another_output(tmp_path):
    """The load-time rule is the main guard; the swap itself refuses such a set as well."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "clean.json").write_text('{"kept": 1}')
    finals = [reports / "metrics.json", reports]
    with pytest.raises(ValueError, match="inside"), replaced_together(finals) as (metrics, folder):
        metrics.write_text("{}")
        folder.mkdir()
    assert (reports / "clean.json").read_text() == '{"kept": 1}'


def test_an_output_in_or_around_the_users_files_is_refused(project):
    sets = ["paths.source_images=data/external/images", "paths.cutouts_dir=data/external/images"]
    with pytest.raises(ConfigError) as exc:
        load_params("params.yaml", sets)
    assert "paths.cutouts_dir" in str(exc.value) and "paths.source_images" in str(exc.value)
    with pytest.raises(ConfigError) as exc:  # the other way round: an input inside an output
        load_params("params.yaml", ["paths.source_catalog=data/raw/cutouts/mine.csv"])
    assert "paths.source_catalog" in str(exc.value) and "paths.cutouts_dir" in str(exc.value)
    # the same through a link: data/raw/cutouts leads into the user's folder
    (project / "data/external/images").mkdir(parents=True)
    (project / "data/raw").mkdir(parents=True)
    (project / "data/raw/cutouts").symlink_to(project / "data/external/images")
    with pytest.raises(ConfigError, match="paths.cutouts_dir"):
        load_params("params.yaml", ["paths.source_images=data/external/images"])


# ---------------------------------------------------------------- 3: outputs stay in the project


@pytest.mark.parametrize("where", ["../escape/clean.json", "/tmp/skysort-escape/clean.json"])
def test_outputs_outside_the_project_are_refused(project, where):
    with pytest.raises(ConfigError, match=r"paths\.clean_report: .*outside the project"):
        load_params("params.yaml", [f"paths.clean_report={where}"])


def test_an_output_reached_through_a_link_out_of_the_project_is_refused(project, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (project / "reports").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=r"paths\.clean_report: .*outside the project"):
        load_params("params.yaml")


def test_inputs_may_be_outside_and_sections_built_in_code_need_no_project(project, tmp_path):
    params = load_params(
        "params.yaml",
        [f"paths.source_catalog={tmp_path / 'mine.csv'}", "paths.source_images=../pictures"],
    )
    assert params.paths.source_images == Path("../pictures")
    assert Params(paths=Paths().under(tmp_path / "anywhere")).paths.catalog.is_absolute()


# ---------------------------------------------------------------- 4, 9, 12: one image, one row


def test_links_out_of_the_images_folder_are_errors_and_never_read(tmp_path):
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    _picture(seed=1).save(outside / "secret.png")
    _picture(seed=2).save(outside / "dir" / "x.png")
    images = tmp_path / "images"
    images.mkdir()
    _picture().save(images / "ok.png")
    (images / "link.png").symlink_to(outside / "secret.png")
    (images / "linked").symlink_to(outside / "dir", target_is_directory=True)
    (images / "inside.png").symlink_to(images / "ok.png")  # a link that stays inside is fine
    rows = _manifest(tmp_path, ["ok.png", "link.png", "linked/x.png", "inside.png"])
    assert [rows[i][0] for i in (1, 2, 3, 4)] == ["ok", "error", "error", "ok"]
    assert "outside paths.source_images" in rows[2][1] and "outside" in rows[3][1]
    assert not (tmp_path / "cutouts/2.jpg").exists() and not (tmp_path / "cutouts/3.jpg").exists()


def test_one_bad_image_path_is_that_rows_error_not_a_crash(tmp_path):
    (tmp_path / "images").mkdir()
    _picture().save(tmp_path / "images" / "ok.png")
    rows = _manifest(tmp_path, ["ok.png", "x" * 300 + ".png", "bad\x00name.png", "a/" * 3000])
    assert [rows[i][0] for i in (1, 2, 3, 4)] == ["ok", "error", "error", "error"]
    assert "too long" in rows[2][1].lower() and "null" in rows[3][1].lower()
    assert all(len(error) < 400 for _, error in rows.values())


def test_an_image_path_that_is_a_folder_says_so(tmp_path):
    (tmp_path / "images" / "sub").mkdir(parents=True)
    rows = _manifest(tmp_path, ["sub", "none.png"])
    assert rows[1][0] == "error" and "a folder" in rows[1][1]
    assert rows[2][0] == "missing" and "no such file" in rows[2][1]


# ---------------------------------------------------------------- 6, 7: pixels as they are meant


def test_16_bit_images_are_rescaled_not_clipped_to_white():
    gradient = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    png = io.BytesIO()
    Image.fromarray(gradient).save(png, format="PNG")
    with Image.open(io.BytesIO(square_jpeg(png.getvalue(), 64, "pad"))) as cutout:
        pixels = np.asarray(cutout.convert("L"), dtype=float)
    assert (pixels >= 250).mean() < 0.05
    assert abs(pixels.mean() - 127.5) < 4


def test_wide_pixels_that_fit_no_8_or_16_bit_range_are_refused_with_the_reason(tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((8, 8), 1e6, dtype=np.float32)).save(tmp_path / "images/f.tiff")
    Image.fromarray(np.full((8, 8), 70000, dtype=np.int32)).save(tmp_path / "images/i.tiff")
    rows = _manifest(tmp_path, ["f.tiff", "i.tiff"])
    assert [rows[1][0], rows[2][0]] == ["error", "error"]
    assert "1000000" in rows[1][1] and "70000" in rows[2][1]


def test_a_single_colour_image_is_blank():
    red = encode_jpeg(np.full((64, 64, 3), (255, 0, 0), dtype=np.uint8))
    with pytest.raises(BadImage) as exc:
        decode_jpeg(red, min_pixel_std=2.0)
    assert exc.value.reason == "blank_image" and "every channel" in exc.value.detail
    textured = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert decode_jpeg(encode_jpeg(textured), min_pixel_std=2.0).shape == (64, 64, 3)


# ---------------------------------------------------------------- 5, 10, 12: the catalog file


@pytest.mark.parametrize("id_column", [None, "objid"])
def test_a_trailing_comma_on_every_row_is_named_not_shifted(tmp_path, id_column):
    csv = _csv(tmp_path / "cat.csv", _rows(trailing=","))
    files = FilesSource(id_column=id_column, label_column="kind", images="none")
    with pytest.raises(FilesError) as exc:
        run_stage("query", _params(tmp_path, csv, files))
    message = str(exc.value)
    assert "5 fields" in message and "header names 4" in message and "line 2" in message
    assert "trailing" in message


def test_one_long_row_is_named_by_its_line(tmp_path):
    lines = _rows()
    lines[5] += ",7"
    csv = _csv(tmp_path / "cat.csv", lines)
    with pytest.raises(FilesError, match=r"line 6 \(5 fields\)"):
        run_stage("query", _params(tmp_path, csv, FILES.model_copy(update={"images": "none"})))


def test_an_empty_csv_says_it_is_empty(tmp_path):
    csv = tmp_path / "cat.csv"
    csv.write_bytes(b"")
    with pytest.raises(FilesError, match="is empty") as exc:
        run_stage("query", _params(tmp_path, csv, FILES.model_copy(update={"images": "none"})))
    assert "list index" not in str(exc.value)


def _parquet(tmp_path: Path, ids: np.ndarray) -> Path:
    n = len(ids)
    frame = pd.DataFrame({"objid": ids, "flux_a": np.arange(n) + 1.0,
                          "flux_b": np.arange(n) * 0.5, "kind": ["cat", "dog"] * (n // 2)})  # fmt: skip
    frame.to_parquet(tmp_path / "cat.parquet")
    return tmp_path / "cat.parquet"


def test_a_parquet_id_beyond_64_bits_is_named_as_in_a_csv(tmp_path):
    path = _parquet(tmp_path, np.array([1, 2**64 - 1], dtype=np.uint64))
    files = FILES.model_copy(update={"images": "none"})
    with pytest.raises(
        FilesError, match=r"not exact 64-bit integers: row 2 \('18446744073709551615'\)"
    ):
        run_stage("query", _params(tmp_path, path, files))


def test_parquet_float_ids_that_are_whole_numbers_are_ids(tmp_path):
    files = FILES.model_copy(update={"images": "none"})
    run_stage("query", _params(tmp_path, _parquet(tmp_path, np.array([1.0, 2.0])), files))
    catalog = pd.read_parquet(tmp_path / "out/data/raw/catalog.parquet")
    assert catalog["objid"].tolist() == [1, 2]
    with pytest.raises(FilesError, match=r"row 2 \('2.5'\)"):
        run_stage("query", _params(tmp_path, _parquet(tmp_path, np.array([1.0, 2.5])), files))


def test_a_huge_cell_is_quoted_short(tmp_path, caplog):
    lines = _rows(20)
    lines[2] = lines[2].replace(",0.5,", f",{'x' * 300_000},")
    csv = _csv(tmp_path / "cat.csv", lines)
    with caplog.at_level(logging.WARNING):
        run_stage("query", _params(tmp_path, csv, FILES.model_copy(update={"images": "none"})))
    assert "not_a_number" in caplog.text and "line 3" in caplog.text
    assert max(len(r.getMessage()) for r in caplog.records) < 2000


def test_no_known_label_in_any_row_stops_at_query(tmp_path):
    lines = ["objid,flux_a,flux_b," + ",".join(LABELS)]
    lines += [f"{i},{i}.5,{i},,NaN,," for i in range(1, 11)]
    csv = _csv(tmp_path / "labels.csv", lines)
    files = FilesSource(id_column="objid", label_column=None, images="none")
    data = DATA.model_copy(update={"labels": LABELS})
    with pytest.raises(FilesError, match="no row has a known label") as exc:
        run_stage("query", _params(tmp_path, csv, files, data=data, task="multilabel"))
    assert all(label in str(exc.value) for label in LABELS)
    blank = _csv(tmp_path / "blank.csv", [_rows()[0]] + [f"{i},{i}.5,{i}," for i in range(1, 11)])
    with pytest.raises(FilesError, match=r"no row has a known label.*'kind'"):
        run_stage("query", _params(tmp_path, blank, FILES.model_copy(update={"images": "none"})))


# ---------------------------------------------------------------- 8: multilabel without images


def _tabular_multilabel(tmp_path: Path, impute: Impute) -> Params:
    rng = np.random.default_rng(0)
    lines = ["objid,flux_a,flux_b," + ",".join(LABELS)]
    for i in range(80):
        a, b = rng.normal(size=2)
        labels = [int(a > 0), int(b > 0), int(a + b > 1), int(a - b > 1)]
        cells = ["" if (i + k) % 6 == 0 else str(v) for k, v in enumerate(labels)]
        lines.append(f"{1000 + i},{a:.3f},{b:.3f}," + ",".join(cells))
    csv = _csv(tmp_path / "labels.csv", lines)
    files = FilesSource(id_column="objid", label_column=None, images="none")
    data = DATA.model_copy(update={"labels": LABELS})
    return _params(tmp_path, csv, files, data=data, task="multilabel", impute=impute)


def test_multilabel_tabular_only_data_imputes_from_the_photometry(tmp_path):
    params = _tabular_multilabel(tmp_path, Impute(n_estimators=10, max_iter=2))
    for stage in ("query", "cutouts", "clean"):
        run_stage(stage, params)
    report = run_stage("impute", params)
    assert set(report["per_label"]) == set(LABELS)
    assert "no images" in report["image_features"]


def test_the_label_gallery_draws_without_images(tmp_path):
    truth = np.array([[1, 0, np.nan, 0], [0, 1, 1, 0], [1, 1, 0, np.nan]], dtype=float)
    pred = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [1, 1, 0, 1]], dtype=bool)
    empty = np.zeros((3, 0, 0, 3), dtype=np.uint8)  # tabular-only data packs empty-width images
    plots.label_gallery_png(empty, truth, pred, LABELS, tmp_path / "gallery.png")
    assert (tmp_path / "gallery.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("image_features", [True, False])
def test_multilabel_tabular_only_data_through_evaluate(tmp_path, image_features):
    impute = Impute(n_estimators=10, max_iter=2, image_features=image_features)
    params = _tabular_multilabel(tmp_path, impute)
    params = params.model_copy(
        update={"train": Train(model="tabular", epochs=1, monitor="val_auc")}
    )
    for stage in ("query", "cutouts", "clean", "impute", "balance", "train", "evaluate"):
        run_stage(stage, params)
    metrics = read_json(tmp_path / "out/reports/metrics.json")
    assert "roc_auc_macro" in metrics and (tmp_path / "out/reports/plots/gallery.png").is_file()


# ---------------------------------------------------------------- 12: which labels a mean covers


def test_the_macro_auc_records_the_labels_it_averages():
    y = np.array([[1, 0, 1, np.nan], [0, 1, 1, np.nan], [1, 0, 1, 0], [0, 1, 1, np.nan]])
    proba = np.full(y.shape, 0.5) + np.array([0.1, -0.1, 0.1, -0.1])[:, None]
    scores = multilabel_scores(y, proba, LABELS)
    assert scores["macro_labels"] == ["elliptical", "spiral"]
    assert scores["macro_left_out"] == {"edge_on": "one outcome only", "merger": "one outcome only"}


# ---------------------------------------------------------------- the reader's contract, generated
#
# Generated catalogs and image folders: every row is read exactly or refused with a message
# naming its line; nothing outside the folders is read or written; no exception but the
# project's own escapes. Few examples (fixed) in the quick tier, many in the slow one.

EXACT_IDS = st.integers(-(2**63), 2**63 - 1).map(str)
BAD_IDS = st.one_of(
    st.integers(2**63, 2**70).map(str),  # beyond 64 bits
    st.floats(1e17, 1e19).map(lambda f: f"{f:.5E}"),  # a spreadsheet's rounding
    st.just(""),
)
CELLS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["", " ", "NA", "nan", "null", "-", "n.a.", "abc"]),
    st.text(alphabet='ab ,"é', max_size=6).map(lambda t: '"' + t.replace('"', '""') + '"'),
)
ROWS = st.tuples(
    st.one_of(EXACT_IDS, EXACT_IDS, EXACT_IDS, BAD_IDS),
    CELLS,
    CELLS,
    st.sampled_from(["cat", "dog", ""]),
    st.integers(0, 30).map(lambda k: k == 0),  # now and then a trailing comma
)
TABLES = st.tuples(st.lists(ROWS, min_size=1, max_size=8), st.booleans(), st.booleans())


def _expected_number(cell: str) -> float:
    text = cell[1:-1].replace('""', '"') if cell.startswith('"') else cell
    text = text.strip()
    if text.lower() in {"", "na", "n/a", "nan", "null", "none", "-"}:
        return np.nan
    try:
        return float(text)
    except ValueError:
        return np.nan


def _check_reader(table: tuple[list[tuple], bool, bool]) -> None:
    from skysort.sources.files.catalog import load_catalog

    rows, bom, crlf = table
    lines = ["objid,f1,f2,kind"] + [
        f"{i},{a},{b},{label}{',' if extra else ''}" for i, a, b, label, extra in rows
    ]
    newline = "\r\n" if crlf else "\n"
    data = Data(features=("f1", "f2"), classes=("cat", "dog"))
    files = FilesSource(id_column="objid", label_column="kind", images="none")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.csv"
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + newline.join(lines).encode() + b"\n")
        try:
            catalog, _ = load_catalog(path, files, data)
        except FilesError as exc:
            message = str(exc)
            assert str(path) in message and len(message) < 2000
            assert (
                re.search(r"\b(line|lines) \d+", message) or "no row has a known label" in message
            )
            return
    ids = [r[0] for r in rows]
    exact = [re.fullmatch(r"-?\d+", i) and -(2**63) <= int(i) < 2**63 for i in ids]
    assert not any(r[4] for r in rows), "a ragged row was read"
    assert all(exact) and len(set(ids)) == len(ids), "a bad or repeated id was read"
    assert catalog["objid"].tolist() == [int(i) for i in ids]
    for k, column in ((1, "f1"), (2, "f2")):
        expected = np.array([_expected_number(r[k]) for r in rows])
        np.testing.assert_allclose(catalog[column].to_numpy(), expected, rtol=1e-12)
    assert catalog["class"].fillna("").tolist() == [r[3] for r in rows]


def _contract(**kw: object) -> settings:
    # no example database: nothing is written into the working tree
    return settings(
        deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow], **kw
    )


@_contract(max_examples=40, derandomize=True)
@given(table=TABLES)
def test_each_csv_row_is_read_exactly_or_refused_naming_its_line(table):
    _check_reader(table)


@pytest.mark.slow
@_contract(max_examples=500)
@given(table=TABLES)
def test_each_csv_row_is_read_exactly_or_refused_naming_its_line_at_length(table):
    _check_reader(table)


IMAGE_KINDS = ("png", "jpeg", "gif", "bmp", "tiff16", "link_in", "garbage", "missing", "folder",
               "link_out", "linkdir_out", "nul", "long")  # fmt: skip
MADE = {"png", "jpeg", "gif", "bmp", "tiff16", "link_in"}
FOLDERS = st.lists(st.tuples(st.sampled_from(IMAGE_KINDS), st.integers(1, 70)), min_size=1,
                   max_size=8)  # fmt: skip


def _snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: a link's target, a file's bytes, a folder as such."""
    out: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            out[key] = ("link", os.readlink(path))
        elif path.is_file():
            out[key] = path.read_bytes()
        else:
            out[key] = "folder"
    return out


def _check_images(entries: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images, outside, cutouts = root / "images", root / "outside", root / "cutouts"
        (outside / "d").mkdir(parents=True)
        images.mkdir()
        _picture(8).save(outside / "secret.png")
        _picture(8).save(outside / "d" / "x.png")
        names = []
        for i, (kind, size) in enumerate(entries):
            rng = np.random.default_rng(i)
            picture = _picture(size, seed=i)
            name = {"jpeg": f"{i}.jpg", "tiff16": f"{i}.tiff", "garbage": f"{i}.jpg",
                    "folder": f"f{i}", "linkdir_out": f"d{i}/x.png", "nul": f"bad\x00{i}.png",
                    "long": "x" * 300 + ".png"}.get(kind, f"{i}.{kind}")  # fmt: skip
            if kind in ("png", "gif", "bmp"):
                picture.save(images / name, format=kind.upper())
            elif kind == "jpeg":
                picture.save(images / name, format="JPEG")
            elif kind == "tiff16":
                grey = rng.integers(0, 65535, (size, size), dtype=np.uint16)
                Image.fromarray(grey).save(images / name, format="TIFF")
            elif kind == "link_in":
                picture.save(images / f"real{i}.png")
                name = f"link{i}.png"
                (images / name).symlink_to(images / f"real{i}.png")
            elif kind == "garbage":
                (images / name).write_bytes(rng.bytes(size))
            elif kind == "folder":
                (images / name).mkdir()
            elif kind == "link_out":
                (images / name).symlink_to(outside / "secret.png")
            elif kind == "linkdir_out":
                (images / f"d{i}").symlink_to(outside / "d", target_is_directory=True)
            names.append(name)
        before = (_snapshot(images), _snapshot(outside))
        catalog = pd.DataFrame({"objid": np.arange(1, len(names) + 1), IMAGE_SOURCE: names})
        manifest = copy_images(catalog, images, cutouts, size=64, resize="pad")
        assert (_snapshot(images), _snapshot(outside)) == before
        statuses = manifest["status"].tolist()
        for (kind, _), status, error in zip(entries, statuses, manifest["error"], strict=True):
            expected = "ok" if kind in MADE else "missing" if kind == "missing" else "error"
            assert status == expected, (kind, error)
            assert len(error) < 600
        made = {p.name for p in cutouts.iterdir()}
        assert made == {f"{i + 1}.jpg" for i, s in enumerate(statuses) if s == "ok"}
        assert {p.name for p in root.iterdir()} == {"images", "outside", "cutouts"}


@_contract(max_examples=15, derandomize=True)
@given(entries=FOLDERS)
def test_an_image_folder_is_read_inside_itself_one_row_at_a_time(entries):
    _check_images(entries)


@pytest.mark.slow
@_contract(max_examples=200)
@given(entries=FOLDERS)
def test_an_image_folder_is_read_inside_itself_one_row_at_a_time_at_length(entries):
    _check_images(entries)
