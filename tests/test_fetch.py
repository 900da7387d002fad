"""Cutout fetching against a loopback ImgCutout (tests/fakesky.py) with injected faults."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skysort.config import Clean, Cutouts, Data, SkyServerSource, load_params
from skysort.data.images import BadImage, cutout_path, decode_jpeg, encode_jpeg, read_cutout
from skysort.data.schema import MANIFEST_COLUMNS, check_manifest
from skysort.pipeline.registry import run_stage
from skysort.sources.skyserver.cutout_request import cutout_url
from skysort.sources.skyserver.cutout_retry import retry_after_seconds
from skysort.sources.skyserver.cutouts import fetch_cutouts
from tests.factories import bomb_jpeg
from tests.fakesky import FakeSkyServer, closed_port_url, make_sky_catalog, render_cutout

DATA = Data(image_size=64)
FAST = Cutouts(concurrency=4, retries=3, backoff_s=0.01, timeout_s=0.5)
MIN_STD = Clean().min_pixel_std
ROOT = Path(__file__).resolve().parents[1]


def fetch(fake, catalog, folder, cutouts=FAST, data=DATA, min_pixel_std=MIN_STD, **kw):
    source = SkyServerSource(base_url=fake.url)
    return fetch_cutouts(
        catalog,
        folder,
        data=data,
        cutouts=cutouts,
        skyserver=source,
        min_pixel_std=min_pixel_std,
        **kw,
    )


def assert_disk_is_clean(folder: Path, manifest: pd.DataFrame) -> None:
    """No temp files; one decodable file per ok row and none for the others."""
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.startswith(".")], names
    ok = manifest.loc[manifest["status"] == "ok"]
    assert names == sorted(f"{int(o)}.jpg" for o in ok["objid"])
    for objid, digest in zip(ok["objid"], ok["sha256"]):
        data = cutout_path(folder, objid).read_bytes()
        decode_jpeg(data, min_pixel_std=MIN_STD)
        assert hashlib.sha256(data).hexdigest() == digest


def test_all_cutouts_arrive_in_catalog_order(tmp_path):
    catalog = make_sky_catalog(12).sample(frac=1, random_state=1).reset_index(drop=True)
    calls = []
    with FakeSkyServer(catalog=catalog, cutout_delay_s=0.05) as fake:
        manifest = fetch(fake, catalog, tmp_path, progress=lambda d, t: calls.append((d, t)))
        req = fake.cutout_requests()
    check_manifest(manifest)
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert [int(x) for x in manifest["objid"]] == [int(x) for x in catalog["objid"]]
    assert (manifest["status"] == "ok").all() and (manifest["attempts"] == 1).all()
    assert calls[-1] == (12, 12) and calls[0] == (0, 12)
    assert 2 <= fake.max_in_flight <= FAST.concurrency
    first = req[0]
    assert first.path == "/dr17/SkyServerWS/ImgCutout/getjpeg"
    assert first.query["width"] == first.query["height"] == "64"
    assert first.query["scale"] == repr(FAST.scale) and first.query["opt"] == ""
    image = read_cutout(cutout_path(tmp_path, catalog["objid"][0]), None, MIN_STD)
    assert image.shape == (64, 64, 3)
    assert_disk_is_clean(tmp_path, manifest)


@pytest.mark.parametrize(
    ("faults", "status", "attempts", "reason"),
    [
        (["500", "500"], "ok", 3, ""),
        (["503"], "ok", 2, ""),
        (["reset"], "ok", 2, ""),
        (["slow"], "ok", 2, ""),
        (["html200"], "ok", 2, ""),
        (["truncated"], "ok", 2, ""),
        (["short_read"], "ok", 2, ""),
        (["404"], "missing", 1, "not_found"),
        (["400"], "missing", 1, "http_400"),
        (["blank"], "error", 1, "blank_image"),
        (["500"] * 9, "error", 4, "server_error: HTTP 500 (gave up after 4 attempt(s))"),
        (["reset"] * 9, "error", 4, "connection_error"),
        (["slow"] * 9, "error", 4, "timeout: no answer within cutouts.timeout_s=0.5"),
        (["html200"] * 9, "error", 4, "not_jpeg"),
        (["truncated"] * 9, "error", 4, "unreadable_image"),
    ],
)
def test_every_fault_recovers_or_ends_with_its_final_status(
    tmp_path, faults, status, attempts, reason
):
    catalog = make_sky_catalog(3)
    target = int(catalog["objid"][1])
    with FakeSkyServer(catalog=catalog, slow_s=0.8, retry_after="0") as fake:
        fake.object_faults[target] = list(faults)
        manifest = fetch(fake, catalog, tmp_path)
        assert fake.fetched_objids().count(target) == attempts
    row = manifest.set_index("objid").loc[target]
    assert (row["status"], row["attempts"]) == (status, attempts)
    assert reason in row["error"] if reason else row["error"] == ""
    others = manifest[manifest["objid"] != target]
    assert (others["status"] == "ok").all() and (others["attempts"] == 1).all()
    assert_disk_is_clean(tmp_path, manifest)


def test_retry_after_is_honoured_and_everyone_slows_down(tmp_path):
    catalog = make_sky_catalog(8)
    target = int(catalog["objid"][0])
    cutouts = FAST.model_copy(update={"concurrency": 1})
    with FakeSkyServer(catalog=catalog, retry_after="1") as fake:
        fake.object_faults[target] = ["429"]
        manifest = fetch(fake, catalog, tmp_path, cutouts=cutouts)
        requests = fake.cutout_requests()
    assert requests[0].fault == "429"
    gap = requests[1].started - requests[0].started
    assert gap >= 0.9  # Retry-After: 1, although backoff_s is 0.01
    assert (manifest["status"] == "ok").all()
    assert manifest.set_index("objid").loc[target, "attempts"] == 2


def test_a_slow_down_pauses_the_other_workers(tmp_path):
    catalog = make_sky_catalog(16)
    with FakeSkyServer(catalog=catalog, retry_after="1", cutout_delay_s=0.02) as fake:
        fake.request_faults[3] = "429"
        manifest = fetch(fake, catalog, tmp_path)
        requests = fake.cutout_requests()
    limited = next(r for r in requests if r.fault == "429")
    during = [r for r in requests if limited.started + 0.2 < r.started < limited.started + 0.9]
    assert during == []
    assert (manifest["status"] == "ok").all()


def test_retry_after_is_capped(tmp_path):
    catalog = make_sky_catalog(2)
    capped = FAST.model_copy(update={"max_retry_after_s": 0.1})
    with FakeSkyServer(catalog=catalog, retry_after="3600") as fake:
        fake.request_faults[1] = "429"
        started = time.monotonic()
        manifest = fetch(fake, catalog, tmp_path, cutouts=capped)
    assert time.monotonic() - started < 5
    assert (manifest["status"] == "ok").all()


def faint_cutout(size: int) -> bytes:
    """A valid but low-contrast image: a gentle gradient, pixel standard deviation about 5.8."""
    ramp = np.linspace(20, 40, size)[None, :, None]
    return encode_jpeg(np.broadcast_to(ramp, (size, size, 3)).round().astype(np.uint8))


@pytest.mark.parametrize(("min_pixel_std", "status"), [(2.0, "ok"), (10.0, "error")])
def test_the_cutouts_stage_judges_blank_images_by_clean_min_pixel_std(
    tmp_path, min_pixel_std, status
):
    catalog = make_sky_catalog(3)
    faint = int(catalog["objid"][1])
    position = (float(catalog["ra"][1]), float(catalog["dec"][1]))
    with FakeSkyServer(catalog=catalog, images={position: faint_cutout(64)}) as fake:
        params = load_params(
            ROOT / "params.yaml",
            [
                "source.kind=skyserver",
                f"source.skyserver.base_url={fake.url}",
                "data.image_size=64",
                "cutouts.backoff_s=0.01",
                f"clean.min_pixel_std={min_pixel_std}",
            ],
        )
        paths = params.paths.under(tmp_path)
        paths.catalog.parent.mkdir(parents=True)
        catalog.to_parquet(paths.catalog)
        run_stage("cutouts", params.model_copy(update={"paths": paths}))
        assert fake.fetched_objids().count(faint) == 1  # blank is final: never retried
    manifest = pd.read_parquet(paths.manifest).set_index("objid")
    assert manifest.loc[faint, "status"] == status
    if status == "error":
        reason = manifest.loc[faint, "error"]
        assert reason.startswith("blank_image: pixel standard deviation 5.") and "< 10.0" in reason
        assert not cutout_path(paths.cutouts_dir, faint).exists()
    assert (manifest.drop(index=faint)["status"] == "ok").all()


def test_retry_after_header_forms():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_positions_and_params_outside_the_service_limits_are_not_requested(tmp_path):
    catalog = make_sky_catalog(4)
    catalog.loc[1, "ra"] = 400.0
    catalog.loc[2, "dec"] = -95.0
    with FakeSkyServer(catalog=catalog) as fake:
        manifest = fetch(fake, catalog, tmp_path)
        assert len(fake.cutout_requests()) == 2
        assert list(manifest["status"]) == ["ok", "error", "error", "ok"]
        assert "ra 400.0 outside" in manifest["error"][1]
        assert "dec -95.0 outside" in manifest["error"][2]
        assert (manifest.loc[1:2, "attempts"] == 0).all()

        small = Data.model_construct(image_size=32, features=DATA.features, classes=DATA.classes)
        manifest = fetch(fake, catalog, tmp_path / "small", data=small)
        assert (manifest["status"] == "error").all()
        assert manifest["error"].str.contains("data.image_size 32").all()
        wide = Cutouts.model_construct(**{**FAST.model_dump(), "scale": 100.0})
        manifest = fetch(fake, catalog, tmp_path / "wide", cutouts=wide)
        assert manifest["error"].str.contains("cutouts.scale 100.0").all()
        assert len(fake.cutout_requests()) == 2  # nothing more was requested


def test_resume_after_an_interrupt_fetches_only_what_is_missing(tmp_path):
    catalog = make_sky_catalog(20)

    def interrupt(done: int, total: int) -> None:
        if done >= 6:
            raise KeyboardInterrupt

    cutouts = FAST.model_copy(update={"concurrency": 2})
    with FakeSkyServer(catalog=catalog, cutout_delay_s=0.01) as fake:
        with pytest.raises(KeyboardInterrupt):
            fetch(fake, catalog, tmp_path, cutouts=cutouts, progress=interrupt)
        on_disk = {int(p.stem) for p in tmp_path.glob("*.jpg")}
        assert 6 <= len(on_disk) < 20
        first_run = len(fake.cutout_requests())
        assert first_run < 20  # the queue was cancelled, not drained

        # A stale temp file from a killed write, and a half-written file from elsewhere.
        (tmp_path / f".{catalog['objid'][19]}.jpg.abc123.tmp").write_bytes(b"\xff\xd8\xff half")
        broken = next(iter(on_disk))
        path = cutout_path(tmp_path, broken)
        path.write_bytes(path.read_bytes()[:300])

        manifest = fetch(fake, catalog, tmp_path, cutouts=cutouts)
        again = fake.fetched_objids()[first_run:]
    everything = {int(x) for x in catalog["objid"]}
    assert sorted(again) == sorted((everything - on_disk) | {broken})
    resumed = manifest[manifest["objid"].isin(on_disk - {broken})]
    assert (resumed["attempts"] == 0).all() and (resumed["status"] == "ok").all()
    assert (manifest["status"] == "ok").all()
    assert_disk_is_clean(tmp_path, manifest)


_CHILD = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from pathlib import Path
    from skysort.config import Clean, Cutouts, Data, SkyServerSource
    from skysort.sources.skyserver.cutouts import fetch_cutouts
    catalog = pd.read_parquet(sys.argv[2])
    fetch_cutouts(catalog, Path(sys.argv[3]), data=Data(image_size=64),
                  cutouts=Cutouts(concurrency=3, retries=1, backoff_s=0.01, timeout_s=5),
                  skyserver=SkyServerSource(base_url=sys.argv[1]),
                  min_pixel_std=Clean().min_pixel_std)
    """
)


