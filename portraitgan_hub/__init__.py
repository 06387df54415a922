"""PortraitGAN Hub: edit a portrait's expression and modality in one step (Duan et al.)."""

from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.default_model import DEFAULT_MODEL
from portraitgan_hub.errors import (
    CheckpointError,
    FaceIndexError,
    ImageLoadError,
    LandmarkModelNotFoundError,
    NoFaceError,
    PortraitGANError,
    PretrainedWeightsMissingError,
)
from portraitgan_hub.model import PortraitGAN

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "CheckpointError",
    "FaceIndexError",
    "ImageLoadError",
    "LandmarkModelNotFoundError",
    "NoFaceError",
    "PortraitGAN",
    "PortraitGANConfig",
    "PortraitGANError",
    "PretrainedWeightsMissingError",
]
