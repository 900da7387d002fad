"""The simulated survey: deterministic, on contract, calibrated to DR17, and faulty on purpose."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skysort.config import Clean, Cutouts, Data, Query, SyntheticSource
from skysort.data.images import BadImage, cutout_path, read_cutout, read_fingerprint
from skysort.data.schema import (
    CATALOG_COLUMNS,
    GALAXY_ZOO_LABELS,
    MAGNITUDE_COLUMNS,
    MANIFEST_COLUMNS,
    check_catalog,
    check_manifest,
)
from skysort.sources.synthetic import (
    GZ_NO_VOTES_RATE,
    SHAPE_COLUMNS,
    render,
    render_cutout,
    simulate_catalog,
    write_synthetic_cutouts,
)

SEED = 7
SIZE = 64
SCALE = 0.396127

# Real SDSS DR17 medians (shared/FACTS.md): u-g, g-r, r-i, i-z, redshift.
FACTS_MEDIANS = {
    "GALAXY": (1.63, 1.40, 0.71, 0.39, 0.45),
    "QSO": (0.40, 0.21, 0.15, 0.16, 1.61),
    "STAR": (1.33, 0.52, 0.21, 0.12, 0.0),
}


def _catalog(n: int, seed: int = SEED, **synthetic: float) -> pd.DataFrame:
    return simulate_catalog(Query(n_objects=n), Data(), SyntheticSource(**synthetic), seed)


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    """A clean sample large enough for distribution checks (no injected label faults)."""
    return _catalog(4000, missing_label_rate=0.0, missing_feature_rate=0.0)


# --- catalog ---------------------------------------------------------------------------


def test_same_seed_same_catalog_other_seed_other_catalog() -> None:
    a, b, c = _catalog(200), _catalog(200), _catalog(200, seed=SEED + 1)
    pd.testing.assert_frame_equal(a, b)
    assert not set(a["objid"]) & set(c["objid"])
    assert not np.allclose(a["r"].fillna(0), c["r"].fillna(0))
    assert (c["provenance"] == f"synthetic seed={SEED + 1}").all()


def test_catalog_follows_the_contract() -> None:
    query = Query(n_objects=300, ra_min=150, ra_max=160, dec_min=-5, dec_max=5, r_min=15, r_max=21)
    df = simulate_catalog(query, Data(), SyntheticSource(), SEED)
    check_catalog(df)
    assert len(df) == 300
    for col, dtype in CATALOG_COLUMNS.items():
        assert str(df[col].dtype) == ("string" if dtype == "string" else dtype), col
    for col in (*SHAPE_COLUMNS, *GALAXY_ZOO_LABELS):
        assert df[col].dtype == np.float64, col
    assert df["ra"].between(150, 160).all() and df["dec"].between(-5, 5).all()
    assert df["r"].dropna().between(15, 21).all()
    assert set(df["class"].dropna()) <= {"GALAXY", "QSO", "STAR"}
    assert df["fracDeV_r"].between(0, 1).all() and df["deVAB_r"].between(0, 1).all()


def test_objids_are_exact_unique_sdss_like_64_bit_integers(tmp_path: Path) -> None:
    df = _catalog(2000)
    ids = df["objid"]
    assert ids.dtype == np.int64 and ids.is_unique
    assert ((ids.to_numpy() >> 59) == 2).all()  # skyVersion bits, as in real DR ids
    assert ids.between(1_237_000_000_000_000_000, 1_238_000_000_000_000_000).all()
    # Values a float64 cannot hold exactly: proof they were never floats.
    assert any(int(float(i)) != int(i) for i in ids)
    df.to_parquet(tmp_path / "c.parquet")
    assert pd.read_parquet(tmp_path / "c.parquet")["objid"].tolist() == ids.tolist()


def test_class_mix_follows_params_and_is_restricted_to_data_classes() -> None:
    df = _catalog(3000, missing_label_rate=0.0)
    share = df["class"].value_counts(normalize=True)
    assert share["GALAXY"] == pytest.approx(0.58, abs=0.03)
    assert share["STAR"] == pytest.approx(0.22, abs=0.03)
    assert share["QSO"] == pytest.approx(0.20, abs=0.03)

    two = simulate_catalog(
        Query(n_objects=2000),
        Data(classes=("GALAXY", "STAR")),
        SyntheticSource(missing_label_rate=0.0),
        SEED,
    )
    assert set(two["class"]) == {"GALAXY", "STAR"}
    assert (two["class"] == "GALAXY").mean() == pytest.approx(0.58 / 0.80, abs=0.03)


def test_colours_and_redshifts_match_dr17(big: pd.DataFrame) -> None:
    for cls, (ug, gr, ri, iz, z) in FACTS_MEDIANS.items():
        d = big[big["class"] == cls]
        assert (d["u"] - d["g"]).median() == pytest.approx(ug, abs=0.15), cls
        assert (d["g"] - d["r"]).median() == pytest.approx(gr, abs=0.1), cls
        assert (d["r"] - d["i"]).median() == pytest.approx(ri, abs=0.08), cls
        assert (d["i"] - d["z"]).median() == pytest.approx(iz, abs=0.08), cls
        assert d["redshift"].median() == pytest.approx(z, abs=max(0.05, 0.1 * z)), cls
    stars = big[big["class"] == "STAR"]
    assert stars["redshift"].abs().quantile(0.95) < 0.002
    galaxies = big[big["class"] == "GALAXY"]
    assert galaxies["r"].median() == pytest.approx(20.1, abs=0.4)
    assert galaxies["redshift"].quantile(0.95) == pytest.approx(0.86, abs=0.1)


def test_fiber_magnitudes_lose_more_light_for_bigger_objects(big: pd.DataFrame) -> None:
    bright = big[big["g"] < 20]
    loss = bright["fiberMag_g"] - bright["g"]
    points = bright["class"] != "GALAXY"
    assert loss[points].median() == pytest.approx(0.35, abs=0.05)
    assert loss[~points].median() > loss[points].median() + 0.3
    galaxies = bright[~points]
    assert np.corrcoef(galaxies["petroRad_r"], loss[~points])[0, 1] > 0.5


def test_missing_labels_and_features_are_injected_at_their_rates() -> None:
    df = _catalog(1000, missing_label_rate=0.1, missing_feature_rate=0.05)
    unknown = df["class"].isna()
    assert unknown.sum() == 100
    assert (df.loc[unknown, "zWarning"] != 0).sum() == 50
    assert (df.loc[~unknown, "zWarning"] == 0).all()
    nan_per_row = df[list(MAGNITUDE_COLUMNS)].isna().sum(axis=1)
    assert (nan_per_row > 0).sum() == 50
    assert nan_per_row.max() == 1


def test_galaxy_zoo_flags_only_for_galaxies_with_votes(big: pd.DataFrame) -> None:
    gz = big[list(GALAXY_ZOO_LABELS)]
    galaxy = big["class"] == "GALAXY"
    assert gz[~galaxy].isna().all().all()
    voted = gz[galaxy].dropna()
    assert 1 - len(voted) / galaxy.sum() == pytest.approx(GZ_NO_VOTES_RATE, abs=0.04)
    assert set(np.unique(voted.to_numpy())) == {0.0, 1.0}
    assert not ((voted["gz_elliptical"] == 1) & (voted["gz_spiral"] == 1)).any()
    assert (voted.loc[voted["gz_edge_on"] == 1, "gz_spiral"] == 1).all()
    for col in GALAXY_ZOO_LABELS:  # every label occurs, none is universal
        assert 0.01 < voted[col].mean() < 0.8, col


def test_classes_overlap_so_no_model_is_perfect(big: pd.DataFrame) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    features = ["u", "g", "r", "i", "z", "fiberMag_g"]
    x, y = big[features].to_numpy(), big["class"].astype(str).to_numpy()
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    model.fit(x[:3000], y[:3000])
    accuracy = model.score(x[3000:], y[3000:])
    assert 0.82 < accuracy < 0.97


# --- rendering -------------------------------------------------------------------------


def _row(r: float = 17.0, petro: float = 1.3, cls: str = "STAR", **extra: float) -> dict:
    colours = {"u": 1.4, "g": 0.6, "r": 0.0, "i": -0.2, "z": -0.3}
    row = {band: r + c for band, c in colours.items()}
    row.update(petroRad_r=petro, deVAB_r=0.8, deVPhi_r=30.0, fracDeV_r=0.5)
    row["class"] = cls
    row.update(extra)
    return row


def _light(image: np.ndarray) -> np.ndarray:
    """Summed channels minus the sky level (the frame's median)."""
    total = image.astype(float).sum(axis=-1)
    return total - np.median(total)


def _fraction_within(image: np.ndarray, radius: float) -> float:
    light = _light(image)
    c = (np.arange(image.shape[0]) - (image.shape[0] - 1) / 2) ** 2
    inside = (c[:, None] + c[None, :]) <= radius**2
    return float(light[inside].sum() / light.sum())


def test_render_is_an_rgb_uint8_image_fixed_by_the_generator() -> None:
    row = _row(petro=4.0, cls="GALAXY")
    a = render_cutout(row, SIZE, SCALE, np.random.default_rng(1))
    b = render_cutout(row, SIZE, SCALE, np.random.default_rng(1))
    c = render_cutout(row, SIZE, SCALE, np.random.default_rng(2))
    assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_stars_are_more_compact_than_galaxies_of_the_same_flux() -> None:
    for seed in range(3):
        star = render_cutout(_row(18.0, 1.3), SIZE, SCALE, np.random.default_rng(seed))
        galaxy = render_cutout(_row(18.0, 5.0, "GALAXY"), SIZE, SCALE, np.random.default_rng(seed))
        assert _fraction_within(star, 4) > _fraction_within(galaxy, 4) + 0.15


def test_fainter_objects_are_dimmer_and_noisier() -> None:
    def centre_and_snr(r: float) -> tuple[float, float]:
        img = render_cutout(_row(r), SIZE, SCALE, np.random.default_rng(0)).astype(float)
        centre = img[28:36, 28:36].mean()
        sky = img[:12, :12]
        return centre, (centre - sky.mean()) / (sky.std() + 1e-9)

    levels = [centre_and_snr(r) for r in (16.0, 19.0, 21.5)]
    assert levels[0][0] > levels[1][0] > levels[2][0]
    assert levels[0][1] > levels[2][1]


def test_colours_follow_the_gri_to_rgb_mapping() -> None:
    blue = _row(18.0, u=18.3, g=18.2, i=18.4, z=18.5)
    red = _row(18.0, u=21.5, g=19.6, i=17.3, z=16.9)
    b = render_cutout(blue, SIZE, SCALE, np.random.default_rng(0))[28:36, 28:36].mean((0, 1))
    r = render_cutout(red, SIZE, SCALE, np.random.default_rng(0))[28:36, 28:36].mean((0, 1))
    assert b[2] > b[0] and r[0] > r[2]


def test_neighbours_add_light_around_the_object() -> None:
    def bright_pixels_outside_centre(n: int) -> int:
        count = 0
        for seed in range(5):
            img = render_cutout(_row(n_neighbours=n), SIZE, SCALE, np.random.default_rng(seed))
            light = _light(img)
            light[20:44, 20:44] = 0
            count += int((light > 60).sum())  # about 3 sigma of the sky
        return count

    assert bright_pixels_outside_centre(3) > 1.5 * bright_pixels_outside_centre(0)


def test_a_denser_sky_puts_more_field_objects_around_the_object(tmp_path: Path) -> None:
    catalog = simulate_catalog(Query(n_objects=20), Data(), SyntheticSource(), SEED)

    def light_outside_centre(density: float) -> int:
        clean = SyntheticSource(
            neighbour_density=density,
            missing_cutout_rate=0.0,
            corrupt_cutout_rate=0.0,
            blank_cutout_rate=0.0,
        )
        folder = tmp_path / f"density-{density}"
        write_synthetic_cutouts(catalog, folder, Data(), Cutouts(), clean, SEED)
        count = 0
        for objid in catalog["objid"]:
            light = _light(read_cutout(cutout_path(folder, objid), SIZE, 0.0))
            light[20:44, 20:44] = 0
            count += int((light > 60).sum())
        return count

    assert light_outside_centre(0.0) < light_outside_centre(25.0) < light_outside_centre(100.0)


# --- cutout files ----------------------------------------------------------------------

FAULTS = SyntheticSource(missing_cutout_rate=0.1, corrupt_cutout_rate=0.05, blank_cutout_rate=0.05)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    catalog = simulate_catalog(Query(n_objects=200), Data(), FAULTS, SEED)
    folder = tmp_path_factory.mktemp("cutouts")
    manifest = write_synthetic_cutouts(catalog, folder, Data(), Cutouts(), FAULTS, SEED)
    return catalog, manifest, folder


def _outcome(folder: Path, objid: int) -> str:
    try:
        read_cutout(cutout_path(folder, objid), SIZE, Clean().min_pixel_std)
    except BadImage as exc:
        return exc.reason
    return "ok"


def test_manifest_is_on_contract_and_in_catalog_order(written) -> None:
    catalog, manifest, folder = written
    check_manifest(manifest)
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    for col, dtype in MANIFEST_COLUMNS.items():
        assert str(manifest[col].dtype) == dtype, col
    assert manifest["objid"].tolist() == catalog["objid"].tolist()
    assert (manifest["attempts"] == 1).all()
    for rec in manifest[manifest["status"] == "ok"].itertuples():
        data = cutout_path(folder, rec.objid).read_bytes()
        assert rec.bytes == len(data)
        assert rec.sha256 == hashlib.sha256(data).hexdigest()


def test_faults_are_injected_at_their_rates_and_caught_on_reading(written) -> None:
    _, manifest, folder = written
    outcomes = pd.Series([_outcome(folder, o) for o in manifest["objid"]])
    assert outcomes.value_counts().to_dict() == {
        "ok": 160,
        "missing_image": 20,
        "unreadable_image": 10,
        "blank_image": 10,
    }
    missing = (manifest["status"] == "missing").to_numpy()
    assert (outcomes[missing] == "missing_image").all()
    assert (manifest.loc[missing, "error"] == "no cutout from the service").all()
    assert (manifest.loc[~missing, "error"] == "").all()
    # Corrupt and blank files slip through as "ok": only the clean stage can tell.
    assert (
        manifest.loc[outcomes.isin(["unreadable_image", "blank_image"]), "status"] == "ok"
    ).all()
    assert not any(cutout_path(folder, o).exists() for o in manifest.loc[missing, "objid"])


def test_same_seed_writes_the_same_files(written, tmp_path: Path) -> None:
    catalog, manifest, _ = written
    again = write_synthetic_cutouts(catalog, tmp_path, Data(), Cutouts(), FAULTS, SEED)
    pd.testing.assert_frame_equal(manifest, again)


def test_rerun_rewrites_nothing_but_repairs_damage(tmp_path: Path) -> None:
    catalog = simulate_catalog(Query(n_objects=60), Data(), FAULTS, SEED)
    calls: list[tuple[int, int]] = []
    first = write_synthetic_cutouts(
        catalog,
        tmp_path,
        Data(),
        Cutouts(),
        FAULTS,
        SEED,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls[-1] == (60, 60)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    ok = first.loc[first["status"] == "ok", "objid"].tolist()
    stamps = {o: cutout_path(tmp_path, o).stat() for o in ok}
    damaged = cutout_path(tmp_path, ok[0])
    damaged.write_bytes(b"<html>503</html>")
    stale = cutout_path(tmp_path, first.loc[first["status"] == "missing", "objid"].iloc[0])
    stale.write_bytes(b"left over from another run")

    second = write_synthetic_cutouts(catalog, tmp_path, Data(), Cutouts(), FAULTS, SEED)
    pd.testing.assert_frame_equal(first, second)
    for o in ok[1:]:
        now = cutout_path(tmp_path, o).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stamps[o].st_ino, stamps[o].st_mtime_ns)
    assert (
        hashlib.sha256(damaged.read_bytes()).hexdigest()
        == first["sha256"].iloc[first["objid"].tolist().index(ok[0])]
    )
    assert not stale.exists()


def test_the_manifest_records_what_determined_each_rendering(tmp_path: Path) -> None:
    catalog = simulate_catalog(Query(n_objects=20), Data(), FAULTS, SEED)
    first = write_synthetic_cutouts(catalog, tmp_path, Data(), Cutouts(), FAULTS, SEED)
    prints = first["fingerprint"]
    assert prints.str.fullmatch(
        rf"synthetic renderer={render.RENDERER_VERSION} seed={SEED} size=64 "
        rf"scale=0\.396127 row=[0-9a-f]{{16}}"
    ).all()
    assert prints.is_unique  # each object's own inputs are part of it
    ok = first["status"] == "ok"
    for objid, fingerprint in zip(first.loc[ok, "objid"], prints[ok]):
        assert read_fingerprint(cutout_path(tmp_path, objid).read_bytes()) == fingerprint

    finer = write_synthetic_cutouts(catalog, tmp_path, Data(), Cutouts(scale=0.2), FAULTS, SEED)
    assert not set(finer["fingerprint"]) & set(prints)
    for objid, digest in zip(finer.loc[ok, "objid"], finer.loc[ok, "sha256"]):
        assert hashlib.sha256(cutout_path(tmp_path, objid).read_bytes()).hexdigest() == digest
    assert not set(finer.loc[ok, "sha256"]) & set(first.loc[ok, "sha256"])


def test_a_new_renderer_version_renders_every_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files made by an older renderer must not be kept as if they were current."""
    catalog = simulate_catalog(Query(n_objects=12), Data(), FAULTS, SEED)
    first = write_synthetic_cutouts(catalog, tmp_path, Data(), Cutouts(), FAULTS, SEED)
    ok = first["status"] == "ok"
    before = {o: cutout_path(tmp_path, o).read_bytes() for o in first.loc[ok, "objid"]}
    monkeypatch.setattr(render, "RENDERER_VERSION", render.RENDERER_VERSION + 1)
    second = write_synthetic_cutouts(catalog, tmp_path, Data(), Cutouts(), FAULTS, SEED)
    assert not set(second["fingerprint"]) & set(first["fingerprint"])
    for objid, fingerprint in zip(second.loc[ok, "objid"], second.loc[ok, "fingerprint"]):
        now = cutout_path(tmp_path, objid).read_bytes()
        assert now != before[objid]  # compared by content: a timestamp can repeat within a tick
        assert read_fingerprint(now) == fingerprint
