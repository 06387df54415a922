"""The torch device to run on, checked before anything is loaded onto it.

``torch.device("cuda")`` is accepted by any torch build; the failure only comes when a tensor is
moved there, as a long traceback. :func:`check_device` says at once, in one line, what is missing.
"""

from __future__ import annotations

import torch

from portraitgan_hub.errors import DeviceError

#: The device types an edit can run on; ``torch.device`` knows more (``meta``, ``hpu``, ...).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
_NAMES = {"cuda": "CUDA", "mps": "MPS", "xpu": "XPU"}


def check_device(device: str | torch.device, *, fallback: str = "use --device cpu") -> torch.device:
    """``device`` as a ``torch.device`` that this torch build and machine can run on.

    ``fallback`` ends each message, saying what to do instead. Raises :class:`DeviceError`:
    "CUDA is not available in this torch build; use --device cpu" for ``cuda`` on a CPU-only torch
    (and the like for ``mps``), another line when the build has it but the machine has
    no such device or not that index, and "unknown device ..." for a name that is not a device.
    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in DEVICE_TYPES:
        raise DeviceError(f"unknown device {str(device)!r}: use cpu, cuda, cuda:N or mps")
    if parsed.type == "cpu":
        return parsed
    name = _NAMES[parsed.type]
    xpu = getattr(torch, "xpu", None)  # torch before 2.4 has no torch.xpu
    if parsed.type == "xpu" and (xpu is None or not xpu.is_available()):  # nor says whether it was built with it
        raise DeviceError(f"XPU is not available; {fallback}")
    if not _built(parsed.type):
        raise DeviceError(f"{name} is not available in this torch build; {fallback}")
    if not _available(parsed.type):
        raise DeviceError(f"{name} is not available: this torch build has it, but finds no {name} device; {fallback}")
    count = _count(parsed.type)
    if parsed.index is not None and parsed.index >= count:
        raise DeviceError(f"there is no device {parsed}: torch finds {count} {name} device(s); {fallback}")
    return parsed


def _built(kind: str) -> bool:
    if kind == "cuda":
        return bool(torch.backends.cuda.is_built())
    if kind == "mps":
        return bool(torch.backends.mps.is_built())
    return True


def _available(kind: str) -> bool:
    if kind == "mps":
        return bool(torch.backends.mps.is_available())
    return bool(getattr(torch, kind).is_available())


def _count(kind: str) -> int:
    if kind == "mps":
        return 1
    return int(getattr(torch, kind).device_count())
