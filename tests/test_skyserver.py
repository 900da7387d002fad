"""The skyserver catalog source against a loopback SkyServer (tests/fakesky.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astroquery.sdss import conf as sdss_conf

from skysort.config import Data, Query, SkyServerSource
from skysort.data.schema import CATALOG_COLUMNS, check_catalog
from skysort.sources.skyserver.query import provenance_text, query_catalog
from skysort.sources.skyserver.sql_build import build_sql, sample_key
from skysort.sources.skyserver.sql_catalog import to_catalog
from skysort.sources.skyserver.sql_errors import SkyServerError
from skysort.sources.skyserver.sql_response import parse_response, server_error_message
from tests.fakesky import FIRST_OBJID, FakeSkyServer, closed_port_url, make_sky_catalog

DATA = Data()
WIDE = Query(n_objects=1000, r_min=10, r_max=30, random_sample=False)


def source(url: str, **kw) -> SkyServerSource:
    kw.setdefault("min_query_interval_s", 0.0)
    return SkyServerSource(base_url=url, timeout_s=kw.pop("timeout_s", 5.0), **kw)


def run(fake: FakeSkyServer, query: Query = WIDE, data: Data = DATA, **kw) -> pd.DataFrame:
    return query_catalog(query, data, source(fake.url, **kw))


# -- build_sql ------------------------------------------------------------------------


def test_sql_holds_the_query_as_validated_numbers_and_allow_listed_names():
    query = Query(ra_min=10.5, ra_max=20, dec_min=-5, dec_max=1e-05, r_min=14, r_max=21.5)
    sql = build_sql(query, Data(classes=("QSO", "STAR")), top=123)
    assert sql.startswith("SELECT TOP 123\n")
    assert "s.class IN ('QSO', 'STAR')" in sql
    assert "p.ra >= 10.5 AND p.ra <= 20.0" in sql
    assert "p.dec >= -5.0 AND p.dec <= 1e-05" in sql
    assert "p.r >= 14.0 AND p.r <= 21.5" in sql
    for column in ("p.objid", "p.fiberMag_g", "s.specobjid", "s.z AS redshift", "s.zWarning"):
        assert column in sql
    assert "JOIN SpecObj AS s ON s.bestObjID = p.objid" in sql
    assert "--" not in sql and ";" not in sql


def test_sql_pages_by_objid_or_by_the_sample_key():
    plain = build_sql(Query(random_sample=False), DATA, 10, after_objid=FIRST_OBJID)
    assert f"AND p.objid > {FIRST_OBJID}" in plain
    assert plain.endswith("ORDER BY p.objid")
    sampled = build_sql(Query(random_sample=True), DATA, 10, after_objid=FIRST_OBJID)
    key = sample_key(FIRST_OBJID)
    assert (
        f"% 1000003 > {key} OR (" in sampled and f"= {key} AND p.objid > {FIRST_OBJID})" in sampled
    )
    assert sampled.endswith("% 1000003, p.objid")
    assert "--" not in sampled


@pytest.mark.parametrize(
    ("query_kw", "data", "top", "after", "message"),
    [
        ({"ra_min": "0 OR 1=1"}, DATA, 10, None, "query.ra_min must be a number"),
        ({"dec_max": float("nan")}, DATA, 10, None, "finite"),
        ({"r_max": float("inf")}, DATA, 10, None, "finite"),
        ({}, Data.model_construct(classes=("GALAXY') OR 1=1 --",)), 10, None, "class"),
        ({}, Data.model_construct(classes=("galaxy", "STAR")), 10, None, "class"),
        ({}, DATA, "10; DROP TABLE PhotoObj", None, "top must be an integer"),
        ({}, DATA, 0, None, "top must be in"),
        ({}, DATA, 10, "1 OR 1=1", "after_objid must be an integer"),
        ({}, DATA, 10, 2**64, "after_objid must be in"),
        ({}, DATA, 10, 12.0, "after_objid must be an integer"),
    ],
)
def test_sql_injection_is_impossible(query_kw, data, top, after, message):
    query = Query.model_construct(**{**Query().model_dump(), **query_kw})
    with pytest.raises(ValueError, match=message):
        build_sql(query, data, top, after)


def test_negative_limits_never_make_a_comment():
    query = Query(ra_min=0, ra_max=1, dec_min=-90, dec_max=-89.5, r_min=0, r_max=1)
    assert "--" not in build_sql(query, DATA, 5, after_objid=1)


# -- parsing ---------------------------------------------------------------------------


def test_objids_stay_exact_64_bit_integers():
    body = (
        "#Table1\nobjid,ra,dec,u,g,r,i,z,fiberMag_g,specobjid,class,redshift,zWarning\n"
        f"{FIRST_OBJID},1.5,2.5,19,18,17,16.5,16,18.4,10342726436483174400,galaxy,0.1,0\n"
        f"{FIRST_OBJID + 1},1.5,2.5,19,18,-9999,16.5,16,18.4,2880184215590201344,STAR,0.0,0\n"
    )
    catalog = to_catalog(parse_response(200, body), DATA, "test")
    assert catalog["objid"].dtype == np.int64
    assert [int(x) for x in catalog["objid"]] == [1237648704577142822, 1237648704577142823]
    assert int(catalog["specobjid"].iloc[0]) == 10342726436483174400  # above 2**63
    assert list(catalog["class"]) == ["GALAXY", "STAR"]
    assert np.isnan(catalog["r"].iloc[1])  # the -9999 sentinel
    check_catalog(catalog)


HEADER = "#Table1\nobjid,ra,dec,u,g,r,i,z,fiberMag_g,specobjid,class,redshift,zWarning"
ROW = "1.5,2.5,19,18,17,16.5,16,18.4,10342726436483174400,GALAXY,0.1,0"


@pytest.mark.parametrize(
    "objid",
    [
        "1_237648704577142822",  # Python's int() reads digit separators
        "\uff11\uff12\uff13\uff17",  # full-width digits: int() reads those too
        "\u0661\u0662",  # Arabic-Indic digits
        "+1237648704577142822",
        "-1237648704577142822",
        "1237648704577142822.0",
        "0x1F",
    ],
)
def test_objids_are_plain_ascii_digits_only(objid):
    body = f"{HEADER}\n{objid},{ROW}\n"
    with pytest.raises(SkyServerError, match="'objid'"):
        to_catalog(parse_response(200, body), DATA, "test")


def test_specobjids_are_plain_ascii_digits_only():
    body = f"{HEADER}\n{FIRST_OBJID},{ROW.replace('10342726436483174400', '1_034')}\n"
    with pytest.raises(SkyServerError, match="'specobjid'"):
        to_catalog(parse_response(200, body), DATA, "test")


def test_integer_columns_of_a_users_sql_keep_exact_values_and_missing_entries():
    body = (
        f"{HEADER},bestobjid,nvote,big,gz_spiral,note\n"
        f"{FIRST_OBJID},{ROW},{FIRST_OBJID + 1},12,18446744073709551615,1,a\n"
        f"{FIRST_OBJID + 2},{ROW},,,null,,b\n"
        f"{FIRST_OBJID + 4},{ROW},{FIRST_OBJID + 3},-3,7,0,c\n"
    )
    catalog = to_catalog(parse_response(200, body), DATA, "test")
    assert str(catalog["bestobjid"].dtype) == "Int64"
    assert catalog["bestobjid"][0] == FIRST_OBJID + 1 and catalog["bestobjid"][2] == FIRST_OBJID + 3
    assert catalog["bestobjid"].isna().tolist() == [False, True, False]
    assert str(catalog["nvote"].dtype) == "Int64" and catalog["nvote"].tolist()[::2] == [12, -3]
    assert str(catalog["big"].dtype) == "UInt64" and catalog["big"][0] == 2**64 - 1
    assert catalog["gz_spiral"].dtype == np.float64  # Galaxy Zoo flags are float 0/1 with NaN
    assert catalog["note"].tolist() == ["a", "b", "c"]


def test_a_csv_result_is_data_even_when_it_mentions_error_message():
    body = f"{HEADER},note\n{FIRST_OBJID},{ROW},error_message: none\n"
    catalog = to_catalog(parse_response(200, body), DATA, "test")
    assert catalog["note"].tolist() == ["error_message: none"]
    with pytest.raises(SkyServerError, match="Timeout expired"):
        parse_response(200, "ERROR error_message: Timeout expired\n")
    with pytest.raises(SkyServerError, match="not a CSV result"):
        parse_response(200, "Server busy, please come back later.\n")


def test_credentials_in_the_base_url_stay_out_of_provenance_and_errors(caplog):
    caplog.set_level("DEBUG")
    with FakeSkyServer(catalog=make_sky_catalog(6)) as fake:
        secret = fake.url.replace("http://", "http://reader:s3cret@")
        result = query_catalog(WIDE, DATA, source(secret))
        fake.sql_status = 503
        with pytest.raises(SkyServerError) as http_error:
            query_catalog(WIDE, DATA, source(secret))
    down = closed_port_url().replace("http://", "http://reader:s3cret@")
    with pytest.raises(SkyServerError) as unreachable:
        query_catalog(WIDE, DATA, source(down))
    text = "\n".join(
        [
            *result["provenance"],
            provenance_text(SkyServerSource(base_url=down)),
            str(http_error.value),
            str(unreachable.value),
            str(unreachable.value.__cause__),
            caplog.text,
        ]
    )
    assert "s3cret" not in text and "reader" not in text
    assert "source.skyserver.base_url" in str(unreachable.value)


def test_server_error_text_is_extracted():
    body = '{"error_code": 500, "error_message": "Invalid column name \'foo\'."}'
    assert server_error_message(body) == "Invalid column name 'foo'."
    assert server_error_message("ERROR error_message: Timeout expired\n") == "Timeout expired"
    with pytest.raises(SkyServerError, match="Invalid column name 'foo'"):
        parse_response(200, body)


def test_empty_answer_is_an_empty_frame():
    assert parse_response(200, "#Table1\nobjid,ra\n").empty
    assert parse_response(200, "#Table1\n").empty


# -- query_catalog against the loopback server -------------------------------------------


def test_paging_returns_exact_objids_in_order(caplog):
    catalog = make_sky_catalog(30)
    with FakeSkyServer(catalog=catalog) as fake:
        query = WIDE.model_copy(update={"n_objects": 20})
        result = run(fake, query, max_rows_per_request=7)
        sqls = [r.query["cmd"] for r in fake.sql_requests()]
    expected = sorted(int(x) for x in catalog["objid"])[:20]
    assert [int(x) for x in result["objid"]] == expected
    assert len(sqls) == 3
    assert ["TOP 7" in sqls[0], "TOP 7" in sqls[1], "TOP 6" in sqls[2]] == [True] * 3
    assert f"p.objid > {expected[6]}" in sqls[1] and f"p.objid > {expected[13]}" in sqls[2]
    assert result["objid"].is_unique
    check_catalog(result)
    assert list(result.columns[: len(CATALOG_COLUMNS)]) == list(CATALOG_COLUMNS)


def test_random_sample_pages_by_the_sample_key():
    catalog = make_sky_catalog(30, seed=3)
    with FakeSkyServer(catalog=catalog) as fake:
        query = WIDE.model_copy(update={"n_objects": 12, "random_sample": True})
        result = run(fake, query, max_rows_per_request=5)
        assert len(fake.sql_requests()) == 3
    ids = sorted((int(x) for x in catalog["objid"]), key=lambda o: (sample_key(o), o))
    assert [int(x) for x in result["objid"]] == ids[:12]
    assert [int(x) for x in result["objid"]] != sorted(ids)[:12]  # not the objid order


def test_paging_stops_when_the_server_runs_out():
    with FakeSkyServer(catalog=make_sky_catalog(10)) as fake:
        result = run(fake, WIDE.model_copy(update={"n_objects": 50}), max_rows_per_request=4)
        assert len(fake.sql_requests()) == 3  # 4 + 4 + 2 (< 4: the last page)
    assert len(result) == 10


def test_filters_reach_the_server():
    catalog = make_sky_catalog(60, seed=1)
    query = Query(n_objects=100, ra_min=150, ra_max=200, r_min=16, r_max=20, random_sample=False)
    with FakeSkyServer(catalog=catalog) as fake:
        result = run(fake, query, Data(classes=("GALAXY", "QSO")))
    assert len(result) > 0
    assert result["ra"].between(150, 200).all() and result["r"].between(16, 20).all()
    assert set(result["class"].dropna()) <= {"GALAXY", "QSO"}
    wanted = catalog[
        catalog["ra"].between(150, 200)
        & catalog["r"].between(16, 20)
        & catalog["class"].isin(["GALAXY", "QSO"])
    ]
    assert len(result) == len(wanted)


def test_zwarning_makes_the_class_unknown_and_provenance_is_set():
    with FakeSkyServer(catalog=make_sky_catalog(9, zwarning_rows=(2, 5))) as fake:
        result = run(fake)
    unknown = result.loc[result["class"].isna(), "zWarning"]
    assert len(unknown) == 2 and (unknown != 0).all()
    assert result.loc[result["zWarning"] == 0, "class"].notna().all()
    assert result["class"].dtype == "string"
    assert result["provenance"].iloc[0].startswith(f"skyserver DR17 {fake.url} 20")


def test_lower_case_classes_are_upper_cased():
    catalog = make_sky_catalog(6)
    catalog["class"] = catalog["class"].str.lower()
    with FakeSkyServer(catalog=catalog) as fake:
        result = run(fake)
    assert set(result["class"]) == {"GALAXY", "STAR", "QSO"}


def test_the_base_url_setting_is_restored():
    before = sdss_conf.skyserver_baseurl
    with FakeSkyServer() as fake:
        run(fake)
        assert fake.sql_requests()[0].path == "/dr17/en/tools/search/x_results.aspx"
        assert fake.sql_requests()[0].query["format"] == "csv"
    assert sdss_conf.skyserver_baseurl == before


def test_data_release_picks_the_path():
    with FakeSkyServer() as fake:
        run(fake, data_release=16)
        assert fake.sql_requests()[0].path.startswith("/dr16/")


def test_sql_error_surfaces_the_servers_message(tmp_path):
    sql_file = tmp_path / "bad.sql"
    sql_file.write_text("SELECT TOP 5 p.objid, p.nosuchcolumn FROM PhotoObj AS p")
    with FakeSkyServer() as fake, pytest.raises(SkyServerError) as info:
        run(fake, Query(sql_file=sql_file))
    assert "Invalid column name 'nosuchcolumn'" in str(info.value)


def test_empty_result_says_which_settings_to_widen():
    with FakeSkyServer() as fake, pytest.raises(SkyServerError) as info:
        run(fake, Query(ra_min=0, ra_max=1, random_sample=False))
    message = str(info.value)
    assert "returned no rows" in message and "query.ra_min" in message
    assert "source.skyserver.data_release" in message


def test_unreachable_server_names_the_setting():
    url = closed_port_url()
    with pytest.raises(SkyServerError) as info:
        query_catalog(WIDE, DATA, source(url))
    assert url in str(info.value) and "source.skyserver.base_url" in str(info.value)


def test_timeout_names_the_setting():
    with FakeSkyServer(sql_delay_s=1.0) as fake, pytest.raises(SkyServerError) as info:
        run(fake, timeout_s=0.3)
    assert "source.skyserver.timeout_s" in str(info.value)


@pytest.mark.parametrize(
    ("status", "html", "expected"), [(503, False, "HTTP 503"), (None, True, "HTML page")]
)
def test_http_errors_and_html_pages_are_clear(status, html, expected):
    with (
        FakeSkyServer(sql_status=status, sql_html=html) as fake,
        pytest.raises(SkyServerError) as info,
    ):
        run(fake)
    assert expected in str(info.value)


def test_sql_file_runs_as_written(tmp_path):
    sql_file = tmp_path / "stars.sql"
    sql_file.write_text(
        "-- a comment line, removed before sending\n"
        "SELECT TOP 4 p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z, p.fiberMag_g,\n"
        "  s.class, s.z AS redshift, s.zWarning\n"
        "FROM PhotoObj AS p JOIN SpecObj AS s ON s.bestObjID = p.objid\n"
        "WHERE s.class IN ('STAR') ORDER BY p.objid\n"
    )
    catalog = make_sky_catalog(30)
    with FakeSkyServer(catalog=catalog) as fake:
        result = run(fake, Query(sql_file=sql_file))
        sent = fake.sql_requests()[0].query["cmd"]
    assert "--" not in sent and "comment" not in sent
    stars = sorted(int(x) for x in catalog.loc[catalog["class"] == "STAR", "objid"])[:4]
    assert [int(x) for x in result["objid"]] == stars
    assert "sql_file=stars.sql" in result["provenance"].iloc[0]


def test_sql_file_missing_columns_are_named(tmp_path):
    sql_file = tmp_path / "thin.sql"
    sql_file.write_text("SELECT TOP 3 p.objid, p.ra, p.dec FROM PhotoObj AS p")
    with FakeSkyServer() as fake, pytest.raises(SkyServerError) as info:
        run(fake, Query(sql_file=sql_file))
    for column in ("'u'", "'fiberMag_g'", "'redshift'", "'class'", "'zWarning'"):
        assert column in str(info.value)
