"""Typed errors: every failure a user can cause has its own class and a message that says what to do.

All inherit from :class:`PortraitGANError`, so callers (the CLI, the app) can catch one type and show
``str(error)`` as a one-line reason.
"""

from __future__ import annotations


class PortraitGANError(Exception):
    """Base class of every error this package raises on purpose."""


class ImageLoadError(PortraitGANError, ValueError):
    """The input is not a readable image, is truncated, or is larger than the pixel limit."""


class NoFaceError(PortraitGANError):
    """No face was found in the image."""


class FaceIndexError(PortraitGANError, IndexError):
    """A face index was asked for that the image does not have."""


class LandmarkModelNotFoundError(PortraitGANError, FileNotFoundError):
    """dlib's 68-point shape predictor file could not be found anywhere we looked."""


class CheckpointError(PortraitGANError):
    """A checkpoint is missing, is not safetensors, or does not match the model's architecture."""


class PretrainedWeightsMissingError(PortraitGANError):
    """Pretrained feature-network weights (VGG19) are needed but none were given."""


class FaceRecognitionModelNotFoundError(PortraitGANError, FileNotFoundError):
    """dlib's face-recognition ResNet file could not be found anywhere we looked."""


class DeviceError(PortraitGANError, ValueError):
    """A torch device was asked for that this torch build or machine does not have, or is not a device."""
