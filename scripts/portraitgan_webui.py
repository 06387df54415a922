"""PortraitGAN in the Stable Diffusion WebUI (AUTOMATIC1111 1.10, Forge, reForge): host glue only.

The host executes this file when it starts (``modules/scripts.py``, ``load_scripts``). It registers:

- **settings** (Settings > PortraitGAN, ``on_ui_settings``): the model, a Hub id or a folder (empty:
  the demo model embedded in the package), and the device (``auto``, ``cpu``, ``cuda``, ``cuda:N``,
  ``mps``);
- **REST routes** (``on_app_started``): ``POST /portraitgan/v1/edit`` (JSON: a base64 image and edit
  options, answers a base64 PNG) and ``POST /portraitgan/v1/landmarks`` (answers each face's box and
  68 points); an error is JSON ``{"error": "..."}`` with a 4xx status (a 5xx one when the fault is
  the server's: a model setting that does not load, a library that failed to import);
- an **Extras-tab postprocessing script** (:class:`PortraitGANExtras`): enable, face, modality and
  its strength, the smile, mouth-open and eye-open sliders; it edits ``pp.image`` in place, keeping
  an alpha channel, in the host's single-image, batch and folder modes alike.

- the **PortraitGAN tab** (``on_ui_tabs``): the app's editing panel (``space/layout.py``'s
  ``build_editor``, wired by ``space/app.py``'s ``wire_editor``; the same code as the app, under the
  host's gradio 3.41 or 4.40 through ``space/compat.py``) with the host's "Send to img2img / inpaint /
  extras" buttons on the full-size result; and a "Send to PortraitGAN" button beside the txt2img and
  img2img galleries' own (``on_after_component``). Both go through the host's paste-params module
  (``modules/infotext_utils.py``); ``javascript/portraitgan.js`` switches to the tab.

Every call into the library is one small function below (``_load_model``, ``_edit``, ``_find_faces``,
``_modalities``, ``_control_range``, ``_control_names``), so that moving to another library API only
changes those. Nothing raises into the host: an edit that fails logs one line (``portraitgan``
logger) and leaves the image as it was; a route answers the error as JSON.
"""

import base64
import binascii
import functools
import importlib.util
import io
import logging
import sys
import threading
import time
from pathlib import Path

# The repository is the extension: `portraitgan_hub` is imported from this folder. The hosts put it
# first on sys.path while this file runs; Forge leaves it there, A1111 1.10 restores the path it had
# before (a list this file cannot reach). So add it here for hosts that run us with another path,
# and again once the app has started (on_app_started), for A1111.
EXTENSION_ROOT = str(Path(__file__).resolve().parents[1])


def keep_importable() -> None:
    """Make this extension's folder importable (appended: it never shadows the host's modules)."""
    if EXTENSION_ROOT not in sys.path:
        sys.path.append(EXTENSION_ROOT)


keep_importable()

import gradio as gr  # noqa: E402 (after the path set-up above)
from fastapi import Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from modules import script_callbacks, scripts_postprocessing, shared  # noqa: E402
from PIL import Image  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402

log = logging.getLogger("portraitgan")

try:
    import numpy as np

    from portraitgan_hub import DEFAULT_MODEL, PortraitGANConfig
    from portraitgan_hub.default_model import load_model, resolve_model_source
    from portraitgan_hub.devices import check_device
    from portraitgan_hub.errors import (
        CheckpointError,
        DeviceError,
        FaceIndexError,
        FaceRecognitionModelNotFoundError,
        ImageLoadError,
        LandmarkModelNotFoundError,
        NoFaceError,
    )
    from portraitgan_hub.faces.expressions import CONTROL_RANGES
    from portraitgan_hub.faces.image_io import load_image

    LIBRARY_ERROR = None
except Exception as error:  # said once here, and again by each hook that needs the library
    if isinstance(error, ModuleNotFoundError) and error.name:
        LIBRARY_ERROR = (
            f"PortraitGAN: cannot run: the module {error.name} is missing; restart the WebUI so that the "
            "extension's install.py installs it (it says in one line what failed)"
        )
    else:
        LIBRARY_ERROR = (
            f"PortraitGAN: cannot run: importing it failed ({type(error).__name__}: {error}); "
            "see docs/webui-extension.md for the versions it runs with"
        )
    log.warning(LIBRARY_ERROR)

SECTION = ("portraitgan", "PortraitGAN")
MODEL_SETTING = "portraitgan_model"
DEVICE_SETTING = "portraitgan_device"
#: The sliders of the Extras script (all the expression controls are in the REST API).
EXTRAS_CONTROLS = ("smile", "mouth_open", "eye_open")
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


