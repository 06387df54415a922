"""The outputs of the model and the baselines on a batch of pairs, and the scores of each output."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from portraitgan_hub.composition import achromatic_share, remove_colour
from portraitgan_hub.condition import condition_vector
from portraitgan_hub.faces.identity import descriptor_distance, face_descriptor
from portraitgan_hub.faces.landmark_map import landmark_map_tensor
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.model import PortraitGAN
from portraitgan_hub.thin_plate_spline import warp_by_landmarks
from train.dataset import Augmentation, PairedPortraitDataset
from train.evaluation.pairs import METHODS, Pair
from train.evaluation.piecewise_affine import piecewise_affine_warp
from train.metrics import LandmarkScorer, landmark_nme, mean_chroma, mouth_ssim, mouth_window, mse, ssim


class Evaluator:
    """Runs the model and the baselines on pairs and scores every output (dlib models loaded once)."""

    def __init__(self, model: PortraitGAN, loader: PairedPortraitDataset) -> None:
        self.model = model
        self.loader = loader
        self.scorer = LandmarkScorer()
        self._inputs: dict[int, tuple[np.ndarray | None, np.ndarray]] = {}

    def load(self, row: int) -> tuple[torch.Tensor, np.ndarray]:
        image, points = self.loader.load(self.loader.rows[row], Augmentation())
        return pil_to_tensor(image)[0], points

    def outputs(self, pairs: list[Pair]) -> dict[str, Any]:
        """Inputs, targets, landmarks (tuples of (68, 2)) and every method's outputs of a batch.

        Images are (B, 3, H, W) tensors in [-1, 1]; ``maps`` the target landmark maps (B, 1, H, W) in [0, 1].
        """
        inputs, points_a = zip(*(self.load(p.row_a) for p in pairs))
        targets, points_b = zip(*(self.load(p.row_b) for p in pairs))
        size = inputs[0].shape[-1]
        maps = landmark_map_tensor(np.stack(points_b), size, self.model.config.landmark_line_width)
        modalities = [self.loader.rows[p.row_b]["modality"] for p in pairs]
        batch = torch.stack(inputs)
        warped = [
            piecewise_affine_warp(picture, a, b) for picture, a, b in zip(tensor_to_pil(batch), points_a, points_b)
        ]
        source, target = torch.from_numpy(np.stack(points_a)).float(), torch.from_numpy(np.stack(points_b)).float()
        return {
            "inputs": batch,
            "targets": torch.stack(targets),
            "points_a": points_a,
            "points_b": points_b,
            "maps": maps,
            "portraitgan": self._as_edited(self.model.generate(batch, maps, modalities, source, target), modalities),
            "tps_warp": warp_by_landmarks(batch, source, target),
            "warp": pil_to_tensor(warped),
            "no_edit": batch,
        }

    def _as_edited(self, outputs: torch.Tensor, modalities: list[str]) -> torch.Tensor:
        """G's outputs as the editor returns them: grey modalities (``config.achromatic_modalities``,
        e.g. ``sketch``) without colour (``composition.remove_colour``, the editor's last step)."""
        config = self.model.config
        condition = condition_vector(
            torch.tensor([config.modality_index(m) for m in modalities]), config.num_modalities
        )
        return remove_colour(outputs.float().cpu(), achromatic_share(self.model, condition))

    def score(self, pairs: list[Pair]) -> list[dict[str, Any]]:
        """Per-pair records of a batch of pairs."""
        batch = self.outputs(pairs)
        size = tuple(batch["inputs"].shape[-2:])
        records = [self._record(pair) for pair in pairs]
        for record, points in zip(records, batch["points_b"]):
            record["mouth_window"] = list(mouth_window(points, size))
        for method in METHODS:
            outputs = batch[method]
            errors = mse(outputs, batch["targets"]).tolist()
            similarity = ssim(outputs, batch["targets"]).tolist()
            mouth = mouth_ssim(outputs, batch["targets"], np.stack(batch["points_b"])).tolist()
            chroma = mean_chroma(outputs).tolist()
            for i, pair in enumerate(pairs):
                found, descriptor = self._analyse(outputs[i], pair.row_a if method == "no_edit" else None)
                source = self._input(pair.row_a, batch["inputs"][i], batch["points_a"][i])
                distance = None if descriptor is None else descriptor_distance(source, descriptor)
                records[i]["methods"][method] = {
                    "mse": errors[i],
                    "ssim": similarity[i],
                    "mouth_ssim": mouth[i],
                    "chroma": chroma[i],
                    "face_found": found is not None,
                    "nme": None if found is None else landmark_nme(found, batch["points_b"][i]),
                    "identity_distance": distance,
                }
        return records

    def _record(self, pair: Pair) -> dict[str, Any]:
        row_a, row_b = self.loader.rows[pair.row_a], self.loader.rows[pair.row_b]
        return {"kind": pair.kind, "task": pair.task, "identity": row_a["identity"], "input": row_a["path"],
                "target": row_b["path"], "methods": {}}  # fmt: skip

    def _analyse(self, image: torch.Tensor, input_row: int | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """dlib landmarks (None: no face) and identity descriptor of an output; unchanged inputs are cached."""
        if input_row is not None:
            self._input(input_row, image, None)
            found, descriptor = self._inputs[input_row]
            return found, descriptor if found is not None else None
        found = self.scorer.detect(image)
        if found is None:
            return None, None
        return found, face_descriptor(tensor_to_pil(image[None])[0], found)

    def _input(self, row: int, image: torch.Tensor, fallback: np.ndarray | None) -> np.ndarray:
        """Descriptor of input ``row``: on the landmarks dlib finds in it, else on its manifest landmarks."""
        if row not in self._inputs:
            found = self.scorer.detect(image)
            points = found if found is not None else (fallback if fallback is not None else self.load(row)[1])
            self._inputs[row] = (found, face_descriptor(tensor_to_pil(image[None])[0], points))
        return self._inputs[row][1]
