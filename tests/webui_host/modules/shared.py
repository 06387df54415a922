"""Fake of the WebUI's ``modules/shared.py``: ``opts`` (the settings), ``OptionInfo``, ``state``.

Written by us from the hosts' behaviour, not copied. ``opts`` starts with the few built-in settings an
Extras run reads (``postprocessing_operation_order``, ``postprocessing_disable_in_extras``);
extensions add theirs from an ``on_ui_settings`` callback with ``opts.add_option``. ``state`` holds
the job fields the postprocessing runner touches.
"""

from __future__ import annotations

from types import SimpleNamespace

from modules.options import OptionInfo, Options, options_section  # noqa: F401 (the host re-exports them)

opts = Options(
    {
        "postprocessing_operation_order": OptionInfo([], "Postprocessing operation order"),
        "postprocessing_disable_in_extras": OptionInfo([], "Disable postprocessing operations in extras tab"),
    }
)
_BUILT_IN = tuple(opts.data_labels)
state = SimpleNamespace(skipped=False, interrupted=False, job="", job_count=0)
cmd_opts = SimpleNamespace(api=False, listen=False, skip_install=False)
demo = None


def reset() -> None:
    """Settings and state as at a host start: extensions' settings dropped (in place, so that a module
    holding ``shared.opts`` sees the same object)."""
    for key in [key for key in opts.data_labels if key not in _BUILT_IN]:
        del opts.data_labels[key]
    for key in [key for key in opts.data if key not in _BUILT_IN]:
        del opts.data[key]
    state.skipped = False
    state.interrupted = False
