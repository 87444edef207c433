"""`python app.py serve`: the browser app (the default command).

A starting page answers at once while torch and gradio load (`ui.starting_page`). On a fresh data dir
(no project yet) the app then serves and builds the built-in demo project in the background, the page
showing the progress ("Preparing the demo: n/3,200 images…") until the project appears. Gradio and
torch are imported only when the command runs, so listing the commands stays quick.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging

from services.database import Database
from services.demo_data import DemoData
from services.import_roots import roots_refusal
from services.settings import Settings
from ui.starting_page import open_starting_page

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `serve` command."""
    p = sub.add_parser("serve", help="serve the browser app (default)")
    p.add_argument("--host", default=None, help="address to bind (env GUIDANCE_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (env GUIDANCE_PORT; default 7860)")
    p.add_argument("--auth", default=None, help="require login USER:PASSWORD (env GUIDANCE_AUTH)")
    p.add_argument("--import-root", action="append", default=None, metavar="DIR",
                   help="a folder the Data tab's 'folder on the server' may import from (repeatable; env "
                        "GUIDANCE_IMPORT_ROOTS, separated by ':'). Default: only the data dir's imports/ folder")
    p.add_argument("--allow-anonymous-network", action="store_true",
                   help="serve an address other machines can reach WITHOUT a login: anyone who reaches it can "
                        "import, train, read and delete (without this flag such a start is refused)")
    p.set_defaults(run=run)


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any address
        return False


def exposure_refusal(settings: Settings, *, allow_anonymous: bool) -> str | None:
    """Why serving `settings` must not start: a non-loopback address without a login, unless the operator said
    so explicitly; None when it may start."""
    if is_loopback(settings.host) or settings.auth or allow_anonymous:
        return None
    return (f"not serving {settings.host}:{settings.port} without a login: other machines could reach it, and "
            "anyone who does could import, train, read and delete. Give --auth USER:PASSWORD (or GUIDANCE_AUTH), "
            "serve 127.0.0.1 behind your own proxy, or, on a network you trust, add --allow-anonymous-network")


def bootstrap_demo(db: Database, settings: Settings) -> bool:
    """Create the demo project when the database has no project yet; returns True when it did.

    A failure is logged, not raised: the app still serves (projects can be imported from the CLI).
    """
    from services.demo import ensure_demo  # heavy (torch): `app.py --help` must not pay for it

    try:
        created = ensure_demo(db, settings, only_if_empty=True)
    except Exception:  # the server must start even when the demo cannot be built
        log.exception("could not create the demo project; serving without it (try `python app.py demo`)")
        return False
    if created:
        log.info("fresh data dir %s: created the demo project", settings.data_dir.resolve())
    else:
        log.debug("the database already has projects: no demo project created")
    return created


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Start the app (building the demo project in the background on a fresh data dir); returns when the
    server stops. Exit 2, before anything starts, for a non-loopback address without a login (`exposure_refusal`)
    or an `--import-root` that is not a folder."""
    refusal = (exposure_refusal(settings, allow_anonymous=bool(getattr(args, "allow_anonymous_network", False)))
               or roots_refusal(settings))
    if refusal:
        log.error("%s", refusal)
        return 2
    if settings.import_roots:
        log.info("the Data tab may import server folders under: %s (and the data dir's imports/)",
                 ", ".join(str(root) for root in settings.import_roots))
    if not is_loopback(settings.host) and not settings.auth:
        log.warning("serving %s without a login (--allow-anonymous-network): anyone who reaches it can use it",
                    settings.host)
    fresh = not settings.db_url and not (settings.data_dir / "studio.db").exists()
    starting = open_starting_page(settings.host, settings.port, "Loading the engine (torch, gradio)"
                                  + (" while the demo project's 3,200 images are drawn and imported; the app shows "
                                     "that progress once it is up." if fresh else "."))
    # a fresh data dir gets the demo: its images are drawn (worker processes) and imported while the engine loads
    data = DemoData(settings).begin() if fresh else None
    # heavy (torch, gradio): imported when the server starts, so `app.py --help` stays quick
    from services.demo import DemoPreparation, demo_preparation
    from services.explanations import configure_serving_threads
    from ui.deps import build_deps
    from ui.layout import launch

    if data is not None:
        data.wait_store()  # the store is created by the demo's thread; opening it twice at once could race
    deps = build_deps(settings)
    configure_serving_threads(settings)
    # on a fresh data dir the demo is ours; otherwise None when the database has projects
    preparation = DemoPreparation() if data is not None else demo_preparation(deps.engine, settings)
    if starting is not None:
        starting.close()  # the app binds the port next; the starting page's script retries until it answers
    app = launch(settings, deps=deps, block=False, preparing=preparation)
    if preparation is not None:  # started once the page serves, so building it does not delay the page
        preparation.start(deps.engine, settings, data)
    if app is not None:
        app.block_thread()
    return 0


__all__ = ["bootstrap_demo", "exposure_refusal", "is_loopback", "register", "run"]
