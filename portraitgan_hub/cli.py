"""``portraitgan``: ``edit`` a photo, print its ``landmarks``, ``animate`` it, or start the ``app``; every
failure a user can cause ends with exit status 2 and one line on stderr saying why."""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from portraitgan_hub.edit_request import EditRequest, check_modality_strength
from portraitgan_hub.errors import DeviceError, PortraitGANError
from portraitgan_hub.faces.expressions import CONTROL_RANGES, EXPRESSION_NAMES, REFERENCE_PARTS, ExpressionControls
from portraitgan_hub.io_utils import DEFAULT_QUALITY, atomic_write_text, check_quality, read_json, save_photo

if TYPE_CHECKING:
    from portraitgan_hub.model import PortraitGAN

EXIT_BAD_INPUT = 2
#: Entry point group of the sub-commands other distributions add (the app adds ``app``).
COMMAND_GROUP = "portraitgan.commands"

#: Negative numbers in any notation Python's float() reads (-1, -.5, -1e9, -1E-3, -inf): argparse's
#: own pattern knows only -1 and -1.5, so "--smile -1e9" would read -1e9 as an unknown option.
NEGATIVE_NUMBER = re.compile(r"^-(?:\d+\.?\d*(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?|inf(?:inity)?|nan)$", re.IGNORECASE)
MIN_FACE_HELP = (
    "smallest face (box side, px) to look for "
    "(default: as small as the detection budget allows, about 200 px in a 12 MP photo)"
)
LANDMARKS_EXPECTED = "the output of `portraitgan landmarks` or a list of 68 [x, y] points"


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that reads every negative number as a value, never as an option, and
    reports a usage error in one line."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER  # no option of ours looks like a number

    def error(self, message: str) -> NoReturn:
        """One line on stderr and exit status 2, where argparse would print the whole usage block first."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str) -> float:
    """An expression control's value: any float notation; range and finiteness are checked later."""
    return float(text)


_number.__name__ = "number"  # argparse's message: "invalid number value: 'x'"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_positive_int.__name__ = "positive integer"


def _strength(text: str) -> float:
    return check_modality_strength(float(text))


_strength.__name__ = "number in [0, 1]"  # argparse: "argument --strength: invalid number in [0, 1] value: '2'"


def _device(text: str) -> str:
    """``--device``: one this torch build and machine have ("argument --device: CUDA is not available ...")."""
    from portraitgan_hub.devices import check_device

    try:
        return str(check_device(text))
    except DeviceError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


#: File and folder arguments: ``~`` expanded (a quoted ``"~/x"`` or ``--opt=~/x`` reaches us as is).
_path = os.path.expanduser


def _image(text: str) -> str:
    """An image argument: a local path (``~`` expanded); a URL is refused while parsing."""
    from portraitgan_hub.faces.image_io import URL_REFUSED, is_url

    if is_url(text):
        raise argparse.ArgumentTypeError(f"{text}: {URL_REFUSED}")
    return _path(text)


def _edit(args: argparse.Namespace) -> int:
    from portraitgan_hub.default_model import load_model

    # Out-of-range values fail here, before the model loads.
    expression = ExpressionControls.from_dict({name: getattr(args, name) for name in EXPRESSION_NAMES})
    check_quality(args.quality, "--quality")
    inputs = _edit_inputs(args)
    batch = len(inputs) > 1 or args.input_dir is not None
    if batch and args.landmarks:
        raise ValueError("--landmarks holds one photo's points: edit that photo alone")
    if batch and Path(args.output).suffix and not Path(args.output).is_dir():
        raise ValueError(f"-o {args.output}: with several photos -o names a folder, not a file")
    landmarks = _read_landmarks(Path(args.landmarks), args.face) if args.landmarks else None
    request = EditRequest(  # every option is checked here, before the model loads
        modality=args.modality,
        input_modality=getattr(args, "from"),
        modality_strength=args.strength,
        face=args.face,
        min_face=args.min_face,
        controls=expression,
        reference=args.reference,
        reference_strength=args.reference_strength,
        reference_parts=args.reference_parts,
        landmarks=landmarks,
        output="portrait" if args.portrait else "photo" if args.paste_back else "crop",
    )
    if not batch:
        output = Path(args.output)
        if output.is_dir() or args.output.endswith(("/", "\\")):
            output = _output_names(inputs, output)[0]
        elif _same_file(output, inputs[0]):
            raise ValueError(f"-o {args.output} is the input photo itself: choose another output name")
    model = load_model(args.model, map_location=args.device)
    if not batch:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            result = model.edit(inputs[0], request)
        _warn(str(w.message) for w in caught if issubclass(w.category, UserWarning))
        _warn(save_photo(result, output, quality=args.quality))
        print(f"wrote {output}")
        return 0
    return _edit_batch(model, inputs, Path(args.output), request, args.quality)


