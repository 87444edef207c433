"""First start: how long a new user waits for the page, and for a usable demo project; prints JSON.

    python bench/first_start.py [--runs 1] [--timeout 180]

Each run takes a fresh temporary data dir, starts the real server as a user does
(`python app.py --data-dir D serve --port P`, a new process), and polls:

- **page**: seconds from the process start until `GET /` answers 200 (goal ≤ 5 s); at first that is the starting
  page (`ui/starting_page.py`), which reloads itself into the app;
- **app**: seconds until the app itself answers `GET /` (torch, torchvision and gradio loaded);
- **usable**: seconds until the demo project is usable through the app's own API (gradio_client): `/projects`
  lists "demo" and `/gallery` returns a page of its images (goal ≤ 25 s on a quiet 2-core machine);
- **evaluated**: seconds until the baseline's test evaluation is stored (the gallery's EPG sort, Compare's
  "before"), read from `/demo_status`; reported, no goal.

Baseline, same run: the seconds until `python app.py --data-dir D2 projects` (a quick command on another fresh
data dir) returns: the interpreter, the imports and the schema creation every start pays; `usable/quick` is the
ratio. Times are wall clock; the server's CPU seconds (its own and its reaped children's, from /proc) at each
point are recorded too, as they move less with other users' load. The machine and its load average are recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import fresh_runs, machine  # noqa: E402
from ui.starting_page import MARKER  # noqa: E402

log = logging.getLogger("bench.first_start")
GALLERY_ARGS = ("demo", "(any)", "(any)", "(any)", "any", False, "Name", 0)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> str | None:
    """The body of `GET url` when it answers 200, else None."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode("utf-8", "replace") if response.status == 200 else None
    except OSError:
        return None


def page_answers(url: str) -> bool:
    """True when `GET url` returns 200 (the starting page or the app)."""
    return fetch(url) is not None


def app_answers(url: str) -> bool:
    """True when the app itself (not the starting page) answers `GET url`."""
    body = fetch(url)
    return body is not None and MARKER not in body


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` and of its children it has reaped (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return round(ticks / os.sysconf("SC_CLK_TCK"), 2)


def wait_for(check: Callable[[], bool], started: float, timeout: float, what: str,
             process: subprocess.Popen[bytes] | None = None) -> float:
    """Seconds since `started` when `check()` first holds; raises TimeoutError/RuntimeError otherwise."""
    while time.perf_counter() - started < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before {what}")
        if check():
            return time.perf_counter() - started
        time.sleep(0.1)
    raise TimeoutError(f"no {what} within {timeout:.0f} s")


def demo_usable(client: Any) -> bool:
    """`/projects` lists "demo" and `/gallery` returns images of it."""
    try:
        if "demo" not in json.dumps(client.predict(api_name="/projects"), default=str):
            return False
        items, *_ = client.predict(*GALLERY_ARGS, api_name="/gallery")
        return bool(items)
    except Exception:  # not ready yet: the app answers with an error until the project exists
        return False


def demo_evaluated(client: Any) -> bool:
    """The app's demo status says the baseline evaluation is done (or there is nothing left to prepare)."""
    try:
        status = client.predict(api_name="/demo_status")
    except Exception:
        return False
    return "evaluating" not in str(status).lower() and "preparing" not in str(status).lower()


@contextlib.contextmanager
def server(data_dir: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python app.py --data-dir D serve --port P` as a child process; terminated on exit."""
    with open(log_path, "wb") as out:
        process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--data-dir", str(data_dir), "serve",
                                    "--port", str(port)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def quick_command(data_dir: Path) -> float:
    """Seconds for `python app.py --data-dir D projects` on a fresh data dir (the fixed cost of any start: it
    imports the app and answers "no database here", exit 2)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "app.py"), "--data-dir", str(data_dir), "projects"], cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode not in (0, 2):
        raise RuntimeError(f"`projects` failed ({done.returncode}): {done.stderr.strip()}")
    return time.perf_counter() - started


def one_run(root: Path, timeout: float) -> dict[str, Any]:
    """One fresh start: page, usable and evaluated times, plus the quick-command baseline."""
    from gradio_client import Client  # the bench's own HTTP client

    quick = quick_command(root / "quick")
    port, data_dir = free_port(), root / "data"
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    cpu: dict[str, float | None] = {}
    with server(data_dir, port, root / "server.log") as process:
        page = wait_for(lambda: page_answers(url), started, timeout, "page", process)
        cpu["page"] = cpu_seconds(process.pid)
        app = wait_for(lambda: app_answers(url), started, timeout, "app", process)
        cpu["app"] = cpu_seconds(process.pid)
        client = Client(url, verbose=False, download_files=False)
        usable = wait_for(lambda: demo_usable(client), started, timeout, "usable demo", process)
        cpu["usable"] = cpu_seconds(process.pid)
        evaluated = wait_for(lambda: demo_evaluated(client), started, timeout, "baseline evaluation", process)
        cpu["evaluated"] = cpu_seconds(process.pid)
    return {"page_s": round(page, 2), "app_s": round(app, 2), "usable_s": round(usable, 2),
            "evaluated_s": round(evaluated, 2), "server_cpu_s": cpu, "quick_command_s": round(quick, 2),
            "usable_over_quick": round(usable / quick, 2)}


def main(argv: list[str] | None = None) -> None:
    """Run the first-start measurement and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="fresh starts to measure")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds before a run gives up")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    load_before = os.getloadavg()
    runs = fresh_runs(args.runs, "first-start-", lambda data_dir: one_run(data_dir, args.timeout), log)
    result = {
        "bench": "first_start",
        "machine": {**machine(), "load_average": os.getloadavg(), "load_average_before": load_before},
        "command": "python app.py --data-dir <fresh temp dir> serve --port <free port>",
        "runs": runs,
        "page_s_max": max(r["page_s"] for r in runs),
        "usable_s_max": max(r["usable_s"] for r in runs),
        "baseline": "python app.py --data-dir <fresh temp dir> projects (same run)",
        "goals": {"page_s": 5.0, "usable_s": 25.0},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
