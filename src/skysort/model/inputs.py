"""What training and evaluation read: the cleaned survey as aligned arrays, and its splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from skysort import targets
from skysort.config import Data, Train
from skysort.data.labels import feature_matrix, tabular_matrix
from skysort.data.packed import PackedImages, open_images

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class Survey:
    """The clean stage's dataset with its labels and cutouts; row i of each is one object."""

    dataset: pd.DataFrame
    labels: pd.DataFrame
    # (rows, size, size, 3) uint8, read from the packed file batch by batch (indexes like an array)
    images: PackedImages | np.ndarray
    # (rows, n) float32: data.features in order, then (colours=True) adjacent-band colours
    features: np.ndarray
    # multiclass: class codes in data.classes order, -1 where unknown; multilabel: a float
    # matrix in data.labels order, NaN where unknown (outside train: NaN unless observed)
    y: np.ndarray
    task: str = "multiclass"

    def scored_rows(self, split: str) -> np.ndarray:
        """Rows of ``split`` with an observed label (multilabel: at least one)."""
        return targets.get(self.task).scored_rows(self.labels, self.y, split)


@dataclass(frozen=True)
class TrainingInputs:
    """The survey plus what training takes from it: rows, normalisation, class weights."""

    survey: Survey
    train_rows: np.ndarray  # the balanced train index: oversampled rows repeat
    val_rows: np.ndarray  # observed val labels only: imputed labels never judge
    feature_mean: np.ndarray
    feature_var: np.ndarray
    class_weight: dict[int, float] | None


def load_survey(
    dataset_path: Path,
    images_path: Path,
    labels_path: Path,
    data: Data,
    task: str = "multiclass",
    colours: bool = False,
) -> Survey:
    """Read the dataset and labels, open the packed images; fail unless their rows align.

    The images are not read here: indexing ``Survey.images`` reads those rows from the
    file (:mod:`skysort.data.packed`), so memory holds a batch, not the survey.

    ``colours`` (``train.colour_inputs``): the features are followed by the colours of
    adjacent bands, as the baselines read them.
    """
    dataset = pd.read_parquet(dataset_path)
    labels = pd.read_parquet(labels_path)
    images = open_images(images_path)
    if len(images) != len(dataset):
        raise ValueError(
            f"{images_path} has {len(images)} images but {dataset_path} has "
            f"{len(dataset)} rows: rerun the clean stage"
        )
    if len(labels) != len(dataset) or not np.array_equal(
        labels["objid"].to_numpy(), dataset["objid"].to_numpy()
    ):
        raise ValueError(
            f"{labels_path} does not list the objects of {dataset_path} in its order: "
            "rerun the impute stage"
        )
    y = targets.get(task).y(labels, data)
    return Survey(
        dataset=dataset,
        labels=labels,
        images=images,
        features=(tabular_matrix if colours else feature_matrix)(
            dataset, data.features, data.asinh_scales
        ),
        y=y,
        task=task,
    )


def load_training_inputs(
    dataset_path: Path,
    images_path: Path,
    labels_path: Path,
    index_path: Path,
    *,
    data: Data,
    train: Train,
    task: str = "multiclass",
) -> TrainingInputs:
    """The survey, the balanced train rows and the observed val rows, and what they imply."""
    survey = load_survey(dataset_path, images_path, labels_path, data, task, train.colour_inputs)
    train_rows = np.load(index_path)
    val_rows = survey.scored_rows("val")
    if len(train_rows) == 0 or len(val_rows) == 0:
        raise ValueError(f"need train and val rows, got {len(train_rows)} and {len(val_rows)}")
    mean, var = feature_statistics(survey.features, train_rows)
    return TrainingInputs(
        survey=survey,
        train_rows=train_rows,
        val_rows=val_rows,
        feature_mean=mean,
        feature_var=var,
        class_weight=targets.get(task).class_weight(survey.y[train_rows], data, train),
    )


def feature_statistics(
    features: np.ndarray, train_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance over the train rows, each row counted once.

    Oversampled copies would otherwise pull the statistics toward the minority classes.
    """
    unique = np.unique(train_rows)
    return features[unique].mean(axis=0), features[unique].var(axis=0)


def training_datasets(
    inputs: TrainingInputs, train: Train, seed: int
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The train pipeline (shuffled per epoch, augmented if asked) and the val pipeline."""
    from skysort.model.tfdata import INPUTS_BY_MODEL, make_dataset

    s = inputs.survey
    names = INPUTS_BY_MODEL[train.model]
    train_ds = make_dataset(
        s.images,
        s.features,
        inputs.train_rows,
        names,
        train.batch_size,
        y=s.y,
        shuffle=True,
        augment=train.augment,
        seed=seed,
        flips=train.flips,
    )
    val_ds = make_dataset(s.images, s.features, inputs.val_rows, names, train.batch_size, y=s.y)
    return train_ds, val_ds