def _edit_batch(model: PortraitGAN, inputs: list[Path], out_dir: Path, request: EditRequest, quality: int) -> int:
    """Edit every input into ``out_dir``; report failures, go on; exit status 2 if any failed."""
    from tqdm.auto import tqdm

    outcomes = model.edit_many(inputs, request)  # checks the modalities before any photo or folder
    outputs = _output_names(inputs, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    failed: list[tuple[Path, str]] = []
    progress = tqdm(total=len(inputs), desc="edit", unit="photo", file=sys.stderr)
    for source, output, outcome in zip(inputs, outputs, outcomes):
        _warn(outcome.warnings, tqdm.write)
        reason = None if outcome.ok else str(outcome.error)
        if outcome.ok:
            try:
                _warn(save_photo(outcome.image, output, quality=quality), tqdm.write)
            except (ValueError, OSError) as error:
                reason = str(error)
        if reason is not None:
            failed.append((source, reason))
            tqdm.write(f"portraitgan edit: {source}: skipped: {reason}", file=sys.stderr)
        progress.update()
    progress.close()
    done = len(inputs) - len(failed)
    summary = f"edited {done} of {len(inputs)} photos into {out_dir}"
    if failed:
        summary += f"; {len(failed)} failed: " + ", ".join(str(source) for source, _ in failed)
    print(summary)
    return EXIT_BAD_INPUT if failed else 0


def _edit_inputs(args: argparse.Namespace) -> list[Path]:
    """The photos to edit: the positional ones, then those of ``--input-dir`` (sorted by name)."""
    inputs = [Path(name) for name in args.inputs]
    if args.input_dir is not None:
        folder = Path(args.input_dir)
        if not folder.is_dir():
            raise ValueError(f"--input-dir {folder}: no such folder")
        from PIL import Image

        suffixes = {suffix for suffix, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not found:
            raise ValueError(f"--input-dir {folder} holds no image files")
        inputs += found
    if not inputs:
        raise ValueError("no photo given: name one or more photos, or --input-dir DIR")
    return inputs


def _output_names(inputs: list[Path], out_dir: Path) -> list[Path]:
    """``OUT_DIR/<stem>-edited<suffix>`` per input: unique, and never the path of any input."""
    from PIL import Image

    Image.init()
    taken = {_resolved(path) for path in inputs}
    names = []
    for source in inputs:
        suffix = source.suffix.lower()
        if Image.registered_extensions().get(suffix) not in Image.SAVE:
            suffix = ".png"
        candidate, number = out_dir / f"{source.stem}-edited{suffix}", 1
        while _resolved(candidate) in taken:
            number += 1
            candidate = out_dir / f"{source.stem}-edited-{number}{suffix}"
        taken.add(_resolved(candidate))
        names.append(candidate)
    return names


def _resolved(path: Path) -> str:
    return str(path.expanduser().resolve())


def _same_file(a: Path, b: Path) -> bool:
    return _resolved(a) == _resolved(b)


def _warn(notes: Iterable[str], write: Callable[..., object] = print) -> None:
    """Each note on stderr (``write``: print, or tqdm.write beside a progress bar), in the CLI's option names."""
    from portraitgan_hub.edit_warnings import cli_wording

    for note in notes:
        write(f"portraitgan edit: warning: {cli_wording(note)}", file=sys.stderr)


def _read_landmarks(path: Path, face: int = 0) -> np.ndarray:
    """Target points for face number ``face`` from a landmarks file; every problem names the file.

    The file is the JSON of ``portraitgan landmarks`` (``{"faces": [{"landmarks": ...}, ...]}``,
    largest face first: face ``face`` is taken), or one face's 68 ``[x, y]`` points.
    """
    data = read_json(path, LANDMARKS_EXPECTED)
    if isinstance(data, dict):  # the output of `portraitgan landmarks`
        faces = data.get("faces")
        if not isinstance(faces, list) or not faces:
            raise ValueError(f"{path} holds no faces (expected {LANDMARKS_EXPECTED})")
        if not 0 <= face < len(faces):
            raise ValueError(f"{path} holds {len(faces)} face(s) (0..{len(faces) - 1}): there is no face {face}")
        entry = faces[face]
        points = entry.get("landmarks") if isinstance(entry, dict) else None
    else:
        points = data
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.empty(0)
    if array.shape != (68, 2) or not np.isfinite(array).all():
        raise ValueError(f"{path}: face {face} does not hold 68 finite [x, y] points (expected {LANDMARKS_EXPECTED})")
    return array.astype(np.float32)


def _landmarks(args: argparse.Namespace) -> int:
    import json

    from portraitgan_hub.faces.image_io import load_image
    from portraitgan_hub.faces.landmarks import LandmarkDetector, no_face_message

    image = load_image(args.input)
    faces = LandmarkDetector(args.landmark_model).detect(image, args.min_face)
    if not faces:
        raise PortraitGANError(no_face_message(str(args.input), faces))
    document = {
        "image": str(args.input),
        "size": list(image.size),
        "faces": [{"box": list(face.box), "landmarks": face.landmarks.round(2).tolist()} for face in faces],
    }
    text = json.dumps(document, indent=1)
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {len(faces)} face(s) to {args.output}")
    else:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="portraitgan", description="Edit a portrait's expression and modality.")
    commands = parser.add_subparsers(dest="command", required=True)

    edit = commands.add_parser(
        "edit",
        help="edit one face of each photo and write the full-resolution result",
        description="Edit one photo into -o FILE, or many (several photos, --input-dir) into -o FOLDER.",
    )
    edit.add_argument("inputs", nargs="*", type=_image, metavar="PHOTO", help="the photo(s) to edit")
    edit.add_argument("--input-dir", type=_path, metavar="DIR", help="also edit every image file in DIR")
    edit.add_argument(
        "-o",
        "--output",
        required=True,
        type=_path,
        help="the result file (.png, .jpg, ...), or a folder for several photos (written as <name>-edited.<ext>)",
    )
    edit.add_argument("--model", help="Hub id or folder (default: $PORTRAITGAN_MODEL, then the demo model)")
    edit.add_argument("--modality", help="target modality (default: the model's first, usually photo)")
    edit.add_argument(
        "--strength",
        type=_strength,
        default=1.0,
        metavar="S",
        help="how far to go towards --modality, 0..1 (default 1; 0 keeps the input's modality)",
    )
    edit.add_argument(
        "--from",
        metavar="MODALITY",
        help="what the input is (default photo); a stylized input whose face the detector misses is "
        "converted to a photo by the model to find it",
    )
    edit.add_argument(
        "--portrait",
        action="store_true",
        help="write only the aligned portrait, at twice the model's size (512 px for the demo model)",
    )
    edit.add_argument("--face", type=int, default=0, help="which face, 0 = the largest")
    edit.add_argument(
        "--min-face",
        type=_positive_int,
        metavar="PX",
        help=MIN_FACE_HELP,
    )
    edit.add_argument("--reference", type=_image, help="a photo whose expression the face takes on")
    edit.add_argument(
        "--reference-strength",
        type=float,
        default=1.0,
        metavar="S",
        help="how much of the reference's expression, 0..1.5 (default 1)",
    )
    edit.add_argument(
        "--reference-parts",
        default="all",
        metavar="PARTS",
        help=f"which parts to take from the reference, comma-separated: {', '.join(REFERENCE_PARTS)} (default all)",
    )
    edit.add_argument(
        "--no-paste-back",
        dest="paste_back",
        action="store_false",
        help="write the edited aligned face crop instead of the whole photo",
    )
    edit.add_argument(
        "--landmarks",
        type=_path,
        help="JSON with explicit target landmarks (photo pixels; "
        "the output of `portraitgan landmarks`, whose face --face is used)",
    )
    edit.add_argument(
        "--quality",
        type=int,
        default=DEFAULT_QUALITY,
        metavar="Q",
        help=f"JPEG/WebP quality 1-100 (default {DEFAULT_QUALITY})",
    )
    edit.add_argument("--device", default="cpu", type=_device, help="torch device: cpu (default), cuda, cuda:N or mps")
    expression = edit.add_argument_group("expression controls (0 = unchanged; --roll in degrees, -20..20)")
    for name in EXPRESSION_NAMES:
        row = CONTROL_RANGES[name]
        expression.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=_number,
            default=0.0,
            metavar="X",
            help=f"{row.minimum:g} to {row.maximum:g}: {row.meaning}".replace("%", "%%"),
        )
    edit.set_defaults(run=_edit)

    landmarks = commands.add_parser("landmarks", help="detect faces and print their 68 landmarks as JSON")
    landmarks.add_argument("input", type=_image)
    landmarks.add_argument("-o", "--output", type=_path, help="write the JSON here instead of stdout")
    landmarks.add_argument("--landmark-model", type=_path, help="path to shape_predictor_68_face_landmarks.dat")
    landmarks.add_argument(
        "--min-face",
        type=_positive_int,
        metavar="PX",
        help=MIN_FACE_HELP,
    )
    landmarks.set_defaults(run=_landmarks)

    from portraitgan_hub.animate import add_command as add_animate_command

    add_animate_command(commands)  # portraitgan animate PHOTO --driving VIDEO -o OUT.mp4

    for entry in entry_points(group=COMMAND_GROUP):  # portraitgan app, added by the app (space/command.py)
        entry.load()(commands)
    for command in commands.choices.values():  # an unknown option is named by its own command's parser
        command.set_defaults(command_parser=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # argparse would report them as the top-level parser's, pointing at `portraitgan --help`
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.run(args) or 0
    except (PortraitGANError, ValueError, OSError) as error:
        print(f"portraitgan {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
