"""The REST routes ``POST /portraitgan/v1/edit`` and ``POST /portraitgan/v1/landmarks``.

Added to the host's FastAPI app by :func:`add_routes` (from the script's ``on_app_started``). The
body is JSON with a base64 image; the answer is JSON, an error ``{"error": "<one line>"}`` with a 4xx
status, or a 5xx one when the fault is the server's (a model setting that does not load, a library
that failed to import). The work runs in the thread pool, under the model's lock.
"""

import base64
import binascii
import io
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from . import Refused, library, log
from .settings import holder

#: Options of ``/portraitgan/v1/edit`` besides ``image`` and the expression controls.
EDIT_OPTIONS = (
    "face",
    "modality",
    "modality_strength",
    "input_modality",
    "min_face",
    "reference",
    "reference_strength",
    "reference_parts",
    "moves",
    "landmarks",
)
#: Largest base64 image accepted by the routes (decoded bytes); the library also caps the pixels.
MAX_IMAGE_BYTES = 64 * 1024 * 1024


def decode_image(value: Any, name: str) -> bytes:
    """The bytes of a base64 image (a ``data:`` URL prefix is allowed)."""
    if not isinstance(value, str) or not value:
        raise Refused(f"{name} must be a base64-encoded image (a string)")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    if len(value) * 3 // 4 > MAX_IMAGE_BYTES:
        raise Refused(f"{name} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB", 413)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"{name} is not valid base64") from None


def edit_options(payload: dict) -> dict:
    """``payload`` (the request's JSON) as :func:`library.edit`'s options; names and JSON shapes checked
    here, the values by the library."""
    controls = library.control_names()
    unknown = sorted(set(payload) - {"image", *EDIT_OPTIONS, *controls})
    if unknown:
        raise Refused(
            f"unknown option(s) {', '.join(unknown)}; known: image, {', '.join(EDIT_OPTIONS)}, {', '.join(controls)}"
        )
    options = {name: payload[name] for name in (*EDIT_OPTIONS, *controls) if name in payload}
    if "reference" in options:  # an image, never a path on the server
        options["reference"] = decode_image(options["reference"], "reference")
    if "moves" in options:
        try:
            options["moves"] = {int(k): (float(x), float(y)) for k, (x, y) in dict(options["moves"]).items()}
        except (TypeError, ValueError):
            raise Refused('moves must be {"point index": [x, y], ...} in crop pixels') from None
    if "landmarks" in options:
        try:
            options["landmarks"] = library.as_landmarks(options["landmarks"])
        except (TypeError, ValueError):
            raise Refused("landmarks must be [[x, y], ...] (68 points), or one such list per face") from None
    return options


def answer(work: Callable[[dict], dict], payload: Any) -> tuple[int, dict]:
    """``(status, JSON body)`` of ``work(payload)``; never raises."""
    if library.LIBRARY_ERROR is not None:
        return 503, {"error": library.LIBRARY_ERROR}
    try:
        if not isinstance(payload, dict):
            raise Refused('the body must be a JSON object: {"image": "<base64>", ...}')
        return 200, work(payload)
    except Refused as error:
        return error.status, {"error": str(error)}
    except Exception as error:
        status = library.error_status(error)
        if status == 500:
            log.exception("PortraitGAN: unexpected error in a REST call")
        return status, {"error": f"PortraitGAN: {error}" if status != 500 else f"PortraitGAN: internal error: {error}"}


def edit_work(payload: dict) -> dict:
    """The answer of ``/portraitgan/v1/edit``: the edited image as a base64 PNG, and its size."""
    photo = decode_image(payload.get("image"), "image")
    options = edit_options(payload)
    model = holder.get()
    with holder.lock:
        result = library.edit(model, photo, options)
    buffer = io.BytesIO()
    result.save(buffer, format="PNG")
    return {
        "image": base64.b64encode(buffer.getvalue()).decode("ascii"),
        "width": result.width,
        "height": result.height,
    }


def landmarks_work(payload: dict) -> dict:
    """The answer of ``/portraitgan/v1/landmarks``: the image's size and each face's box and 68 points."""
    unknown = sorted(set(payload) - {"image"})
    if unknown:
        raise Refused(f"unknown option(s) {', '.join(unknown)}; known: image")
    photo = decode_image(payload.get("image"), "image")
    model = holder.get()
    with holder.lock:
        (width, height), faces = library.find_faces(model, photo)
    return {
        "width": width,
        "height": height,
        "faces": [{"box": list(box), "landmarks": points} for box, points in faces],
    }


async def respond(request: Request, work: Callable[[dict], dict]) -> JSONResponse:
    """``work`` on the request's JSON body, in the thread pool, answered as JSON."""
    try:
        payload = await request.json()
    except Exception:
        return JSONResponse({"error": "the body is not JSON"}, status_code=400)
    status, body = await run_in_threadpool(answer, work, payload)
    return JSONResponse(body, status_code=status)


async def edit_route(request: Request) -> JSONResponse:
    """``POST /portraitgan/v1/edit``."""
    return await respond(request, edit_work)


async def landmarks_route(request: Request) -> JSONResponse:
    """``POST /portraitgan/v1/landmarks``."""
    return await respond(request, landmarks_work)


def add_routes(app: Any) -> None:
    """Add the routes to the host's FastAPI ``app``."""
    app.add_api_route("/portraitgan/v1/edit", edit_route, methods=["POST"])
    app.add_api_route("/portraitgan/v1/landmarks", landmarks_route, methods=["POST"])
