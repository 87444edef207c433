"""The one-click demo fine-tune, timed as a user runs it; prints JSON (README "Demo results", time column).

    python bench/one_click.py [--device cpu] [--control] [--runs 1]

Each run takes a fresh temporary data dir, creates the demo project there (3,200 images, the shipped baseline),
then times the whole command a user runs, `python app.py --data-dir D --device DEV train --project demo --json`
(every setting the one-click default: the UI's *Fine-tune* button), in a new process: wall seconds of the
command, the trainer's own seconds (`seconds` of its JSON: training and the per-epoch validation), and the
before/after test figures it reports. With `--control` it also times the same command with `--lam 0` (the same
steps without boxes), the README's second row, as the named baseline of the ratio `one_click / control`.
The machine, its usable CPUs and the load average before and after are recorded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import fresh_runs, machine  # noqa: E402
from common.cpus import thread_env  # noqa: E402

log = logging.getLogger("bench.one_click")
FIGURES = ("accuracy", "worst_group_accuracy", "epg", "n_images")


def prepare(data_dir: Path) -> float:
    """The demo project in `data_dir` (as a first start makes it, without the baseline evaluation); seconds."""
    from services.database import open_store
    from services.demo import create_demo_project
    from services.settings import Settings

    started = time.perf_counter()
    settings = Settings(data_dir=data_dir, device="cpu")
    engine = open_store(settings)
    create_demo_project(engine, settings)
    engine.dispose()
    return time.perf_counter() - started


def train(data_dir: Path, device: str, extra: list[str]) -> dict[str, Any]:
    """The one-click command (plus `extra` flags) in a new process: wall seconds and what it reports."""
    cmd = [sys.executable, str(REPO / "app.py"), "--data-dir", str(data_dir), "--device", device, "train",
           "--project", "demo", "--json", *extra]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=thread_env(dict(os.environ)))
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"train failed ({done.returncode}): {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 1), "trainer_s": out["seconds"], "status": out["status"],
            "before": {k: out["before"][k] for k in FIGURES}, "after": {k: out["after"][k] for k in FIGURES}}


def one_run(data_dir: Path, device: str, control: bool) -> dict[str, Any]:
    """The demo project prepared in `data_dir`, the one-click run timed on it (and, with `control`, the λ = 0 one)."""
    row: dict[str, Any] = {"prepare_s": round(prepare(data_dir), 1)}
    row["one_click"] = train(data_dir, device, [])
    if control:
        row["control_lam0"] = train(data_dir, device, ["--lam", "0"])
        row["one_click_over_control"] = round(row["one_click"]["wall_s"] / row["control_lam0"]["wall_s"], 2)
    return row


def main(argv: list[str] | None = None) -> None:
    """Time the one-click run (and the λ = 0 control) on fresh data dirs; print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device of the trainer (cpu, cuda, cuda:N)")
    parser.add_argument("--control", action="store_true", help="also time the λ = 0 control (--lam 0)")
    parser.add_argument("--runs", type=int, default=1, help="fresh data dirs to time")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    load_before = os.getloadavg()
    runs = fresh_runs(args.runs, "one-click-", lambda data_dir: one_run(data_dir, args.device, args.control), log)
    result = {"bench": "one_click", "machine": {**machine(), "load_average_before": load_before,
                                                "load_average_after": os.getloadavg()},
              "command": f"python app.py --data-dir <fresh> --device {args.device} train --project demo --json",
              "runs": runs}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