def test_a_run_killed_with_sigkill_leaves_only_complete_files(tmp_path):
    catalog = make_sky_catalog(60)
    catalog_path = tmp_path / "catalog.parquet"
    catalog.to_parquet(catalog_path)
    folder = tmp_path / "cutouts"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    with FakeSkyServer(catalog=catalog, cutout_delay_s=0.03) as fake:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, fake.url, str(catalog_path), str(folder)], env=env
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list(folder.glob("*.jpg"))) < 8:
            assert child.poll() is None, "the fetch ended before it could be killed"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        on_disk = {int(p.stem) for p in folder.glob("*.jpg")}
        assert 8 <= len(on_disk) < 60
        for objid in on_disk:  # every file that exists is whole
            decode_jpeg(cutout_path(folder, objid).read_bytes(), min_pixel_std=MIN_STD)
        first_run = len(fake.cutout_requests())

        manifest = fetch(fake, catalog, folder)
        again = fake.fetched_objids()[first_run:]
    assert sorted(again) == sorted({int(x) for x in catalog["objid"]} - on_disk)
    assert (manifest["status"] == "ok").all()
    assert_disk_is_clean(folder, manifest)


def test_the_url_follows_base_url_and_release():
    source = SkyServerSource(base_url="http://127.0.0.1:9/", data_release=16)
    assert cutout_url(source) == "http://127.0.0.1:9/dr16/SkyServerWS/ImgCutout/getjpeg"


