"""Sliders combine sanely: every control alone keeps its whole range, and a mix that would tear the
face is scaled back to one combined limit (``stages.EXPRESSION_LIMIT``), with a warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.editor import LIMIT_REACHED
from portraitgan_hub.faces.expressions import CONTROL_RANGES, EXPRESSION_NAMES, ExpressionControls
from portraitgan_hub.stages import EXPRESSION_LIMIT, edited_landmarks, limit_expression

EVERY_CONTROL_AT_ITS_MAXIMUM = dict(
    smile=2, face_slim=1.5, mouth_width=1.5, mouth_open=1.5, eye_open=1.5, brow_raise=1.5, brow_furrow=1.5,
    aaa=1.5, eee=1.5, woo=1.5, roll=20,
)  # fmt: skip


@pytest.fixture(scope="module")
def demo() -> PortraitGAN:
    return PortraitGAN.from_pretrained(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def aligned(demo, london_photo):
    return demo.face_editor.align(london_photo("001", "neutral"))


@pytest.mark.parametrize("name", EXPRESSION_NAMES)
def test_each_control_alone_keeps_its_whole_range(aligned, name):
    row = CONTROL_RANGES[name]
    for value in (row.minimum, row.maximum):
        points, limited = edited_landmarks(aligned, ExpressionControls(**{name: value}))
        assert not limited, f"{name}={value} reached the combined limit"
        assert np.allclose(points, ExpressionControls(**{name: value}).apply(aligned.landmarks), atol=1e-4)


def test_every_control_at_its_maximum_is_scaled_back_to_the_limit(aligned):
    controls = ExpressionControls(**EVERY_CONTROL_AT_ITS_MAXIMUM)
    unlimited = controls.apply(aligned.landmarks)
    points, limited = edited_landmarks(aligned, controls)
    assert limited
    again, _ = limit_expression(aligned.landmarks, points)
    box = np.ptp(aligned.landmarks, axis=0).max()
    assert np.abs(again - points).max() < 0.05 * EXPRESSION_LIMIT * box  # at the limit now (to 5 %)
    assert np.abs(points - unlimited).max() > 10  # it was far beyond (0.65 of the box, 3.6 times the limit)


def test_the_editor_warns_when_the_limit_is_reached_and_the_face_does_not_tear(demo, london_photo):
    photo = london_photo("001", "neutral")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        demo.edit(photo, smile=2)
    assert not [w for w in caught if LIMIT_REACHED in str(w.message)]
    editor = demo.face_editor
    prepared = editor.prepare(photo)
    with pytest.warns(UserWarning, match="scaled back to the limit"):
        plan = editor.plan(prepared, editor_request(EVERY_CONTROL_AT_ITS_MAXIMUM))
    rendering = editor.render(prepared, plan)
    # No fold: the composition's map p -> p + flow(p) keeps a positive Jacobian everywhere.
    flow = rendering.displacement[0].double()  # (2, g, g), normalised units, g cells over 2 units
    cell = 2.0 / flow.shape[-1]
    dx = torch.diff(flow, dim=2)[:, :-1, :] / cell
    dy = torch.diff(flow, dim=1)[:, :, :-1] / cell
    jacobian = (1 + dx[0]) * (1 + dy[1]) - dx[1] * dy[0]
    assert float(jacobian.min()) > 0.05
    # Nothing changes beyond the edit's region: well below the chin and outside the crop.
    result = editor.compose(prepared, plan, rendering)
    change = np.abs(np.asarray(result, np.int16) - np.asarray(Image.open(photo).convert("RGB"), np.int16)).max(2)
    chin = prepared.aligned.face.landmarks[8, 1]
    height = np.ptp(prepared.aligned.face.landmarks[:, 1])
    assert change[int(chin + 0.45 * height) :].max() <= 2


def editor_request(controls: dict[str, float]):
    from portraitgan_hub.edit_request import EditRequest

    return EditRequest(controls=ExpressionControls(**controls))
