"""The paired training dataset: tuple shapes and ranges, same identity, flip, determinism, workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from portraitgan_hub.faces.landmarks import LandmarkDetector
from portraitgan_hub.image_tensors import tensor_to_pil
from train.dataset import Augmentation, PairedPortraitDataset
from train.prepare import PrepareConfig, prepare

ASSETS = Path(__file__).parent / "assets" / "london_subset"
MODALITIES = ["photo", "sketch", "cartoon"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dataset") / "prepared"
    prepare(PrepareConfig(str(ASSETS), str(out), size=128, val_fraction=0.25, workers=2), progress=False)
    return out


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def test_tuple_shapes_ranges_and_identity(root: Path) -> None:
    dataset = PairedPortraitDataset(root, MODALITIES, split="train", image_size=64, line_width=1)
    assert len(dataset) == 3 * 2 * 3  # 3 train identities x 2 expressions x 3 modalities
    seen_pairs = set()
    for index in range(len(dataset)):
        sample = dataset[index]
        a, b = dataset.plan(index).row_a, dataset.plan(index).row_b
        assert dataset.rows[a]["identity"] == dataset.rows[b]["identity"] == sample["identity"]
        assert a != b
        seen_pairs.add((dataset.rows[a]["modality"], dataset.rows[b]["modality"]))
        for side in "ab":
            image, landmark_map = sample[f"image_{side}"], sample[f"landmarks_map_{side}"]
            assert image.shape == (3, 64, 64) and image.dtype == torch.float32
            assert -1 <= image.min() and image.max() <= 1
            assert landmark_map.shape == (1, 64, 64) and 0 <= landmark_map.min() and landmark_map.max() == 1
            assert sample[f"modality_{side}"].dtype == torch.long
            assert MODALITIES[sample[f"modality_{side}"]] == dataset.rows[a if side == "a" else b]["modality"]
            assert sample[f"landmarks_{side}"].shape == (68, 2)
    assert len(seen_pairs) > 3, "pairs should mix modalities"
    val = PairedPortraitDataset(root, MODALITIES, split="val")
    assert {r["identity"] for r in val.rows}.isdisjoint({r["identity"] for r in dataset.rows})
    with pytest.raises(ValueError, match="painting"):
        PairedPortraitDataset(root, ["photo", "painting"])


def test_flip_mirrors_landmarks_like_a_detector_sees_them(root: Path) -> None:
    dataset = PairedPortraitDataset(root, ["photo"], split=None, flip_probability=1.0)
    detector = LandmarkDetector()
    for index in range(0, len(dataset), 3):
        sample = dataset[index]
        flipped = tensor_to_pil(sample["image_a"][None])[0]
        found = detector.landmarks(flipped)
        mirrored = sample["landmarks_a"].numpy()
        inter_ocular = np.linalg.norm(mirrored[36:42].mean(0) - mirrored[42:48].mean(0))
        errors = np.linalg.norm(found - mirrored, axis=1)
        assert errors.mean() < 0.05 * inter_ocular, (index, errors.mean() / inter_ocular)
        # Without the index permutation, the eyes would be swapped: far off.
        assert np.linalg.norm(found[36] - mirrored[36]) < 0.1 * inter_ocular


def test_zoom_and_shift_move_landmarks_with_the_pixels(root: Path) -> None:
    dataset = PairedPortraitDataset(root, ["photo"], split=None, flip_probability=0.5, max_scale=0.1, max_shift=0.05)
    detector = LandmarkDetector()
    sample = dataset[2]
    assert dataset.plan(2).augmentation.scale != 1.0
    found = detector.landmarks(tensor_to_pil(sample["image_a"][None])[0])
    expected = sample["landmarks_a"].numpy()
    inter_ocular = np.linalg.norm(expected[36:42].mean(0) - expected[42:48].mean(0))
    assert np.linalg.norm(found - expected, axis=1).mean() < 0.05 * inter_ocular


def test_samples_are_a_pure_function_of_seed_epoch_index(root: Path) -> None:
    first = PairedPortraitDataset(root, MODALITIES, seed=7, max_scale=0.05)
    second = PairedPortraitDataset(root, MODALITIES, seed=7, max_scale=0.05)
    for epoch in (0, 3):
        first.set_epoch(epoch)
        second.set_epoch(epoch)
        for index in (5, 0, 11):  # any call order
            assert _equal(first[index], second[index])
    first.set_epoch(0)
    second.set_epoch(1)
    assert any(first.plan(i) != second.plan(i) for i in range(len(first)))
    other_seed = PairedPortraitDataset(root, MODALITIES, seed=8, max_scale=0.05)
    assert any(first.plan(i) != other_seed.plan(i) for i in range(len(first)))


def test_dataloader_workers_give_the_same_batches(root: Path) -> None:
    dataset = PairedPortraitDataset(root, MODALITIES, image_size=32, seed=1)
    dataset.set_epoch(2)

    def batches(workers: int) -> list[dict]:
        loader = DataLoader(dataset, batch_size=4, shuffle=False, num_workers=workers)
        return list(loader)

    for single, multi in zip(batches(0), batches(2), strict=True):
        assert _equal(single, multi)
        assert single["image_a"].shape == (4, 3, 32, 32) or len(single["identity"]) < 4


def test_resizing_keeps_landmarks_on_the_face(root: Path) -> None:
    full = PairedPortraitDataset(root, ["photo"], split=None, flip_probability=0.0)
    small = PairedPortraitDataset(root, ["photo"], split=None, flip_probability=0.0, image_size=64)
    scaled = (full[0]["landmarks_a"].numpy() + 0.5) / 2 - 0.5
    assert np.allclose(small[0]["landmarks_a"].numpy(), scaled, atol=1e-4)
    with Image.open(root / full.rows[0]["path"]) as stored:
        assert stored.size == (128, 128)


def test_context_window_moves_the_landmarks_with_the_picture(root: Path) -> None:
    """Issue #12: a context sample is a crop-size window of the wider context crop; its landmarks
    follow the face inside that window, and the centred window is the face crop itself."""
    dataset = PairedPortraitDataset(root, MODALITIES, split="train", flip_probability=0.0, context_ratio=1.0)
    row = next(r for r in dataset.rows if r["modality"] == "photo")
    face, face_points = dataset.load(row, Augmentation())
    centred, centred_points = dataset.load(row, Augmentation(), (0.5, 0.5))
    assert centred.size == face.size and np.allclose(centred_points, face_points)
    assert np.abs(np.asarray(centred, np.float32) - np.asarray(face, np.float32)).mean() < 4.0
    corner, corner_points = dataset.load(row, Augmentation(), (0.0, 0.0))
    free = row["context_size"] - face.width
    assert np.allclose(corner_points, face_points + free / 2)
    context = Image.open(root / row["context_path"]).convert("RGB")
    assert np.array_equal(np.asarray(corner), np.asarray(context)[: face.height, : face.width])
    sample = dataset[0]
    assert sample["context"] and dataset.plan(0).window is not None
    plain = PairedPortraitDataset(root, MODALITIES, split="train")
    assert not plain[0]["context"] and plain.plan(0).window is None


def test_modality_mixture_blends_pictures_and_condition_alike(root: Path) -> None:
    """Issue #12: side B of a mixture is the same expression in another modality at strength s: its
    image is the blend (1 - s) A + s B and its condition the same convex combination of one-hots."""
    dataset = PairedPortraitDataset(
        root, MODALITIES, split="train", flip_probability=0.0, modality_mix_ratio=1.0, image_size=64
    )
    strengths = []
    for index in range(len(dataset)):
        plan = dataset.plan(index)
        a, b = dataset.rows[plan.row_a], dataset.rows[plan.row_b]
        assert a["expression"] == b["expression"] and a["modality"] != b["modality"]
        s = plan.modality_strength
        strengths.append(s)
        sample = dataset[index]
        expected = torch.zeros(3)
        expected[MODALITIES.index(a["modality"])] += 1 - s
        expected[MODALITIES.index(b["modality"])] += s
        assert torch.allclose(sample["condition_b"], expected, atol=1e-6)
        assert torch.equal(sample["condition_a"], torch.eye(3)[MODALITIES.index(a["modality"])])
        full_a = dataset.load(a, plan.augmentation)[0]
        full_b = dataset.load(b, plan.augmentation)[0]
        blend = (1 - s) * np.asarray(full_a, np.float32) + s * np.asarray(full_b, np.float32)
        got = (sample["image_b"].permute(1, 2, 0).numpy() + 1) * 127.5
        assert np.abs(got - blend).max() < 1.5
    assert 0 < min(strengths) and max(strengths) < 1 and max(strengths) - min(strengths) > 0.3
    plain = PairedPortraitDataset(root, MODALITIES, split="train")
    assert all(plain.plan(i).modality_strength == 1.0 for i in range(len(plain)))
    with pytest.raises(ValueError, match="modality_mix_ratio"):
        PairedPortraitDataset(root, MODALITIES, modality_mix_ratio=1.5)


def test_opening_ratio_pairs_each_neutral_with_its_opened_smile(root: Path) -> None:
    """``opening_ratio``: a neutral row whose same-modality smile opens the mouth (person 006 of the
    subset; 001, 005 and 017 smile with closed lips) is paired with that smile, unsynthesised and
    unmixed, whatever else was drawn; every other row keeps the plan it had without the option."""
    extras = dict(split=None, synthetic_ratio=1.0, modality_mix_ratio=1.0, context_ratio=0.5)
    plain = PairedPortraitDataset(root, MODALITIES, **extras)
    opened = PairedPortraitDataset(root, MODALITIES, opening_ratio=1.0, **extras)
    assert {opened.rows[i]["identity"] for i in opened.opening_of} == {"006"}
    assert len(opened.opening_of) == 3  # one neutral row per modality
    for index in range(len(opened)):
        plan, before = opened.plan(index), plain.plan(index)
        a = opened.rows[index]
        if index not in opened.opening_of:
            assert plan == before, a
            continue
        b = opened.rows[plan.row_b]
        assert (a["identity"], a["modality"], a["expression"]) == (b["identity"], b["modality"], "neutral")
        assert b["expression"] == "smiling"
        assert plan.synthetic is None and plan.modality_strength == 1.0
        assert plan.augmentation == before.augmentation and plan.window == before.window
        sample = opened[index]
        assert sample["synthetic"] == "" and torch.equal(sample["condition_a"], sample["condition_b"])
    half = PairedPortraitDataset(root, MODALITIES, opening_ratio=0.5, **extras)
    assert all(half.plan(i) == plain.plan(i) for i in range(len(half)) if i not in half.opening_of)
    with pytest.raises(ValueError, match="opening_ratio"):
        PairedPortraitDataset(root, MODALITIES, opening_ratio=-0.1)
