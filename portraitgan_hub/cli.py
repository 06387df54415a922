"""The ``portraitgan`` command: ``edit`` a photo, print its ``landmarks``, or start the ``app``.

Every failure a user can cause ends with exit status 2 and one line on stderr saying why.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES, REFERENCE_PARTS
from portraitgan_hub.io_utils import atomic_save_image, atomic_write_text

EXIT_BAD_INPUT = 2


def _edit(args: argparse.Namespace) -> None:
    from portraitgan_hub.default_model import load_model

    controls = {name: getattr(args, name) for name in EXPRESSION_NAMES if getattr(args, name)}
    landmarks = None
    if args.landmarks:
        landmarks = np.asarray(_read_landmarks(Path(args.landmarks)), dtype=np.float32)
    model = load_model(args.model, map_location=args.device)
    result = model.edit(
        args.input,
        modality=args.modality,
        face=args.face,
        reference=args.reference,
        landmarks=landmarks,
        reference_strength=args.reference_strength,
        reference_parts=args.reference_parts,
        paste_back=args.paste_back,
        **controls,
    )
    atomic_save_image(result, args.output)
    print(f"wrote {args.output}")


def _read_landmarks(path: Path) -> list:
    data = json.loads(path.read_text())
    if isinstance(data, dict):  # the output of `portraitgan landmarks`
        faces = data.get("faces") or []
        if not faces:
            raise ValueError(f"{path} holds no faces")
        return faces[0]["landmarks"]
    return data


def _landmarks(args: argparse.Namespace) -> None:
    from portraitgan_hub.faces.image_io import load_image
    from portraitgan_hub.faces.landmarks import LandmarkDetector

    image = load_image(args.input)
    faces = LandmarkDetector(args.landmark_model).detect(image)
    if not faces:
        raise PortraitGANError(f"no face found in {args.input}: use a frontal, well-lit photo")
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


def _app(args: argparse.Namespace) -> None:
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise PortraitGANError("the app needs gradio: pip install 'portraitgan-hub[space]'") from None
    try:  # installed: space/ ships in the wheel as portraitgan_hub_space (see pyproject.toml)
        from portraitgan_hub_space.app import main as app_main
    except ModuleNotFoundError as error:
        if error.name != "portraitgan_hub_space":
            raise
        from space.app import main as app_main  # a source checkout that was not pip-installed

    app_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portraitgan", description="Edit a portrait's expression and modality.")
    commands = parser.add_subparsers(dest="command", required=True)

    edit = commands.add_parser("edit", help="edit one face of a photo and write the full-resolution result")
    edit.add_argument("input", help="the photo to edit")
    edit.add_argument("-o", "--output", required=True, help="where to write the result (.png, .jpg, ...)")
    edit.add_argument("--model", help="Hub id or folder (default: $PORTRAITGAN_MODEL, then the demo model)")
    edit.add_argument("--modality", help="target modality (default: the model's first, usually photo)")
    edit.add_argument("--face", type=int, default=0, help="which face, 0 = the largest")
    edit.add_argument("--reference", help="a photo whose expression the face takes on")
    edit.add_argument("--reference-strength", type=float, default=1.0, metavar="S",
                      help="how much of the reference's expression, 0..1.5 (default 1)")
    edit.add_argument("--reference-parts", default="all", metavar="PARTS",
                      help=f"which parts to take from the reference, comma-separated: {', '.join(REFERENCE_PARTS)} "
                      "(default all)")
    edit.add_argument("--no-paste-back", dest="paste_back", action="store_false",
                      help="write the edited aligned face crop instead of the whole photo")
    edit.add_argument("--landmarks", help="JSON with explicit target landmarks (68 x 2, photo pixels)")
    edit.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    expression = edit.add_argument_group("expression controls (0 = unchanged; --roll in degrees, -20..20)")
    for name in EXPRESSION_NAMES:
        expression.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, default=0.0, metavar="X")
    edit.set_defaults(run=_edit)

    landmarks = commands.add_parser("landmarks", help="detect faces and print their 68 landmarks as JSON")
    landmarks.add_argument("input")
    landmarks.add_argument("-o", "--output", help="write the JSON here instead of stdout")
    landmarks.add_argument("--landmark-model", help="path to shape_predictor_68_face_landmarks.dat")
    landmarks.set_defaults(run=_landmarks)

    # The app parses its own options (space/app.py); "+" keeps argparse from reading "--port" etc. here.
    app = commands.add_parser(
        "app", help="start the Gradio app (options: portraitgan app --help)", add_help=False, prefix_chars="+"
    )
    app.add_argument("rest", nargs=argparse.REMAINDER)
    app.set_defaults(run=_app)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (PortraitGANError, ValueError, OSError) as error:
        print(f"portraitgan {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