# -- request fingerprints --------------------------------------------------------------


@pytest.mark.parametrize("change", ["scale", "opt", "data_release", "server", "unmarked_files"])
def test_files_made_under_another_request_are_fetched_again(tmp_path, change):
    catalog = make_sky_catalog(4)
    with FakeSkyServer(catalog=catalog) as fake, FakeSkyServer(catalog=catalog) as mirror:
        first = fetch(fake, catalog, tmp_path)
        resumed = fetch(fake, catalog, tmp_path)  # the same request: nothing is fetched again
        assert len(fake.cutout_requests()) == 4 and (resumed["attempts"] == 0).all()
        assert resumed["fingerprint"].tolist() == first["fingerprint"].tolist()

        cutouts, source, server = FAST, SkyServerSource(base_url=fake.url), fake
        if change == "scale":
            cutouts = FAST.model_copy(update={"scale": 0.2})
        elif change == "opt":
            cutouts = FAST.model_copy(update={"opt": "G"})
        elif change == "data_release":
            source = SkyServerSource(base_url=fake.url, data_release=16)
        elif change == "server":
            source, server = SkyServerSource(base_url=mirror.url), mirror
        else:  # valid files of the right size, but from before fingerprints: unknown origin
            for ra, dec, objid in zip(catalog["ra"], catalog["dec"], catalog["objid"]):
                cutout_path(tmp_path, objid).write_bytes(render_cutout(ra, dec, 64))
        changed = fetch_cutouts(
            catalog, tmp_path, data=DATA, cutouts=cutouts, skyserver=source, min_pixel_std=MIN_STD
        )
        assert sorted(server.fetched_objids()[-4:]) == sorted(int(x) for x in catalog["objid"])
        again = fetch_cutouts(
            catalog, tmp_path, data=DATA, cutouts=cutouts, skyserver=source, min_pixel_std=MIN_STD
        )
        assert len(fake.cutout_requests()) + len(mirror.cutout_requests()) == 8
    assert (changed["status"] == "ok").all() and (changed["attempts"] == 1).all()
    assert (again["attempts"] == 0).all()  # resume under the new request refetches nothing
    if change != "unmarked_files":
        assert changed["fingerprint"].nunique() == 1
        assert changed["fingerprint"][0] != first["fingerprint"][0]
    assert_disk_is_clean(tmp_path, changed)


