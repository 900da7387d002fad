"""The ``train`` section: which Keras model to train and how."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from skysort.config.base import Fraction, Section, project_root
from skysort.config.files import check_weights_file
from skysort.config.names import IMAGE_ENCODERS, MODEL_KINDS


class Train(Section):
    """Which Keras model to train and how.

    ``weights`` is ``none``, ``imagenet`` (needs the network once) or a path to a
    local weights file. ``trainable_layers`` counts the backbone's top layers left
    trainable (-1 = all); it does not apply to ``small_cnn``, which always trains.
    ``backbone_input_size`` resizes cutouts in the input pipeline (0 = the
    backbone's own minimum, or the cutout size when that is larger).
    ``convs_per_block`` and ``pooling`` shape the small CNN: 3x3 convs before each
    max-pool, and how its last map becomes a vector (``avg``: global average,
    position-blind; ``flatten``: every position kept, for centred objects).
    ``center_crop`` feeds the encoder only the central N x N pixels of each cutout, at
    the cutout's own scale (0 = the whole cutout): the object sits at the centre, and
    what lies further out is mostly sky and unrelated neighbours.
    ``colour_inputs`` gives the net's tabular input the colours of adjacent bands
    among ``data.features`` (u-g, g-r, ...), the matrix the baselines read: a net can
    form differences itself but learns them slowly. An image model has no tabular
    input and ignores it (as the tabular model ignores the image settings), so one
    ``params.yaml`` serves every variant of ``skysort compare``.

    ``gboost`` (LightGBM) and ``forest`` (a random forest) are tree models on the same
    train rows and tabular features (plus colours); ``ensemble`` is the net (fusion
    where there are cutouts, else tabular) plus the better tree model on val, mixed
    with a weight fitted on val. The net settings do not apply to the tree models.
    """

    model: Literal[MODEL_KINDS] = Field(  # type: ignore[valid-type]
        "fusion", description="fusion | tabular | image (Keras nets) | gboost | forest | ensemble"
    )
    image_encoder: Literal[IMAGE_ENCODERS] = Field(  # type: ignore[valid-type]
        "small_cnn",
        description="small_cnn | resnet50 | densenet121 | vgg16 | vgg19 | xception | "
        "efficientnetb0-b2 | mobilenetv3small/large",
    )
    weights: str = Field("none", description="none | imagenet | path/to/weights.h5")
    trainable_layers: int = Field(
        -1, ge=-1, le=10_000, description="backbone top layers left trainable (-1 = all)"
    )
    backbone_input_size: int = Field(
        0, ge=0, le=1024, description="0 = backbone minimum or cutout size"
    )
    center_crop: int = Field(
        0,
        ge=0,
        le=2048,
        description="feed the encoder the central N x N cutout pixels (0 = whole cutout)",
    )
    head_conv_filters: tuple[Annotated[int, Field(ge=1, le=4096)], ...] = Field(
        (), description="new conv layers on the backbone's feature map (e.g. [64])"
    )
    loss: Literal["crossentropy", "focal"] = Field(
        "crossentropy", description="crossentropy | focal"
    )
    focal_gamma: float = Field(2.0, ge=0, le=10)
    class_weight: Literal["none", "balanced"] = Field("none", description="none | balanced")
    epochs: int = Field(40, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=4096)
    optimizer: Literal["adam", "rmsprop", "adagrad", "adadelta"] = Field(
        "adam", description="adam | rmsprop | adagrad | adadelta"
    )
    learning_rate: float = Field(1e-3, gt=0, le=1)
    lr_schedule: Literal["constant", "cosine", "plateau"] = Field(
        "constant", description="constant | cosine | plateau"
    )
    patience: int = Field(10, ge=1, le=1000)
    monitor: Literal["auto", "val_loss", "val_accuracy", "val_auc"] = Field(
        "auto",
        description="auto (val_loss; multilabel val_auc) | val_loss | val_accuracy | val_auc",
    )
    threshold_objective: Literal["f1", "gmean"] = Field(
        "f1", description="multilabel thresholds tuned on val: f1 | gmean"
    )
    augment: bool = True
    flips: tuple[Literal["horizontal", "vertical", "transpose"], ...] = Field(
        ("horizontal", "vertical", "transpose"),
        description="random flips when augment is true: horizontal | vertical | transpose",
    )
    conv_filters: tuple[Annotated[int, Field(ge=1, le=65_536)], ...] = Field(
        (32, 64, 128), min_length=1
    )
    convs_per_block: int = Field(
        1, ge=1, le=4, description="small_cnn: 3x3 convs before each max-pool"
    )
    pooling: Literal["avg", "flatten"] = Field(
        "avg", description="small_cnn: avg (global average) | flatten (keeps where the light is)"
    )
    dense_units: tuple[Annotated[int, Field(ge=1, le=65_536)], ...] = Field((64, 32), min_length=1)
    colour_inputs: bool = Field(
        False, description="tabular input also gets adjacent-band colours (u-g, g-r, ...)"
    )
    dropout: Fraction = 0.3
    modality_dropout: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="fusion: drop a sample's whole image vector at this rate (0 = off)",
    )
    threads: int = Field(0, ge=0, le=256, description="0 = TensorFlow's default")
    precision: Literal["float32", "mixed_bfloat16"] = Field(
        "float32",
        description="mixed_bfloat16: the net's layers compute in bfloat16 (weights, feature "
        "scaling and outputs stay float32); fast only where the CPU has AVX512_BF16 or AMX, "
        "or on a recent GPU",
    )
    distribute: Literal["none", "mirrored", "multiworker"] = Field(
        "none",
        description="none | mirrored (one replica per GPU, else per logical CPU) | "
        "multiworker (TF_CONFIG)",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: str, info: ValidationInfo) -> str:
        root = project_root(info)
        if root is not None:
            check_weights_file(value, root)
        return value

    @model_validator(mode="after")
    def _check_small_cnn_shape(self) -> Train:
        if self.image_encoder != "small_cnn":
            if self.convs_per_block != 1:
                raise ValueError("train.convs_per_block: shapes small_cnn only; leave it at 1")
            if self.pooling != "avg":
                raise ValueError(
                    f"train.pooling: {self.pooling!r} shapes small_cnn only; "
                    f"{self.image_encoder} pools by global average"
                )
        return self

    def describe(self) -> str:
        """The model as a person names it: ``tabular``, or ``fusion/small_cnn``."""
        if self.model in ("tabular", "gboost", "forest"):
            return self.model
        return f"{self.model}/{self.image_encoder}"

    def monitored(self, task: str) -> str:
        """The validation metric early stopping and the checkpoint watch.

        ``auto``: validation loss for multiclass, validation AUC for multilabel.
        """
        if self.monitor != "auto":
            return self.monitor
        return "val_auc" if task == "multilabel" else "val_loss"
