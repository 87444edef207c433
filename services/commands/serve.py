"""`python app.py serve`: the browser app (the default command)."""

from __future__ import annotations

import argparse
import logging

from services.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `serve` command."""
    p = sub.add_parser("serve", help="serve the browser app (default)")
    p.add_argument("--host", default=None, help="address to bind (env GUIDANCE_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (env GUIDANCE_PORT; default 7860)")
    p.add_argument("--auth", default=None, help="require login USER:PASSWORD (env GUIDANCE_AUTH)")
    p.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Start the app; returns when the server stops."""
    try:
        from ui.layout import launch
    except ModuleNotFoundError:
        log.error("no UI yet: the browser app is not built in this version; the CLI commands work "
                  "(python app.py --help)")
        return 1
    launch(settings)
    return 0
