"""The simulated Galaxy Zoo: truth apart from votes, per-label missingness, per-label thresholds."""

import numpy as np
import pandas as pd
import pytest

from skysort.config import (
    Balance,
    ConfigError,
    Cutouts,
    Data,
    Impute,
    Query,
    SkyServerSource,
    Source,
    SyntheticSource,
    validate_params,
)
from skysort.data.atomic import write_parquet
from skysort.data.schema import GALAXY_ZOO_LABELS
from skysort.sources.skyserver.galaxyzoo import zoo_labels
from skysort.sources.synthetic import (
    GZ_NO_VOTES_RATE,
    render_cutout,
    simulate_catalog,
    write_synthetic_cutouts,
)
from skysort.sources.synthetic.galaxyzoo import QUESTION_DEPTH, TRUE_MORPHOLOGY
from skysort.stages.balance import balance_train_rows
from skysort.stages.query import write_catalog

SEED = 5


def _zoo_catalog(n: int, **synthetic) -> pd.DataFrame:
    catalog = simulate_catalog(
        Query(n_objects=n), Data(), SyntheticSource(**synthetic), SEED, zoo=True
    )
    return zoo_labels(catalog, SkyServerSource())


def _galaxies(catalog: pd.DataFrame) -> pd.DataFrame:
    return catalog[catalog["class"].eq("GALAXY").fillna(False).to_numpy()]


# ----------------------------------------------------------------------------- missingness


def test_deeper_questions_are_unknown_more_often_and_nested():
    galaxies = _galaxies(_zoo_catalog(3000))
    by_depth = sorted(GALAXY_ZOO_LABELS, key=QUESTION_DEPTH.__getitem__)
    missing = [galaxies[label].isna().mean() for label in by_depth]
    assert missing[0] == pytest.approx(GZ_NO_VOTES_RATE, abs=0.04)  # only "no votes at all"
    assert all(a + 0.05 < b for a, b in zip(missing, missing[1:], strict=False)), missing
    for shallow, deep in zip(by_depth, by_depth[1:], strict=False):
        assert galaxies.loc[galaxies[shallow].isna(), deep].isna().all()  # fewer reach deeper


def test_no_missing_per_level_blanks_the_four_labels_together():
    unknown = _galaxies(_zoo_catalog(1000, zoo_missing_per_level=0.0))[
        list(GALAXY_ZOO_LABELS)
    ].isna()
    assert unknown.any().any()
    assert (unknown.all(axis=1) == unknown.any(axis=1)).all()


def test_mask_and_drop_train_on_different_rows(tmp_path):
    """Through the query stage: with per-label missingness, drop trains on fewer rows."""
    write_catalog(source_catalog=tmp_path / "none.csv", catalog=tmp_path / "catalog.parquet",
                  source=Source(), query=Query(n_objects=800), data=Data(), seed=SEED,
                  task="multilabel")  # fmt: skip
    galaxies = _galaxies(pd.read_parquet(tmp_path / "catalog.parquet")).reset_index(drop=True)
    labels = pd.DataFrame({"objid": galaxies["objid"], "row": np.arange(len(galaxies)),
                           "split": "train"})  # fmt: skip
    for name in GALAXY_ZOO_LABELS:
        labels[name] = galaxies[name].to_numpy(dtype=float)
        labels[f"{name}_source"] = pd.array(
            np.where(labels[name].isna(), "unknown", "observed"), dtype="string"
        )
        labels[f"{name}_confidence"] = np.where(labels[name].isna(), np.nan, 1.0)
    write_parquet(tmp_path / "labels.parquet", labels)
    rows = {}
    for missing in ("mask", "drop"):
        balance_train_rows(labels=tmp_path / "labels.parquet", train_index=tmp_path / "i.npy",
                           balance_report=tmp_path / "b.json", balance=Balance(method="none"),
                           seed=0, task="multilabel", data=Data(),
                           impute=Impute(missing_labels=missing))  # fmt: skip
        rows[missing] = set(np.load(tmp_path / "i.npy").tolist())
    assert rows["drop"] < rows["mask"]
    assert len(rows["drop"]) < 0.8 * len(rows["mask"])


# ----------------------------------------------------------------------------- rendering


def _big_galaxy(**morphology: float) -> dict:
    row = {"g": 16.6, "r": 16.0, "i": 15.7, "class": "GALAXY", "petroRad_r": 6.0,
           "deVAB_r": 0.7, "deVPhi_r": 30.0, "fracDeV_r": 0.2}  # fmt: skip
    return {**row, **morphology}


