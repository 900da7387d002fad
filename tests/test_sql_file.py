"""``query.sql_file``: one read-only SELECT from the project's queries/ folder, tracked by DVC."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from skysort.config import QUERIES_DIR, ConfigError, load_params, validate_params
from skysort.sources.skyserver.sqlcheck import UnsafeSQLError, check_select
from tests.project import dvc, make_project

ROOT = Path(__file__).resolve().parents[1]
SELECT = (
    "-- stars only\n"
    "SELECT TOP 10 p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z, p.fiberMag_g,\n"
    "  s.class, s.z AS redshift, s.zWarning\n"
    "FROM PhotoObj AS p JOIN SpecObj AS s ON s.bestObjID = p.objid\n"
    "WHERE s.class = 'STAR';\n"
)


@pytest.mark.parametrize(
    "sql",
    [
        SELECT,
        "select top 5 objid from PhotoObj -- DROP TABLE x; (a comment: never sent)",
        "WITH b AS (SELECT objid FROM PhotoObj WHERE r < 17) SELECT objid FROM b",
        "SELECT objid FROM PhotoObj UNION ALL SELECT objid FROM PhotoObjAll",
        "SELECT objid FROM PhotoObj WHERE objid IN (SELECT bestObjID FROM SpecObj)",
        "SELECT 'drop; exec; into' AS note, [set] FROM t /* ; DELETE */",
    ],
)
def test_a_read_only_select_passes(sql):
    check_select(sql)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT 1; DROP TABLE PhotoObj", "more than one statement"),
        ("SELECT 1;\nSELECT 2;", "more than one statement"),
        ("SELECT 1 SELECT 2", "second top-level SELECT"),
        ("SELECT objid INTO mydb.stars FROM PhotoObj", "uses INTO"),
        ("UPDATE PhotoObj SET r = 0", "must start with SELECT"),
        ("DELETE FROM PhotoObj", "must start with SELECT"),
        ("SELECT 1 DROP TABLE PhotoObj", "uses DROP"),
        ("SELECT 1 EXEC xp_cmdshell 'id'", "uses EXEC"),
        ("SELECT * FROM OPENROWSET('x', 'y', 'z')", "uses OPENROWSET"),
        ("SELECT 1 WAITFOR DELAY '0:0:9'", "uses WAITFOR"),
        ("root:x:0:0:root:/root:/bin/bash", "must start with SELECT"),
        ("", "no SQL statement"),
        ("-- only a comment", "no SQL statement"),
        ("SELECT 'unterminated", "never closed"),
        ("SELECT 1 /* open comment", "never closed"),
        # astroquery cuts each line at --, even inside a string: what is sent is checked
        ("SELECT '--' ; DROP TABLE x", "never closed"),
    ],
)
def test_anything_else_is_refused_with_the_reason(sql, reason):
    with pytest.raises(UnsafeSQLError, match=reason):
        check_select(sql)


def _project(tmp_path: Path) -> Path:
    (tmp_path / QUERIES_DIR).mkdir(parents=True)
    (tmp_path / QUERIES_DIR / "stars.sql").write_text(SELECT)
    return tmp_path


def _with_sql_file(root: Path, sql_file: str, kind: str = "skyserver"):
    raw = {"source": {"kind": kind}, "query": {"sql_file": sql_file}}
    return validate_params(raw, origin="params.yaml", root=root)


def test_a_select_in_queries_is_accepted(tmp_path):
    root = _project(tmp_path)
    assert _with_sql_file(root, "queries/stars.sql").query.sql_file == Path("queries/stars.sql")
    assert _with_sql_file(root, str(root / "queries/stars.sql")).query.sql_file is not None


def test_the_example_in_the_repo_is_accepted():
    params = validate_params(
        {"source": {"kind": "skyserver"}, "query": {"sql_file": "queries/example.sql"}}, root=ROOT
    )
    assert params.query.sql_file == Path("queries/example.sql")


@pytest.mark.parametrize(
    ("sql_file", "reason"),
    [
        ("queries/../queries/stars.sql", "'..' is not allowed"),
        ("../outside.sql", "'..' is not allowed"),
        ("/etc/passwd", "outside the project's queries/ folder"),
        ("stars.sql", "outside the project's queries/ folder"),
        ("queries/link.sql", "links outside the project's queries/ folder"),
        ("queries/missing.sql", "no such file"),
        ("queries/latin1.sql", "not UTF-8"),
        ("queries/chained.sql", "more than one statement"),
        ("queries/write.sql", "uses INTO"),
    ],
)
def test_a_file_outside_queries_or_not_one_select_is_refused_at_load_time(
    tmp_path, sql_file, reason
):
    root = _project(tmp_path / "proj")
    (tmp_path / "outside.sql").write_text(SELECT)
    os.symlink(tmp_path / "outside.sql", root / "queries/link.sql")
    (root / "queries/latin1.sql").write_bytes("SELECT 'é' AS x".encode("latin-1"))
    (root / "queries/chained.sql").write_text("SELECT 1; DROP TABLE PhotoObj")
    (root / "queries/write.sql").write_text("SELECT objid INTO mydb.x FROM PhotoObj")
    with pytest.raises(ConfigError) as info:
        _with_sql_file(root, sql_file)
    assert "query.sql_file:" in str(info.value) and reason in str(info.value)


def test_a_queries_folder_linking_out_of_the_project_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/stars.sql").write_text(SELECT)
    (tmp_path / "proj").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "proj/queries")
    with pytest.raises(ConfigError, match="queries/ folder links outside the project"):
        _with_sql_file(tmp_path / "proj", "queries/stars.sql")


def test_sql_file_is_only_set_with_the_skyserver_source(tmp_path):
    root = _project(tmp_path)
    with pytest.raises(ConfigError, match=r"query\.sql_file: is used only with source\.kind: "):
        _with_sql_file(root, "queries/stars.sql", kind="synthetic")


def test_editing_the_sql_file_makes_dvc_rerun_the_query(tmp_path, monkeypatch):
    overrides = {"source": {"kind": "skyserver"}, "query": {"sql_file": "queries/stars.sql"}}
    root = make_project(tmp_path / "proj", overrides)
    (root / "queries/stars.sql").write_text(SELECT)
    monkeypatch.chdir(root)
    params = load_params("params.yaml")  # what `skysort stage query` would accept
    out = root / params.paths.catalog
    out.parent.mkdir(parents=True)
    out.write_bytes(b"a catalog the query stage wrote")
    dvc("commit", "--force", "query", cwd=root)
    assert "up to date" in dvc("status", "query", cwd=root).stdout

    (root / "queries/stars.sql").write_text(SELECT.replace("'STAR'", "'QSO'"))

    status = yaml.safe_load(dvc("status", "--json", "query", cwd=root).stdout)
    assert status == {"query": [{"changed deps": {"queries": "modified"}}]}