def test_the_fingerprint_names_the_request_and_each_file_carries_it(tmp_path):
    catalog = make_sky_catalog(2)
    with FakeSkyServer(catalog=catalog) as fake:
        source = SkyServerSource(base_url=fake.url + "/", data_release=16)
        cutouts = FAST.model_copy(update={"opt": "GL", "scale": 0.2})
        manifest = fetch_cutouts(
            catalog, tmp_path, data=DATA, cutouts=cutouts, skyserver=source, min_pixel_std=MIN_STD
        )
    host = fake.url.removeprefix("http://")
    expected = f"skyserver server={host} dr=16 size=64 scale=0.2 opt=GL"
    assert manifest["fingerprint"].tolist() == [expected, expected]
    from skysort.data.images import read_fingerprint

    for objid in catalog["objid"]:
        assert read_fingerprint(cutout_path(tmp_path, objid).read_bytes()) == expected


def test_credentials_in_the_base_url_stay_out_of_the_manifest_logs_and_errors(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    catalog = make_sky_catalog(3)
    once = FAST.model_copy(update={"retries": 0})
    with FakeSkyServer(catalog=catalog) as fake:
        secret = fake.url.replace("http://", "http://reader:s3cret@")
        manifest = fetch_cutouts(
            catalog,
            tmp_path,
            data=DATA,
            cutouts=FAST,
            skyserver=SkyServerSource(base_url=secret),
            min_pixel_std=MIN_STD,
        )
        plain = fetch(fake, catalog, tmp_path)  # the same server without credentials
    down = closed_port_url().replace("http://", "http://reader:s3cret@")
    failed = fetch_cutouts(
        catalog,
        tmp_path / "down",
        data=DATA,
        cutouts=once,
        skyserver=SkyServerSource(base_url=down),
        min_pixel_std=MIN_STD,
    )
    text = manifest.to_csv() + failed.to_csv() + caplog.text
    assert "s3cret" not in text and "reader" not in text
    assert (manifest["status"] == "ok").all() and (failed["status"] == "error").all()
    assert failed["error"].str.startswith("connection_error").all()
    assert (plain["attempts"] == 0).all()  # credentials are not part of the request's identity
    assert manifest["fingerprint"].str.contains("server=127.0.0.1:").all()


# -- hostile and malformed answers -------------------------------------------------------


def test_a_decompression_bomb_is_a_bad_image_not_a_crash(tmp_path):
    with pytest.raises(BadImage) as info:
        decode_jpeg(bomb_jpeg(), min_pixel_std=MIN_STD)
    assert info.value.reason == "oversized_image"
    assert "60000x60000" in str(info.value)
    path = tmp_path / "bomb.jpg"
    path.write_bytes(bomb_jpeg())
    with pytest.raises(BadImage, match="oversized_image"):
        read_cutout(path, 64, MIN_STD)


def test_a_decompression_bomb_is_one_objects_error_in_fetch_and_resume(tmp_path):
    catalog = make_sky_catalog(3)
    bomb, on_disk = int(catalog["objid"][1]), int(catalog["objid"][2])
    cutout_path(tmp_path, on_disk).write_bytes(bomb_jpeg())  # what resume finds there
    position = (float(catalog["ra"][1]), float(catalog["dec"][1]))
    with FakeSkyServer(catalog=catalog, images={position: bomb_jpeg()}) as fake:
        manifest = fetch(fake, catalog, tmp_path)
        assert fake.fetched_objids().count(bomb) == 1  # final: the same bytes would come back
        assert fake.fetched_objids().count(on_disk) == 1
    rows = manifest.set_index("objid")
    assert rows.loc[bomb, "status"] == "error"
    assert rows.loc[bomb, "error"].startswith("oversized_image: header claims 60000x60000 pixels")
    assert rows.loc[on_disk, "status"] == "ok" and rows.loc[on_disk, "attempts"] == 1
    assert_disk_is_clean(tmp_path, manifest)


def test_an_oversized_body_is_cut_off_and_final(tmp_path):
    catalog = make_sky_catalog(2)
    target = int(catalog["objid"][0])
    with FakeSkyServer(catalog=catalog) as fake:
        fake.object_faults[target] = ["huge"] * 5
        manifest = fetch(fake, catalog, tmp_path)
        assert fake.fetched_objids().count(target) == 1
    row = manifest.set_index("objid").loc[target]
    assert row["status"] == "error" and row["error"].startswith("oversized_image: response body")
    assert_disk_is_clean(tmp_path, manifest)


def test_a_body_that_drips_past_the_deadline_is_cut_off_and_retried(tmp_path):
    catalog = make_sky_catalog(2)
    target = int(catalog["objid"][0])
    # Every piece comes well within timeout_s (0.5 s); the whole body takes over a second.
    cutouts = FAST.model_copy(update={"deadline_s": 0.4, "retries": 1})
    with FakeSkyServer(catalog=catalog, drip_s=0.05) as fake:
        fake.object_faults[target] = ["drip", "drip"]
        started = time.monotonic()
        manifest = fetch(fake, catalog, tmp_path, cutouts=cutouts)
        elapsed = time.monotonic() - started
    row = manifest.set_index("objid").loc[target]
    assert (row["status"], row["attempts"]) == ("error", 2)
    assert row["error"].startswith("timeout: body not complete within cutouts.deadline_s=0.4 s")
    assert elapsed < 2.0
    assert_disk_is_clean(tmp_path, manifest)


def test_a_fresh_download_of_the_wrong_size_is_an_error_not_ok(tmp_path):
    catalog = make_sky_catalog(3)
    small = int(catalog["objid"][1])
    ra, dec = float(catalog["ra"][1]), float(catalog["dec"][1])
    with FakeSkyServer(catalog=catalog, images={(ra, dec): render_cutout(ra, dec, 32)}) as fake:
        manifest = fetch(fake, catalog, tmp_path)
        assert fake.fetched_objids().count(small) == 1  # final: the server answers the same
    row = manifest.set_index("objid").loc[small]
    assert row["status"] == "error"
    assert row["error"] == "wrong_size: 32x32 pixels, 64x64 requested"
    assert not cutout_path(tmp_path, small).exists()
    assert_disk_is_clean(tmp_path, manifest)


@pytest.mark.parametrize(("retry_after", "cap"), [("0", 120.0), ("30", 0.0), (None, 0.0)])
def test_backoff_never_drops_below_the_configured_floor(tmp_path, retry_after, cap):
    catalog = make_sky_catalog(1)
    target = int(catalog["objid"][0])
    cutouts = FAST.model_copy(
        update={"concurrency": 1, "retries": 3, "backoff_s": 0.05, "max_retry_after_s": cap}
    )
    with FakeSkyServer(catalog=catalog, retry_after=retry_after) as fake:
        fake.object_faults[target] = ["429"] * 3
        manifest = fetch(fake, catalog, tmp_path, cutouts=cutouts)
        starts = [r.started for r in fake.cutout_requests()]
    assert (manifest.loc[0, "status"], manifest.loc[0, "attempts"]) == ("ok", 4)
    gaps = np.diff(starts)
    assert gaps.min() >= 0.05, gaps


def _jpeg_scan_start(data: bytes) -> int:
    return data.index(b"\xff\xda")  # start of scan: the pixels follow


def test_a_resumed_file_stamped_as_checked_is_trusted_without_decoding(tmp_path, monkeypatch):
    from skysort.data.images import CHECK_TAG, has_check_stamp
    from skysort.sources.skyserver import cutout_manifest

    catalog = make_sky_catalog(6)
    with FakeSkyServer(catalog=catalog) as fake:
        first = fetch(fake, catalog, tmp_path)
        paths = [cutout_path(tmp_path, o) for o in catalog["objid"]]
        assert all(CHECK_TAG in p.read_bytes() for p in paths)
        assert all(has_check_stamp(p.read_bytes(), MIN_STD) for p in paths)
        # One file damaged inside its pixels (still a decodable JPEG): the stamp no longer
        # matches, so that file, and only it, is decoded again.
        damaged = paths[2].read_bytes()
        at = _jpeg_scan_start(damaged) + 40
        paths[2].write_bytes(damaged[:at] + bytes([damaged[at] ^ 0x01]) + damaged[at + 1 :])
        decoded = []
        real_decode = cutout_manifest.decode_jpeg

        def counting_decode(data, **kw):
            decoded.append(data)
            return real_decode(data, **kw)

        monkeypatch.setattr(cutout_manifest, "decode_jpeg", counting_decode)
        again = fetch(fake, catalog, tmp_path)
        assert len(fake.cutout_requests()) == 6  # nothing fetched again
    assert len(decoded) == 1 and not has_check_stamp(decoded[0], MIN_STD)
    assert (again["attempts"] == 0).all() and (again["status"] == "ok").all()
    assert again["sha256"].tolist()[:2] == first["sha256"].tolist()[:2]


def test_a_stamp_holds_only_for_its_blank_limit_and_its_exact_bytes():
    from skysort.data.images import has_check_stamp, read_fingerprint, with_check_stamp
    from skysort.sources.skyserver.cutout_attempts import stored_cutout

    body = render_cutout(150.0, 2.0, 64)
    stored = stored_cutout(body, "skyserver server=x dr=17", 2.0)
    assert read_fingerprint(stored) == "skyserver server=x dr=17"
    assert has_check_stamp(stored, 2.0)
    assert not has_check_stamp(stored, 2.5)  # checked under another blank limit
    assert not has_check_stamp(body, 2.0)  # never stamped
    assert not has_check_stamp(stored[:-10] + b"\x00" * 8 + stored[-2:], 2.0)
    assert not has_check_stamp(with_check_stamp(b"<html>", 2.0), 2.0)  # not a JPEG: no stamp
    np.testing.assert_array_equal(  # the stamp is a comment: the pixels are the same
        decode_jpeg(stored, min_pixel_std=MIN_STD), decode_jpeg(body, min_pixel_std=MIN_STD)
    )


def test_a_resumed_file_stamped_under_another_blank_limit_is_checked_again(tmp_path):
    catalog = make_sky_catalog(3)
    with FakeSkyServer(catalog=catalog) as fake:
        fetch(fake, catalog, tmp_path, min_pixel_std=0.0)
        # Every fixture image is far from blank at the default limit: kept, not fetched.
        manifest = fetch(fake, catalog, tmp_path)
        assert len(fake.cutout_requests()) == 3
        # At an absurd limit every image is blank: the stamp (made at 0.0) does not
        # vouch for that, so the files are decoded, found blank and fetched again.
        flat = fetch(fake, catalog, tmp_path, min_pixel_std=500.0)
        assert len(fake.cutout_requests()) == 6
    assert (manifest["status"] == "ok").all() and (manifest["attempts"] == 0).all()
    assert flat["error"].str.startswith("blank_image").all()


def test_an_error_in_a_worker_stops_the_run_and_reaches_the_caller(tmp_path, monkeypatch):
    import threading

    from skysort.sources.skyserver import cutouts as fetcher

    catalog = make_sky_catalog(12)
    bad = int(catalog["objid"][4])
    real = fetcher.fetch_one

    def failing(session, request, params, path, *rest):
        if path.stem == str(bad):
            raise OSError("disk full")
        return real(session, request, params, path, *rest)

    monkeypatch.setattr(fetcher, "fetch_one", failing)
    with FakeSkyServer(catalog=catalog) as fake, pytest.raises(OSError, match="disk full"):
        fetch(fake, catalog, tmp_path)
    assert not [t for t in threading.enumerate() if t.name.startswith("cutout-")]  # all joined
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_session_reads_proxies_and_credentials_from_the_environment_once(monkeypatch):
    from skysort.sources.skyserver.cutout_http import make_session

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    remote = make_session(2, "https://skyserver.sdss.org/dr17/SkyServerWS/ImgCutout/getjpeg")
    local = make_session(2, "http://127.0.0.1:8080/dr17/SkyServerWS/ImgCutout/getjpeg")
    assert not remote.trust_env and remote.proxies["https"] == "http://proxy.invalid:3128"
    assert not local.trust_env and "http" not in local.proxies  # no_proxy holds


def test_the_client_sends_what_a_plain_session_get_would(monkeypatch):
    import requests

    from skysort.sources.skyserver.cutout_http import make_client
    from skysort.sources.skyserver.cutout_request import cutout_params

    monkeypatch.delenv("NETRC", raising=False)
    url = "http://reader:s3cret@127.0.0.1:8080/dr17/SkyServerWS/ImgCutout/getjpeg"
    params = cutout_params(150.000123, -1.5e-05, DATA, Cutouts(opt="GL"))
    ours = make_client(2, url).request(params)
    plain = requests.Session().prepare_request(requests.Request("GET", url, params=params))
    assert ours.url == plain.url and ours.method == plain.method == "GET"
    assert dict(ours.headers) == {**plain.headers, "User-Agent": ours.headers["User-Agent"]}
    assert ours.headers["Authorization"] == plain.headers["Authorization"]  # credentials sent
