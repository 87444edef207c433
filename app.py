"""Guidance Studio: composition root and command line.

    python app.py                      # serve the browser app on http://127.0.0.1:7860
    python app.py [--data-dir DIR] [--db URL] <command> ...

Global options come before the command; each also reads an environment variable
(`GUIDANCE_DATA_DIR`, `GUIDANCE_DB_URL`, `GUIDANCE_HOST`, `GUIDANCE_PORT`, `GUIDANCE_DEVICE`,
`GUIDANCE_AUTH`, `GUIDANCE_IMPORT_ROOTS`). Every command lives in a module that exposes `register(subparsers)` —
the browser app in `ui/serve.py`, the others in `services/commands/`; heavy imports (torch, gradio) happen
inside the command, so `python app.py projects` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# No outside connections from gradio / huggingface_hub, ever.
for _key, _value in {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}.items():
    os.environ.setdefault(_key, _value)

from common.cpus import thread_env  # noqa: E402

# Before anything imports torch: OpenMP threads = the CPUs this process may use, waiting passively
# (spinning threads on shared cores cost 2-40x; bench/RESULTS.md). The trainer subprocess inherits them.
thread_env()

from services.settings import Settings, env_default, env_paths  # noqa: E402

log = logging.getLogger("guidance")

# Order is the order shown in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "ui.serve",
    "services.commands.projects",
    "services.commands.io",
    "services.commands.models",
    "services.commands.train",
    "services.commands.demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser: global options, then one sub-command."""
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Guidance Studio: see where a classifier looks, mark where it should, fine-tune it.",
    )
    parser.add_argument("--data-dir", default=env_default("data_dir", "data"),
                        help="data directory (env GUIDANCE_DATA_DIR; default ./data)")
    parser.add_argument("--db", default=env_default("db_url", ""),
                        help="SQLAlchemy database URL (env GUIDANCE_DB_URL; default SQLite in the data dir)")
    parser.add_argument("--device", default=env_default("device", "auto"),
                        help="torch device: auto, cpu, cuda or cuda:N (env GUIDANCE_DEVICE)")
    parser.add_argument("--log-level", default=env_default("log_level", "INFO"),
                        help="logging level (env GUIDANCE_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Turn parsed global options (and serve options, when present) into `Settings`."""
    return Settings(
        data_dir=Path(args.data_dir),
        db_url=args.db,
        host=getattr(args, "host", None) or env_default("host", "127.0.0.1"),
        port=int(getattr(args, "port", None) or env_default("port", "7860")),
        device=args.device,
        auth=getattr(args, "auth", None) or env_default("auth", ""),
        import_roots=tuple(Path(p) for p in getattr(args, "import_root", None) or ()) or env_paths("import_roots"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the command (default: serve) and return its exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*argv, "serve"])
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(settings_from_args(args), args) or 0)
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130
    except Exception as exc:  # one line naming the file or setting and what to do, never a traceback
        from services.commands.failures import command_failure

        code, line = command_failure(exc)
        if line:
            log.error("%s", line)
        log.debug("the failure in full:", exc_info=True)
        return code


if __name__ == "__main__":
    sys.exit(main())
