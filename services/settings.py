"""One settings object for the whole app, read from flags with environment-variable fallbacks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "GUIDANCE_"
MAX_UPLOAD_BYTES = 2 << 30  # 2 GiB: the largest checkpoint or zip upload the server accepts


@dataclass(frozen=True)
class Settings:
    """Where the app keeps its data and how it serves.

    Every field has a flag (see `app.py --help`) and an environment variable `GUIDANCE_<NAME>`.
    """

    data_dir: Path = Path("data")
    db_url: str = ""  # empty: SQLite at <data_dir>/studio.db
    host: str = "127.0.0.1"
    port: int = 7860
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    auth: str = ""  # "user:password" enables login
    # folders a browser user may import from besides `<data_dir>/imports` (`services.import_roots`)
    import_roots: tuple[Path, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL in force: the configured one or SQLite in the data dir."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'studio.db').resolve()}"

    @property
    def checkpoint_dir(self) -> Path:
        """Where trained checkpoints are written."""
        return self.data_dir / "checkpoints"

    @property
    def auth_pair(self) -> tuple[str, str] | None:
        """`(user, password)` when login is enabled, else None."""
        if not self.auth:
            return None
        user, sep, password = self.auth.partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth must look like USER:PASSWORD (or set GUIDANCE_AUTH=USER:PASSWORD)")
        # Refused, not stripped: the login form compares exactly, so "user :pw" would lock everyone out.
        if user != user.strip():
            raise ValueError(f"--auth (or GUIDANCE_AUTH): the user name {user!r} starts or ends with a space; "
                             "remove it (login compares names exactly)")
        if password != password.strip():
            raise ValueError("--auth (or GUIDANCE_AUTH): the password starts or ends with a space; remove it "
                             "(login compares passwords exactly)")
        return user, password


def env_paths(name: str, environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The paths in `GUIDANCE_<NAME>`, separated as in PATH (`:`; `;` on Windows); () when unset."""
    return tuple(Path(part) for part in env_default(name, "", environ).split(os.pathsep) if part.strip())


def env_default(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of `GUIDANCE_<NAME>` if set and non-empty, else `default`."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_PREFIX + name.upper(), "")
    return value if value else default