def test_the_renderer_draws_the_true_morphology_not_the_votes():
    truth = {column: 0.0 for column in TRUE_MORPHOLOGY.values()}

    def render(row: dict) -> np.ndarray:
        return render_cutout(row, 64, 0.4, np.random.default_rng(3))

    plain = render(_big_galaxy(**truth))
    # a true merger whose votes fell below the threshold still has its companion
    merger = render(_big_galaxy(**{**truth, "true_merger": 1.0}, gz_merger=0.0))
    assert not np.array_equal(merger, plain)
    # votes for a merger that is not one draw nothing
    assert np.array_equal(render(_big_galaxy(**truth, gz_merger=1.0)), plain)
    # a row without the truth (the multiclass survey) still draws its flags
    assert not np.array_equal(render(_big_galaxy(gz_merger=1.0)), render(_big_galaxy()))


def test_the_cutouts_follow_the_truth_and_ignore_the_votes(tmp_path):
    catalog = _zoo_catalog(300)
    big = np.flatnonzero(catalog["class"].eq("GALAXY").fillna(False) & (catalog["petroRad_r"] > 3))
    rows = big[:3]

    def files(table: pd.DataFrame, name: str) -> list[str]:
        manifest = write_synthetic_cutouts(table, tmp_path / name, Data(), Cutouts(),
                                           SyntheticSource(), SEED, rows=rows)  # fmt: skip
        return manifest["sha256"].tolist()

    before = files(catalog, "a")
    revoted = catalog.copy()
    for label in GALAXY_ZOO_LABELS:
        revoted[label] = 1.0 - revoted[label]
    assert files(revoted, "b") == before
    remade = catalog.copy()
    remade["true_merger"] = 1.0 - remade["true_merger"]
    assert files(remade, "c") != before


# ----------------------------------------------------------------------------- thresholds


def test_a_per_label_threshold_applies_per_label():
    votes = pd.DataFrame({"nvote": [30, 30], "p_el": [0.75, 0.85], "p_cs": [0.1, 0.1],
                          "p_edge": [0.0, 0.0], "p_mg": [0.5, 0.3]})  # fmt: skip
    labels = ["gz_elliptical", "gz_merger"]
    one = zoo_labels(votes, SkyServerSource(zoo_threshold=0.7))[labels].to_numpy()
    np.testing.assert_array_equal(one, [[1, 0], [1, 0]])
    each = zoo_labels(votes, SkyServerSource(zoo_threshold={"gz_merger": 0.4}))[labels]
    np.testing.assert_array_equal(each.to_numpy(), [[0, 1], [1, 0]])  # left out: 0.8
    default = SkyServerSource()
    assert default.zoo_threshold_for("gz_merger") == 0.4
    assert default.zoo_threshold_for("gz_spiral") == 0.8


@pytest.mark.parametrize(
    "value, named",
    [
        ({"gz_mergers": 0.4, "gz_spiral": 0.8}, "gz_mergers"),
        ({"gz_merger": 1.5}, "gz_merger"),
        ({"gz_merger": 0}, "gz_merger"),
        (0, "(0, 1]"),
    ],
)
def test_bad_thresholds_are_refused_naming_the_key_and_label(value, named):
    raw = {"source": {"skyserver": {"zoo_threshold": value}}}
    with pytest.raises(ConfigError, match=r"source\.skyserver\.zoo_threshold") as error:
        validate_params(raw)
    assert named in str(error.value)
    assert "gz_spiral" not in str(error.value).split("known")[0]


def test_predict_draws_the_simulated_sky_as_the_models_task_does(tmp_path):
    from skysort.config import Predict
    from skysort.sources.objects import objects_to_classify

    box = Predict(ra_min=150.0, ra_max=150.05, dec_min=1.0, dec_max=1.05)
    plain = objects_to_classify(box, Source(), Query(), Data(), 1, tmp_path)
    zoo = objects_to_classify(box, Source(), Query(), Data(), 1, tmp_path, zoo=True)
    assert set(TRUE_MORPHOLOGY.values()) <= set(zoo.catalog.columns)
    assert not set(TRUE_MORPHOLOGY.values()) & set(plain.catalog.columns)
    assert zoo.catalog["objid"].equals(plain.catalog["objid"])
