"""Warnings where an edit's result will be poor, and the small-face fallback they announce.

The editor (:meth:`portraitgan_hub.editor.FaceEditor.plan`) asks :func:`plan_notes` what to say
about one edit, emits each note as a :class:`PoorResultWarning` (a ``UserWarning``: ``edit_many``
collects it into ``EditOutcome.warnings``, the CLI prints it on stderr, the app on its status line)
and keeps the notes on the plan. Three checks, each cheap (about a millisecond per face on the
aligned crop the editor already has, on one CPU core):

- a face under :data:`MIN_DRAWN_FACE_PX` (:func:`face_side_px`): G would draw on an upsampled,
  blurred crop (a flat pink patch over the mouth of a 61 px face), so the edit is made by the warp
  alone and G's colour is not used (:func:`draws_on`, :func:`warp_only`);
- an input that looks like a line drawing (:func:`looks_like_drawing`) edited as a photo;
- a reference photo that looks like a drawing, whose landmarks may then be wrong.

Glasses and occluders (a hand or a microphone over the mouth) are not detected: no cheap measure
separated them reliably (see ``model_card.md``'s limits).

The notes use the library's spelling of an option (``input_modality="sketch"``); :func:`cli_wording`
and :func:`app_wording` turn it into the CLI's (``--from sketch``) and the app's (``say "Input is:
sketch"``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from portraitgan_hub.composition import compose
from portraitgan_hub.faces.alignment import DEFAULT_FEATHER, Alignment
from portraitgan_hub.faces.image_io import source_name

if TYPE_CHECKING:
    from portraitgan_hub.config import PortraitGANConfig
    from portraitgan_hub.edit_plan import PreparedPhoto
    from portraitgan_hub.edit_request import EditRequest
    from portraitgan_hub.stages import AlignedFace, Rendering


class PoorResultWarning(UserWarning):
    """An edit that runs, but whose result will be poor or differ from what was asked (a note for the user)."""


#: Faces whose landmark box side (photo pixels, :func:`face_side_px`) is smaller than this are
#: edited by the warp alone, with nothing drawn by G. For the 256 px models the box spans 142 crop
#: pixels (``DEFAULT_MARGIN`` 0.4), so below 100 px G sees the face upsampled more than 1.4 times.
#: Looked at with the previous (``lite``) demo model (``smile=1, mouth_open=1`` on a London face JPEG-compressed
#: at 58, 72, 86, 103 and 120 px): at 58 px the drawn mouth is a flat pink patch with hard, blocky
#: edges, at 72-86 px a grid-textured blob; from about 100 px it has the model's ordinary look.
MIN_DRAWN_FACE_PX = 100.0


def face_side_px(alignment: Alignment, margin: float) -> float:
    """The face's landmark box side in photo pixels, as the alignment fits it (rotation does not
    change it): the canonical face's box spans ``crop_size / (1 + 2 * margin)`` crop pixels
    (``faces.alignment.template_in_crop``) and ``alignment.scale`` is crop pixels per photo pixel."""
    return alignment.crop_size / (1.0 + 2.0 * margin) / alignment.scale


def draws_on(side_px: float) -> bool:
    """Whether G may draw (use its colour) on a face whose landmark box side is ``side_px`` photo px."""
    return side_px >= MIN_DRAWN_FACE_PX


# --- does it look like a drawing? --------------------------------------------------------------------
#: The aligned crop is measured at this size (crop pixels); the thresholds below were set there.
MEASURE_SIZE = 256
#: Luma (0..255, ITU-R 601 as Pillow's ``convert("L")``) from which a pixel counts as paper white.
WHITE_LUMA = 200
#: Side (measure pixels) of the square closing of :func:`line_share`: dark marks thinner than this
#: count as lines.
LINE_KERNEL = 5
#: :func:`looks_like_drawing`'s thresholds on the face's landmark box (see :class:`DrawingMeasure`).
#: Calibrated on the 13 London photos of ``tests/assets`` (``london`` and ``london_subset``), each as
#: it is, brightened x1.6, at 160 px in JPEG quality 25, and grey: as it is, at contrast x1.8,
#: brightened x1.3 (high-key) and x1.5 (blown out), at 160 px in JPEG 25; and matplotlib's
#: ``grace_hopper.jpg`` the same ways. Against them: a PIL line doodle (black strokes on white, also
#: in JPEG 60) and the London photos edge-detected (Pillow's ``FIND_EDGES`` inverted, also in JPEG
#: 60 and thresholded to black on white; dlib finds a face on 22 of these 39 edge maps). Figures:
#:
#: - chroma: 13.3-17.8 for the London photos in colour (Grace Hopper 38.1), 0 for grey ones and drawings;
#: - white share: 0.05-0.10 for the photos as they are, up to 0.51 high-key and 0.76 brightened
#:   x1.6 | 0.71-0.98 for the drawings;
#: - line share: 0.03-0.075 for the London photos (in colour or grey), at most 0.15 high-key, 0.27
#:   for the worst London photo (brightened x1.6) and 0.39 for the worst of all (Grace Hopper, grey,
#:   x1.5) | 0.80-1.00 for the drawings.
#:
#: No photo is flagged and every drawing is. Colour-dodge pencil sketches (``train.stylize``'s
#: ``sketch``, white 0.56-0.70, lines 0.14-0.27) measure like a blown-out grey photo and are not
#: flagged: shaded drawings are beyond this measure, ink and pen line drawings are what it finds.
#: Nor is a cartoon (chroma 10.7-15.0), nor a drawing on which no face is found (the edit then
#: stops with ``NoFaceError``).
MAX_CHROMA = 6.0
MIN_WHITE_SHARE = 0.5
MIN_LINE_SHARE = 0.5


@dataclass(frozen=True)
class DrawingMeasure:
    """What :func:`drawing_measure` finds in a face's landmark box.

    ``chroma``: the mean absolute difference of R, G and B from their mean, in levels (0..255; 0 for
    a grey picture). ``white_share``: the share of pixels with luma of at least :data:`WHITE_LUMA`
    (0..1). ``line_share``: :func:`line_share` (0..1).
    """

    chroma: float
    white_share: float
    line_share: float

    @property
    def looks_like_drawing(self) -> bool:
        """Almost no colour, mostly paper white, its darkness mostly in thin lines."""
        return self.chroma <= MAX_CHROMA and self.white_share >= MIN_WHITE_SHARE and self.line_share >= MIN_LINE_SHARE


def line_share(grey: Image.Image) -> float:
    """The share of a grey (mode ``L``) picture's darkness (``255 - luma``, summed) that lies in marks
    thinner than :data:`LINE_KERNEL` pixels: the black top-hat (a square closing minus the picture)
    summed, over the darkness summed. Near 1 for a line drawing, under 0.1 for a photo, whose dark
    parts (hair, brows, shadows) are broad tones. 0 for an all-white picture."""
    pixels = np.asarray(grey, np.float32)
    darkness = float((255.0 - pixels).sum())
    closed = _square_filter(_square_filter(pixels, LINE_KERNEL, np.maximum), LINE_KERNEL, np.minimum)
    return 0.0 if darkness <= 0 else float((closed - pixels).sum()) / darkness


def _square_filter(pixels: np.ndarray, size: int, reduce: np.ufunc) -> np.ndarray:
    """A (H, W) array's running max or min (``reduce``: ``np.maximum`` / ``np.minimum``) over odd
    ``size`` x ``size`` squares, edges repeated: Pillow's ``MaxFilter`` / ``MinFilter``, pixel for
    pixel, in two separable passes (70 times faster on a face box)."""
    reach = size // 2
    padded = np.pad(pixels, reach, mode="edge")
    height, width = pixels.shape
    rows = reduce.reduce([padded[:, i : i + width] for i in range(size)])
    return reduce.reduce([rows[i : i + height] for i in range(size)])


def drawing_measure(crop: Image.Image, landmarks: np.ndarray) -> DrawingMeasure:
    """Measure the face of an aligned ``crop`` (square RGB, any size; resized to :data:`MEASURE_SIZE`)
    within the box of its (68, 2) ``landmarks`` (crop pixels). ``ValueError`` for a crop that is not
    square or landmarks whose box is empty."""
    if crop.width != crop.height:
        raise ValueError(f"the aligned crop must be square, got {crop.size}")
    factor = MEASURE_SIZE / crop.width
    if crop.width != MEASURE_SIZE:
        crop = crop.resize((MEASURE_SIZE, MEASURE_SIZE), Image.Resampling.BILINEAR)
    points = (np.asarray(landmarks, np.float64) + 0.5) * factor - 0.5
    left, top = np.clip(np.floor(points.min(axis=0)), 0, MEASURE_SIZE).astype(int)
    right, bottom = np.clip(np.ceil(points.max(axis=0)) + 1, 0, MEASURE_SIZE).astype(int)
    if right - left < 2 or bottom - top < 2:
        raise ValueError(f"the landmarks' box ({left}, {top}, {right}, {bottom}) holds no face")
    face = crop.convert("RGB").crop((int(left), int(top), int(right), int(bottom)))
    rgb = np.asarray(face, np.float32)
    grey = face.convert("L")
    return DrawingMeasure(
        chroma=float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean()),
        white_share=float((np.asarray(grey) >= WHITE_LUMA).mean()),
        line_share=line_share(grey),
    )


def looks_like_drawing(crop: Image.Image, landmarks: np.ndarray) -> bool:
    """Whether the face of an aligned crop looks like a line drawing (:class:`DrawingMeasure`)."""
    return drawing_measure(crop, landmarks).looks_like_drawing


def drawing_modality(config: PortraitGANConfig) -> str | None:
    """The modality a drawing should be given as: ``sketch`` if the model has it, else its first grey
    modality (``config.achromatic_modalities``), else None."""
    if "sketch" in config.modalities:
        return "sketch"
    return next(iter(config.achromatic_modalities), None)


# --- the notes -----------------------------------------------------------------------------------
def small_face_note(side_px: float, warps: bool, moves: bool, converts: bool) -> str:
    """What an edit of a face of ``side_px`` photo pixels (under :data:`MIN_DRAWN_FACE_PX`) does
    instead: ``warps``, G has a warp; ``moves``, the edit moves landmarks; ``converts``, it changes
    modality, and the whole picture, face included, is converted (``conversion.convert_picture``)."""
    if not moves:
        done = "nothing drawn on it"
    elif warps:
        done = "edited by the warp alone, nothing drawn"
    else:
        done = "its expression left as it is (this model has no warp), nothing drawn"
    note = f"the face is only {side_px:.0f} px wide: {done} (give a larger face for a drawn mouth)"
    return note + ("; it is converted with the rest of the picture" if converts else "")


def drawing_input_note(name: str, modality: str | None) -> str:
    """The note for an input named ``name`` that looks like a drawing but is edited as a photo."""
    if modality is None:
        return f"{name} looks like a drawing (almost no colour, mostly lines), but this model edits it as a photo"
    return f'{name} looks like a {modality} (almost no colour, mostly lines): add input_modality="{modality}"'


def drawing_reference_note(name: str) -> str:
    """The note for a reference photo named ``name`` that looks like a drawing."""
    return (
        f"the reference photo {name} looks like a drawing (almost no colour, mostly lines): the landmarks "
        "found on it, and so the expression taken from it, may be wrong"
    )


def plan_notes(
    config: PortraitGANConfig,
    prepared: PreparedPhoto,
    request: EditRequest,
    margin: float,
    target: np.ndarray,
    converts: bool,
    no_op: bool,
    reference: AlignedFace | None = None,
) -> tuple[str, ...]:
    """The notes of one edit plan, in the order the user meets the problems: the input looks like a
    drawing but is edited as a photo (``request.input_modality`` the model's first), the
    ``reference`` face (``request.reference`` aligned) looks like a drawing, the face is too small to
    draw on (not for a ``no_op``, where nothing is drawn anyway). ``margin``: the editor's alignment
    margin; ``target``: the (68, 2) target landmarks in crop pixels; ``converts``: the edit changes
    modality."""
    aligned = prepared.aligned
    as_photo = request.input_modality is None or config.modality_index(request.input_modality) == 0
    notes = []
    if as_photo and looks_like_drawing(aligned.crop, aligned.landmarks):
        notes.append(drawing_input_note(prepared.name, drawing_modality(config)))
    if reference is not None and looks_like_drawing(reference.crop, reference.landmarks):
        notes.append(drawing_reference_note(source_name(request.reference)))
    side = face_side_px(aligned.alignment, margin)
    if not no_op and not draws_on(side):
        moves = not np.allclose(np.asarray(target, np.float64), aligned.landmarks, atol=1e-3)
        notes.append(small_face_note(side, config.warp_guided, moves, converts))
    return tuple(notes)


def warp_only(rendering: Rendering, crop: Image.Image, feather: float = DEFAULT_FEATHER) -> Rendering:
    """The small-face fallback: ``rendering`` with G's colour unused. The mask A is 1 everywhere, so
    :func:`~portraitgan_hub.composition.compose` puts in the photo warped by the rendering's flow at
    full resolution and nothing else; the rendering's crop becomes the aligned ``crop`` (square RGB,
    the model's size) warped the same way (unchanged where there is no flow, i.e. for a G without a
    warp), blended with the ``feather`` ramp as the composition blends it into the photo."""
    copying = dataclasses.replace(rendering, mask=torch.ones_like(rendering.colour[:, :1]))
    identity = Alignment(matrix=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), crop_size=crop.width)
    return dataclasses.replace(copying, crop=compose(crop, identity, copying, feather))


_OPTION = re.compile(r'add input_modality="([^"]+)"')


def cli_wording(note: str) -> str:
    """A note as the command line says it: ``add input_modality="sketch"`` becomes ``add --from sketch``."""
    return _OPTION.sub(r"add --from \1", note)


def app_wording(note: str) -> str:
    """A note as the app says it: ``add input_modality="sketch"`` becomes ``say "Input is: sketch"``."""
    return _OPTION.sub(r'say "Input is: \1"', note)
