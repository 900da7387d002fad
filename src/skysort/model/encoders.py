"""The image encoders ``train.image_encoder`` can name, and how each is built.

Kept apart from :mod:`skysort.model.build` (which imports Keras) so that the config can
list the choices without importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Preprocessing = Literal["caffe", "torch", "tf", "builtin", "unit"]


@dataclass(frozen=True)
class Encoder:
    """How to build one image encoder: its constructor, smallest input, preprocessing.

    ``preprocessing`` follows ``keras.applications.imagenet_utils.preprocess_input``:
    ``caffe`` = RGB→BGR then subtract the ImageNet mean (ResNet50, VGG), ``torch`` =
    scale to [0, 1] then standardise per channel (DenseNet), ``tf`` = scale to
    [-1, 1] (Xception), ``builtin`` = the backbone rescales raw 0-255 pixels itself
    (EfficientNet, MobileNetV3), ``unit`` = scale to [0, 1] (our small CNN).
    """

    constructor: str | None  # attribute of keras.applications; None for small_cnn
    min_size: int
    preprocessing: Preprocessing


ENCODERS: MappingProxyType[str, Encoder] = MappingProxyType(
    {
        "small_cnn": Encoder(None, 8, "unit"),
        "resnet50": Encoder("ResNet50", 32, "caffe"),
        "densenet121": Encoder("DenseNet121", 32, "torch"),
        "vgg16": Encoder("VGG16", 32, "caffe"),
        "vgg19": Encoder("VGG19", 32, "caffe"),
        "xception": Encoder("Xception", 71, "tf"),
        "efficientnetb0": Encoder("EfficientNetB0", 32, "builtin"),
        "efficientnetb1": Encoder("EfficientNetB1", 32, "builtin"),
        "efficientnetb2": Encoder("EfficientNetB2", 32, "builtin"),
        "mobilenetv3small": Encoder("MobileNetV3Small", 32, "builtin"),
        "mobilenetv3large": Encoder("MobileNetV3Large", 32, "builtin"),
    }
)
"""Every ``train.image_encoder`` choice; minimum sizes are those keras.applications enforces."""
