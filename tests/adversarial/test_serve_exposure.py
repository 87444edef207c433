"""Issue 24, item 2: `serve` on a network address without a login is refused at start, as the operator runs it
(a real process, its exit code and its one line), unless the operator says so explicitly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import app

REPO = Path(app.__file__).resolve().parent


def _serve(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "app.py"), "--data-dir", str(data), "serve", "--port", "1",
                           *extra], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_every_network_address_without_a_login_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.7"):
        data = tmp_path / host.replace(":", "_")
        done = _serve(data, "--host", host)
        out = done.stdout + done.stderr
        assert done.returncode == 2, out
        assert f"not serving {host}:1 without a login" in out and "--allow-anonymous-network" in out
        assert "Traceback" not in out
        assert not data.exists() or not any(data.iterdir())  # refused before a database or the demo was made
