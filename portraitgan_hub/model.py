"""``PortraitGAN``: the generator as a Hugging Face Hub model.

``save_pretrained`` writes ``config.json``, ``model.safetensors`` and a model card; ``from_pretrained``
loads a local folder or a Hub id (also offline from the HF cache), strictly, and from safetensors only
(``checkpoint_files``: a pickle checkpoint is refused, because unpickling a download can run code).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
from huggingface_hub.hub_mixin import MixinInfo
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from portraitgan_hub.checkpoint_files import (
    CONFIG_EXPECTED,
    CONFIG_NAME,
    PICKLE_NAMES,
    WEIGHTS_NAME,
    config_from_data,
    looks_like_path,
    pickle_refusal,
    read_config_file,
    read_weights,
    refuse_folder_without,
)
from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.editor import EditOutcome, FaceEditor
from portraitgan_hub.errors import CheckpointError
from portraitgan_hub.generator import Generator, GeneratorOutput
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.io_utils import default_file_mode

if TYPE_CHECKING:
    from collections.abc import Iterator

PAPER_URL = "https://arxiv.org/abs/1807.01826"
#: ``paper_url=`` only where the mixin knows it (huggingface-hub 0.30 on; the WebUI hosts have 0.26).
PAPER_OPTION = {"paper_url": PAPER_URL} if "paper_url" in {f.name for f in fields(MixinInfo)} else {}

ImageLike = torch.Tensor | Image.Image | list[Image.Image]


class PortraitGAN(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="portraitgan-hub",
    tags=["portraitgan", "face-editing", "expression-editing", "style-transfer", "gan"],
    pipeline_tag="image-to-image",
    license="apache-2.0",
    **PAPER_OPTION,
    model_card_template=resources.files("portraitgan_hub").joinpath("model_card_template.md").read_text(),
):
    """The PortraitGAN generator G(I | L, c) with Hub save/load and batched inference."""

    def __init__(self, config: PortraitGANConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else PortraitGANConfig()
        self.generator = Generator(self.config)

    def forward(
        self,
        image: torch.Tensor,
        landmark_map: torch.Tensor,
        modality: torch.Tensor,
        source_landmarks: torch.Tensor | None = None,
        target_landmarks: torch.Tensor | None = None,
        return_mask: bool = False,
        *,
        source_modality: torch.Tensor | None = None,
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], torch.Tensor | None]:
        """G's forward pass (see :meth:`Generator.forward`)."""
        return self.generator(
            image,
            landmark_map,
            modality,
            source_landmarks,
            target_landmarks,
            return_mask,
            source_modality=source_modality,
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def generate(
        self,
        images: ImageLike,
        landmark_maps: torch.Tensor | np.ndarray,
        modality: str | int | list[str | int] | torch.Tensor,
        source_landmarks: torch.Tensor | np.ndarray | None = None,
        target_landmarks: torch.Tensor | np.ndarray | None = None,
        *,
        source_modality: str | int | list[str | int] | torch.Tensor | None = None,
    ) -> torch.Tensor | Image.Image | list[Image.Image]:
        """G(images | landmark_maps, modality) at full resolution, without gradients.

        ``images``: (B,3,H,W) tensor in [-1, 1], or PIL image(s) of the model's size.
        ``landmark_maps``: (B,1,H,W) or (H,W) map in [0, 1] (see ``faces.landmark_map``).
        ``modality``: the target modality, by name or index, one for all or one per image; or a float
        tensor of condition weights (n,) or (B, n), e.g. ``(1 - s) c_source + s c_target``.
        ``source_landmarks``/``target_landmarks``: (B, 68, 2) or (68, 2) pixel-index points of the
        images' size, for a ``warp_guided`` model (ignored otherwise; without them it does not warp).
        ``source_modality``: the images' own modality, given like ``modality`` (None: the model's
        first, usually ``photo``); a ``conversion_gate`` model uses it (ignored otherwise).
        Returns a tensor in [-1, 1] for tensor input, PIL image(s) for PIL input. Raises
        ``TypeError``/``ValueError`` naming the argument that is of the wrong type or shape.
        """
        pil_input = not isinstance(images, torch.Tensor)
        single = isinstance(images, Image.Image)
        if (
            pil_input
            and not single
            and not (isinstance(images, (list, tuple)) and images and all(isinstance(i, Image.Image) for i in images))
        ):
            raise TypeError(
                f"images must be a (B, 3, H, W) tensor, a PIL image or a list of them, got {type(images).__name__}"
            )
        batch = pil_to_tensor(images) if pil_input else images
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(batch.shape)}")
        try:
            maps = torch.as_tensor(landmark_maps, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"landmark_maps must be a tensor or array in [0, 1], got {type(landmark_maps).__name__}"
            ) from None
        while maps.ndim < 4:
            maps = maps.unsqueeze(0)
        maps = maps.expand(batch.shape[0], -1, -1, -1)
        if maps.shape[-2:] != batch.shape[-2:]:
            raise ValueError(f"landmark map size {tuple(maps.shape[-2:])} != image size {tuple(batch.shape[-2:])}")
        output = self.infer(
            batch, maps, modality, source_landmarks, target_landmarks, source_modality=source_modality
        ).images[0]
        if not pil_input:
            return output
        pictures = tensor_to_pil(output)
        return pictures[0] if single else pictures

    def infer(
        self,
        images: torch.Tensor,
        landmark_maps: torch.Tensor,
        modality: str | int | list[str | int] | torch.Tensor,
        source_landmarks: torch.Tensor | np.ndarray | None = None,
        target_landmarks: torch.Tensor | np.ndarray | None = None,
        *,
        source_modality: str | int | list[str | int] | torch.Tensor | None = None,
    ) -> GeneratorOutput:
        """One pass of G without gradients, with its colour, mask and warp (see :meth:`Generator.infer`).

        ``images`` (B,3,H,W) in [-1, 1] and ``landmark_maps`` (B,1,H,W) in [0, 1] at the model's size;
        landmarks and ``source_modality`` as in :meth:`generate`.
        """
        indices = self._modality_indices(modality, images.shape[0])
        sources = None if source_modality is None else self._modality_indices(source_modality, images.shape[0])
        points = []
        for landmarks in (source_landmarks, target_landmarks):
            if landmarks is None:
                points.append(None)
                continue
            tensor = landmarks if isinstance(landmarks, torch.Tensor) else torch.from_numpy(np.float32(landmarks))
            if tensor.ndim == 2:
                tensor = tensor[None]
            if tensor.shape[1:] != (68, 2):
                raise ValueError(f"landmarks must be (B, 68, 2) or (68, 2), got {tuple(tensor.shape)}")
            points.append(tensor.float().expand(images.shape[0], -1, -1).to(self.device))
        with torch.inference_mode():
            return self.generator.infer(
                images.to(self.device, self.dtype),
                landmark_maps.to(self.device, self.dtype),
                indices.to(self.device),
                *points,
                source_modality=None if sources is None else sources.to(self.device),
            )

    def edit(self, photo: Any, request: EditRequest | None = None, **options: Any) -> Image.Image:
        """Edit one face of a photo; by default the full-resolution photo with the edit composed in.

        ``photo``: a path, bytes, binary file object, PIL image or uint8 array. The edit is an
        :class:`~portraitgan_hub.edit_request.EditRequest`, or its fields as keyword ``options``:
        ``modality`` (default the model's first, ``photo``), ``modality_strength`` (0..1: G is
        conditioned on ``(1 - s) c_input + s c_target``), ``input_modality``, ``face`` (0 =
        largest), ``min_face`` (px), ``reference`` (a photo whose expression the face takes on) with
        ``reference_strength`` (0..1.5) and ``reference_parts``, ``landmarks`` (explicit target
        points in photo pixels, ``(68, 2)`` or ``(N, 68, 2)``), ``moves`` (``{index: (x, y)}`` in crop
        pixels), ``output`` (``"photo"``, ``"crop"``: the aligned crop at ``config.image_size``,
        ``"portrait"``: the aligned portrait at twice that) and the expression controls by name, each
        a float where 0 changes nothing, within its row of
        ``portraitgan_hub.faces.expressions.CONTROL_RANGES`` (``smile``, ``mouth_open``, ``eye_open``,
        ``brow_raise``, ``aaa``, ``roll`` in degrees, ...). ``paste_back=False`` and
        ``portrait=True`` are the older spellings of ``output``.

        Faces are detected once per photo and cached, so repeated edits of one photo are fast. A
        change of modality converts the whole picture, not only the face
        (``portraitgan_hub.conversion.convert_picture``); for a stylized input where the detector
        finds no face, the model converts the picture to a photo to find it.

        The result has the input's size, and its mode when that was ``RGBA`` or ``LA`` (the alpha
        channel is the input's, untouched); ``result.info`` carries the input's ICC profile and EXIF
        (orientation removed), which ``portraitgan_hub.io_utils.save_photo`` writes. An animated
        input is edited on frame 0 and a ``UserWarning`` says the other frames are dropped.

        Raises ``TypeError``/``ValueError`` naming a bad option, ``ImageLoadError``, ``NoFaceError``
        (naming the smallest face size searched for) or ``FaceIndexError``.
        """
        return self.face_editor.edit(photo, request, **options)

    def edit_many(self, photos: Any, request: EditRequest | None = None, **options: Any) -> Iterator[EditOutcome]:
        """Edit many photos with the same request (or options, as :meth:`edit`), one by one.

        Returns an iterator of ``EditOutcome(source, image, error, warnings)``, one per photo in
        order: a photo that fails (no face, unreadable, ...) has ``error`` set and the others go on.
        The model and the face detector are loaded once.
        """
        return self.face_editor.edit_many(photos, request, **options)

    @property
    def face_editor(self) -> FaceEditor:
        """The :class:`~portraitgan_hub.editor.FaceEditor` behind :meth:`edit` (created on first use;
        it keeps the face cache)."""
        if self.__dict__.get("_face_editor") is None:
            self.__dict__["_face_editor"] = FaceEditor(self)
        return self.__dict__["_face_editor"]

    def _modality_indices(self, modality: Any, batch_size: int) -> torch.Tensor:
        """(B,) indices, or (B, n) weights for a float tensor of condition vectors (1 or B rows)."""
        if isinstance(modality, torch.Tensor) and modality.is_floating_point():
            weights = modality.float().reshape(-1, modality.shape[-1])
            if weights.shape[-1] != self.config.num_modalities or weights.shape[0] not in (1, batch_size):
                raise ValueError(
                    f"modality weights must be (n,), (1, n) or (B, n) with n = {self.config.num_modalities}, "
                    f"got {tuple(modality.shape)}"
                )
            return weights.expand(batch_size, -1)
        if isinstance(modality, torch.Tensor):
            return modality.long().expand(batch_size) if modality.ndim == 0 else modality.long()
        if isinstance(modality, (list, tuple)):
            if len(modality) != batch_size:
                raise ValueError(f"{len(modality)} modalities for {batch_size} images")
            return torch.tensor([self.config.modality_index(m) for m in modality])
        return torch.full((batch_size,), self.config.modality_index(modality), dtype=torch.long)

    # --- Hub: save -----------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> str | None:  # type: ignore[override]
        """Write ``config.json``, ``model.safetensors`` and ``README.md`` (model card), each atomically.

        Accepts the mixin's keyword arguments (``push_to_hub``, ``repo_id``, ``model_card_kwargs``);
        ``model_card_kwargs`` may carry ``training_config`` and ``metrics`` for the card. Like the
        mixin, an existing ``README.md`` is kept, unless ``model_card_kwargs`` are given: then the card
        is rendered anew, so that a re-export never keeps stale metrics.
        """
        replace_card = bool(kwargs.get("model_card_kwargs"))
        card_kwargs = {
            "image_size": self.config.image_size,
            "modalities": ", ".join(self.config.modalities),
            "config_json": self.config.to_json(),
            **(kwargs.pop("model_card_kwargs", None) or {}),
        }
        kwargs.setdefault("config", self.config)
        target = Path(save_directory)
        target.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target))
        try:
            super().save_pretrained(staging, model_card_kwargs=card_kwargs, **{**kwargs, "push_to_hub": False})
            for item in staging.iterdir():
                if item.name == "README.md" and (target / "README.md").exists() and not replace_card:
                    continue  # like the mixin: never overwrite a hand-written card
                os.chmod(item, default_file_mode())  # safetensors writes its file 0600
                os.replace(item, target / item.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if kwargs.get("push_to_hub"):
            push_kwargs = {k: v for k, v in kwargs.items() if k not in ("push_to_hub", "repo_id", "config")}
            return self.push_to_hub(kwargs.get("repo_id") or target.name, model_card_kwargs=card_kwargs, **push_kwargs)
        return None

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The mixin's card, plus ``base_model`` in its YAML header when ``model_card_kwargs`` name one."""
        info = self._hub_mixin_info
        card_data = ModelCardData(**info.model_card_data.to_dict())
        if kwargs.get("base_model"):
            card_data.base_model = str(kwargs["base_model"])
        return ModelCard.from_template(
            card_data=card_data,
            template_str=info.model_card_template,
            repo_url=info.repo_url,
            paper_url=PAPER_URL,
            docs_url=info.docs_url,
            **kwargs,
        )

    def _save_pretrained(self, save_directory: Path) -> None:
        state = {key: value.detach().contiguous().cpu() for key, value in self.state_dict().items()}
        save_file(state, str(save_directory / WEIGHTS_NAME), metadata={"format": "pt", "library": "portraitgan-hub"})

    # --- Hub: load -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any) -> PortraitGAN:  # type: ignore[override]
        """Load from a local folder or a Hub id (``revision=`` supported; offline from the HF cache).

        Loading is strict: missing, unexpected or mis-shaped tensors raise :class:`CheckpointError`.
        """
        if not isinstance(pretrained_model_name_or_path, (str, os.PathLike)):
            raise TypeError(
                "pretrained_model_name_or_path must be a folder or a Hub id, "
                f"got {type(pretrained_model_name_or_path).__name__}"
            )
        source = str(pretrained_model_name_or_path)
        if os.path.isdir(source) and not os.path.isfile(os.path.join(source, CONFIG_NAME)):
            refuse_folder_without(source, CONFIG_NAME)
        if os.path.isdir(source):
            read_config_file(Path(source) / CONFIG_NAME)  # a damaged config.json is named before anything loads
        if not os.path.isdir(source) and (isinstance(pretrained_model_name_or_path, Path) or looks_like_path(source)):
            raise CheckpointError(f"could not load a PortraitGAN model from {source!r}: no such folder")
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except json.JSONDecodeError as error:
            raise CheckpointError(
                f"{CONFIG_NAME} of {source!r} is not valid JSON ({error.msg} at line {error.lineno} column "
                f"{error.colno}); expected {CONFIG_EXPECTED}"
            ) from None
        except (EntryNotFoundError, HfHubHTTPError, HFValidationError, OSError) as error:
            if isinstance(error, CheckpointError):
                raise
            raise CheckpointError(f"could not load a PortraitGAN model from {source!r}: {error}") from error

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        config: PortraitGANConfig | None = None,
        **model_kwargs: Any,
    ) -> PortraitGAN:
        if config is None:  # huggingface-hub < 1.0 gets here when the download of config.json failed
            where = "it is not a PortraitGAN checkpoint" if os.path.isdir(model_id) else "not found (nor in the cache)"
            raise CheckpointError(f"could not load a PortraitGAN model from {model_id!r}: no {CONFIG_NAME}, {where}")
        if isinstance(config, dict):
            config = config_from_data(config, f"{CONFIG_NAME} of {model_id!r}")
        model = cls(config)
        if os.path.isdir(model_id):
            weights = Path(model_id) / WEIGHTS_NAME
            if not weights.is_file():
                refuse_folder_without(model_id, WEIGHTS_NAME)
        else:
            download = dict(
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
            try:
                weights = Path(hf_hub_download(repo_id=model_id, filename=WEIGHTS_NAME, **download))
            except (EntryNotFoundError, LocalEntryNotFoundError) as error:
                pickles = [
                    name
                    for name in PICKLE_NAMES
                    if isinstance(try_to_load_from_cache(model_id, name, cache_dir=cache_dir, revision=revision), str)
                ]
                raise CheckpointError(pickle_refusal(model_id, pickles) if pickles else str(error)) from error
        model.load_weights(weights, strict=strict)
        model.to(map_location)
        model.eval()
        return model

    def load_weights(self, path: str | Path, strict: bool = True) -> None:
        """Load a ``model.safetensors``; strict by default, every mismatch named in the
        :class:`CheckpointError` (``checkpoint_files.read_weights``)."""
        state = read_weights(path, self.state_dict(), strict)
        self.load_state_dict(state, strict=strict)
