"""``portraitgan app``: the app's sub-command, which the app adds to the ``portraitgan`` command.

It is registered under the ``portraitgan.commands`` entry point group (``pyproject.toml``), so the
package's CLI (``portraitgan_hub.cli``) never imports the app. Nothing here imports gradio until the
command runs.
"""

from __future__ import annotations

import argparse

from portraitgan_hub.errors import PortraitGANError


def add_command(commands) -> None:
    """Add ``portraitgan app [OPTIONS]`` to the CLI's subparsers ``commands``; the app parses its own
    options (``space/app.py``), and ``prefix_chars="+"`` keeps argparse from reading ``--port`` here."""
    app = commands.add_parser(
        "app", help="start the Gradio app (options: portraitgan app --help)", add_help=False, prefix_chars="+"
    )
    app.add_argument("rest", nargs=argparse.REMAINDER)
    app.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise PortraitGANError("the app needs gradio: pip install 'portraitgan-hub[space]'") from None
    if __package__:
        from .app import main
    else:  # pragma: no cover - a copy of space/ run as scripts
        from app import main  # type: ignore[no-redef]
    main(args.rest)
    return 0