class Refused(Exception):
    """A request or setting PortraitGAN cannot act on; ``str()`` is the one line to show, ``status``
    the HTTP status a route answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --- the library calls ---------------------------------------------------------------------------
def _load_model(source: str, device: str):
    """The model named by the settings (``""``: the embedded demo), on the device they name."""
    target = check_device(_auto_device() if device in ("", "auto") else device, fallback="set it to cpu")
    return load_model(source or None).to(target)


def _edit(model, photo, options: dict) -> Image.Image:
    """``photo`` (PIL image or encoded bytes) edited with ``options`` (``PortraitGAN.edit``'s keywords)."""
    return model.edit(photo, **options)


def _find_faces(model, photo) -> tuple[tuple[int, int], list[tuple[tuple[int, int, int, int], list]]]:
    """``((width, height), [(box, 68 points), ...])`` of ``photo`` (encoded bytes), largest face first,
    in the pixels of the upright picture that ``_edit`` works on."""
    picture = load_image(photo)
    faces = model.face_editor.faces(picture)
    return picture.size, [(tuple(int(v) for v in face.box), np.asarray(face.landmarks).tolist()) for face in faces]


def _modalities(source: str) -> list[str]:
    """The modalities of the model named by the settings, read from its ``config.json`` without loading
    it when it is a folder; else those of the embedded demo."""
    for folder in (source, DEFAULT_MODEL):
        try:
            config = Path(resolve_model_source(folder or None)) / "config.json"
            return list(PortraitGANConfig.from_json(config).modalities)
        except Exception:
            continue
    return ["photo"]


def _control_range(name: str) -> tuple[float, float]:
    """The range of the expression control ``name``."""
    row = CONTROL_RANGES[name]
    return float(row.minimum), float(row.maximum)


def _control_names() -> tuple[str, ...]:
    """All the expression controls ``_edit`` takes by name."""
    return tuple(CONTROL_RANGES)


# --- settings and the model they name ----------------------------------------------------------------
def _auto_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def settings() -> tuple[str, str]:
    """``(model, device)`` from the host's settings (their defaults before ``on_ui_settings`` ran)."""
    model = getattr(shared.opts, MODEL_SETTING, "") or ""
    device = getattr(shared.opts, DEVICE_SETTING, "auto") or "auto"
    return str(model).strip(), str(device).strip()


class ModelHolder:
    """The model of the current settings, loaded on first use and again when a setting changes; a
    setting that does not load is remembered (and said in one line) until it changes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # one edit at a time: the model and its face cache are shared
        self.key: tuple[str, str] | None = None
        self.model = None
        self.error: str | None = None

    def get(self):
        if LIBRARY_ERROR is not None:
            raise Refused(LIBRARY_ERROR, 503)
        key = settings()
        with self.lock:
            if key != self.key:
                self.key, self.model, self.error = key, None, None
                try:
                    self.model = _load_model(*key)
                except Exception as error:
                    self.error = _setting_error(key, error)
            if self.error is not None:
                raise Refused(self.error, 503)
            return self.model


def _setting_error(key: tuple[str, str], error: Exception) -> str:
    model, device = key
    detail = str(error) if isinstance(error, (CheckpointError, DeviceError)) else f"{type(error).__name__}: {error}"
    if isinstance(error, DeviceError):
        what = f"the device setting {device!r} cannot be used ({detail})"
    else:
        what = f"the model setting {model or '(empty: the embedded demo)'!r} does not load ({detail})"
    return f"PortraitGAN: {what}; change it in Settings > PortraitGAN"


holder = ModelHolder()


def on_ui_settings() -> None:
    shared.opts.add_option(
        MODEL_SETTING,
        shared.OptionInfo(
            "",
            "PortraitGAN model: a Hugging Face Hub id or a folder (empty: the demo model it ships with)",
            section=SECTION,
        ).info("a folder holding config.json and model.safetensors; a Hub id is downloaded once"),
    )
    shared.opts.add_option(
        DEVICE_SETTING,
        shared.OptionInfo("auto", "PortraitGAN device", section=SECTION).info(
            "auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps"
        ),
    )


# --- REST routes ------------------------------------------------------------------------------------
def _decode_image(value, name: str) -> bytes:
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


def _edit_options(payload: dict) -> dict:
    """``payload`` (the request's JSON) as ``_edit``'s options; names and JSON shapes checked here, the
    values by the library."""
    controls = _control_names()
    unknown = sorted(set(payload) - {"image", *EDIT_OPTIONS, *controls})
    if unknown:
        raise Refused(
            f"unknown option(s) {', '.join(unknown)}; known: image, {', '.join(EDIT_OPTIONS)}, {', '.join(controls)}"
        )
    options = {name: payload[name] for name in (*EDIT_OPTIONS, *controls) if name in payload}
    if "reference" in options:  # an image, never a path on the server
        options["reference"] = _decode_image(options["reference"], "reference")
    if "moves" in options:
        try:
            options["moves"] = {int(k): (float(x), float(y)) for k, (x, y) in dict(options["moves"]).items()}
        except (TypeError, ValueError):
            raise Refused('moves must be {"point index": [x, y], ...} in crop pixels') from None
    if "landmarks" in options:
        try:
            options["landmarks"] = np.asarray(options["landmarks"], dtype=np.float32)
        except (TypeError, ValueError):
            raise Refused("landmarks must be [[x, y], ...] (68 points), or one such list per face") from None
    return options


def _library_status(error: Exception) -> int:
    if isinstance(error, ImageLoadError):
        return 400
    if isinstance(error, (CheckpointError, DeviceError, LandmarkModelNotFoundError, FaceRecognitionModelNotFoundError)):
        return 503
    if isinstance(error, (NoFaceError, FaceIndexError, TypeError, ValueError, IndexError)):
        return 422
    return 500


def _answer(work, payload) -> tuple[int, dict]:
    """``(status, JSON body)`` of ``work(payload)``; never raises."""
    if LIBRARY_ERROR is not None:
        return 503, {"error": LIBRARY_ERROR}
    try:
        if not isinstance(payload, dict):
            raise Refused('the body must be a JSON object: {"image": "<base64>", ...}')
        return 200, work(payload)
    except Refused as error:
        return error.status, {"error": str(error)}
    except Exception as error:
        status = _library_status(error)
        if status == 500:
            log.exception("PortraitGAN: unexpected error in a REST call")
        return status, {"error": f"PortraitGAN: {error}" if status != 500 else f"PortraitGAN: internal error: {error}"}


def _edit_route_work(payload: dict) -> dict:
    photo = _decode_image(payload.get("image"), "image")
    options = _edit_options(payload)
    model = holder.get()
    with holder.lock:
        result = _edit(model, photo, options)
    buffer = io.BytesIO()
    result.save(buffer, format="PNG")
    return {
        "image": base64.b64encode(buffer.getvalue()).decode("ascii"),
        "width": result.width,
        "height": result.height,
    }


def _landmarks_route_work(payload: dict) -> dict:
    unknown = sorted(set(payload) - {"image"})
    if unknown:
        raise Refused(f"unknown option(s) {', '.join(unknown)}; known: image")
    photo = _decode_image(payload.get("image"), "image")
    model = holder.get()
    with holder.lock:
        (width, height), faces = _find_faces(model, photo)
    return {
        "width": width,
        "height": height,
        "faces": [{"box": list(box), "landmarks": points} for box, points in faces],
    }


async def _respond(request: Request, work) -> JSONResponse:
    try:
        payload = await request.json()
    except Exception:
        return JSONResponse({"error": "the body is not JSON"}, status_code=400)
    status, body = await run_in_threadpool(_answer, work, payload)
    return JSONResponse(body, status_code=status)


async def edit_route(request: Request) -> JSONResponse:
    return await _respond(request, _edit_route_work)


async def landmarks_route(request: Request) -> JSONResponse:
    return await _respond(request, _landmarks_route_work)


def on_app_started(_demo, app) -> None:
    keep_importable()
    app.add_api_route("/portraitgan/v1/edit", edit_route, methods=["POST"])
    app.add_api_route("/portraitgan/v1/landmarks", landmarks_route, methods=["POST"])


# --- the Extras tab ---------------------------------------------------------------------------------
def _number(value, default: float) -> float:
    try:
        return default if value is None else float(value)
    except (TypeError, ValueError):
        return default


def extras_options(face, modality, modality_strength, controls: dict) -> dict | None:
    """The Extras controls' values (``None`` for one the host did not set) as ``_edit``'s options, or
    ``None`` when they change nothing."""
    values = {name: _number(controls.get(name), 0.0) for name in EXTRAS_CONTROLS}
    options = {name: value for name, value in values.items() if value != 0.0}
    strength = _number(modality_strength, 1.0)
    modalities = _modalities(settings()[0])
    if modality and modality != modalities[0] and strength > 0:
        options["modality"] = modality
        options["modality_strength"] = strength
    if not options:
        return None
    options["face"] = int(_number(face, 0))
    return options


def _reason(error) -> str:
    """An error's one line, without a leading ``PortraitGAN:``."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text.removeprefix("PortraitGAN: ")


class PortraitGANExtras(scripts_postprocessing.ScriptPostprocessing):
    """Extras tab: edit one face's expression and modality (single image, batch and folder modes)."""

    name = "PortraitGAN"
    order = 20000

    def ui(self) -> dict:
        modalities = _modalities(settings()[0]) if LIBRARY_ERROR is None else ["photo"]
        with gr.Accordion("PortraitGAN", open=False):
            enable = gr.Checkbox(False, label="Enable PortraitGAN", elem_id="portraitgan_extras_enable")
            with gr.Row():
                face = gr.Number(0, label="Face (0 = the largest)", precision=0, elem_id="portraitgan_extras_face")
                modality = gr.Dropdown(
                    choices=modalities, value=modalities[0], label="Modality", elem_id="portraitgan_extras_modality"
                )
                strength = gr.Slider(
                    0.0, 1.0, value=1.0, step=0.05, label="Modality strength", elem_id="portraitgan_extras_strength"
                )
            sliders = {}
            with gr.Row():
                for name in EXTRAS_CONTROLS:
                    low, high = _control_range(name) if LIBRARY_ERROR is None else (-1.5, 1.5)
                    sliders[name] = gr.Slider(
                        low, high, value=0.0, step=0.05, label=name.replace("_", " ").capitalize(),
                        elem_id=f"portraitgan_extras_{name}",
                    )  # fmt: skip
        return {"enable": enable, "face": face, "modality": modality, "modality_strength": strength, **sliders}

    def process(self, pp, enable=False, face=0, modality=None, modality_strength=1.0, **controls) -> None:
        if not enable:
            return
        if LIBRARY_ERROR is not None:
            log.warning("PortraitGAN: image left unchanged: %s", _reason(LIBRARY_ERROR))
            return
        try:
            options = extras_options(face, modality, modality_strength, controls)
            if options is None:
                return
            model = holder.get()
            with holder.lock:
                edited = _edit(model, pp.image, options)
        except Exception as error:  # the host does not catch here: an exception would end its Extras run
            log.warning("PortraitGAN: image left unchanged: %s", _reason(error))
            return
        pp.image = edited
        pp.info["PortraitGAN"] = ", ".join(f"{name} {value}" for name, value in options.items())


# --- the PortraitGAN tab ----------------------------------------------------------------------------
TAB_ID = "portraitgan"
TAB_TITLE = "PortraitGAN"
#: The host tabs our result is sent to, and those whose galleries get a "Send to PortraitGAN" button.
SEND_TO = ("img2img", "inpaint", "extras")
SEND_FROM = ("txt2img", "img2img")
#: The tab's status line before the first photo.
TAB_READY = (
    "Send an image here with the \U0001f642 PortraitGAN button beside the txt2img or img2img gallery, "
    "or drop, paste or pick a photo above."
)
#: Every elem_id of the tab starts with this, so as not to meet the host's.
ELEM_PREFIX = "portraitgan-"
#: ``elem_id -> component`` of the host's galleries seen by ``on_after_component``.
_galleries: dict = {}
#: ``(event, seconds)`` of the tab's last edits (read by the tests and the docs' timing).
timings: list = []


def load_space():
    """The app's modules (``space/`` of this extension), imported as the package ``portraitgan_hub_space``
    (its name once pip-installed) from this folder, so that a top-level ``space`` of another extension
    never stands in for it. Returns the package; its modules ``app``, ``compat``, ``handlers`` and
    ``layout`` are imported."""
    name = "portraitgan_hub_space"
    if name not in sys.modules:
        init = Path(EXTENSION_ROOT) / "space" / "__init__.py"
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules[name]
            raise
    for module in ("app", "compat", "handlers", "layout"):
        importlib.import_module(f"{name}.{module}")
    return sys.modules[name]


def tab_handlers(space):
    """The app's event functions (``space.handlers.Handlers``) on the model of the settings
    (``holder``), one edit at a time with the REST routes and the Extras script."""

    class TabHandlers(space.handlers.Handlers):
        def __init__(self) -> None:
            super().__init__(None, "no model loaded yet")
            self.modalities = _modalities(settings()[0])

        def _model(self):
            try:
                return holder.get()
            except Refused as error:
                raise space.compat.error(_reason(error)) from None

    return TabHandlers()


def _guarded(space, fn):
    """``fn`` under the model lock; an unexpected exception is one line in the log and one gradio
    error message in the tab (the handlers already turn a user's mistakes into the status line)."""

    @functools.wraps(fn)
    def call(*args):
        started = time.perf_counter()
        try:
            with holder.lock:
                return fn(*args)
        except space.compat.gr.Error:
            raise
        except Exception as error:
            log.warning("PortraitGAN: the edit failed: %s", _reason(error))
            raise space.compat.error(f"PortraitGAN: the edit failed: {_reason(error)}") from None
        finally:
            timings.append((getattr(fn, "__name__", "event"), time.perf_counter() - started))
            del timings[:-100]

    return call


def build_tab(space, infotext_utils):
    """The tab's Blocks (made here, rendered by the host in its tab), its result's Send-to buttons
    registered with the host. Returns ``(blocks, editor, result image, {tab: button})``."""
    gr_ = space.compat.gr
    handlers = tab_handlers(space)
    made: dict = {}

    def below_result() -> None:
        made["result"] = space.compat.image_view(
            label="Result (full size): what Send to gives",
            type="pil",
            interactive=False,
            no_upload=True,
            elem_id=f"{ELEM_PREFIX}result",
            height=240,
        )
        with gr_.Row(elem_id=f"{ELEM_PREFIX}send"):
            made["send"] = infotext_utils.create_buttons(list(SEND_TO))

    with gr_.Blocks(analytics_enabled=False) as blocks:
        editor = space.layout.build_editor(
            handlers.modalities,
            elem_prefix=ELEM_PREFIX,
            below_result=below_result,
            landmarks_open=True,
            inline_photo=True,
            ready=TAB_READY,
        )
        reference = [gr_.State(1.0), gr_.State("all")]  # the app's reference strength and parts: not in the tab
        options = [editor.source, editor.target, editor.style, editor.overlay, editor.view, *reference, editor.side]
        space.app.wire_editor(
            editor,
            handlers,
            download=made["result"],
            options=options,
            reset_extras=[gr_.State(None) for _ in range(5)],
            wrap=functools.partial(_guarded, space),
        )
    infotext_utils.add_paste_fields(TAB_ID, editor.image, None)
    for tabname, button in made["send"].items():
        infotext_utils.register_paste_params_button(
            infotext_utils.ParamBinding(paste_button=button, tabname=tabname, source_image_component=made["result"])
        )
    return blocks, editor, made["result"], made["send"]


def _infotext_utils():
    try:
        from modules import infotext_utils
    except ImportError:  # hosts before A1111 1.8
        from modules import generation_parameters_copypaste as infotext_utils
    return infotext_utils


def on_ui_tabs() -> list:
    """The PortraitGAN tab; if the library or the app's modules do not import, a tab that says why."""
    try:
        if LIBRARY_ERROR is not None:
            raise Refused(LIBRARY_ERROR)
        blocks, *_ = build_tab(load_space(), _infotext_utils())
    except Exception as error:
        message = _reason(error)
        log.warning("PortraitGAN: the tab cannot be built: %s", message)
        with gr.Blocks(analytics_enabled=False) as blocks:
            gr.Markdown(f"**PortraitGAN cannot run:** {message}", elem_id=f"{ELEM_PREFIX}unavailable")
    return [(blocks, TAB_TITLE, TAB_ID)]


def on_after_component(component, **kwargs) -> None:
    """Beside the txt2img and img2img galleries' "Send to extras" button, a "Send to PortraitGAN"
    button (the host's paste-params binding from that gallery to the tab)."""
    elem_id = kwargs.get("elem_id") or ""
    try:
        if elem_id in {f"{tab}_gallery" for tab in SEND_FROM}:
            _galleries[elem_id] = component
        elif elem_id in {f"{tab}_send_to_extras" for tab in SEND_FROM}:
            tab = elem_id.removesuffix("_send_to_extras")
            gallery = _galleries.get(f"{tab}_gallery")
            if gallery is None:
                return
            button = gr.Button(
                "\U0001f642 PortraitGAN",  # the host's tool buttons are icons; ours says where it sends
                elem_id=f"{tab}_send_to_{TAB_ID}",
                elem_classes=["tool"],
                size="sm",
                scale=0,
                min_width=40,
            )
            infotext = _infotext_utils()
            infotext.register_paste_params_button(
                infotext.ParamBinding(paste_button=button, tabname=TAB_ID, source_image_component=gallery)
            )
    except Exception as error:  # never into the host's UI building
        log.warning("PortraitGAN: no Send to PortraitGAN button in %s: %s", elem_id, _reason(error))


script_callbacks.on_ui_settings(on_ui_settings)
script_callbacks.on_app_started(on_app_started)
script_callbacks.on_ui_tabs(on_ui_tabs)
script_callbacks.on_after_component(on_after_component)
