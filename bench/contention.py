"""Contention: the one-click fine-tune and an uncached server explanation, quiet and beside a CPU hog; prints JSON.

    python bench/contention.py [--quick] [--steps 10] [--explain-images 24] [--repeats 1]

The hog is `usable_cpus()` busy Python processes (`while True: pass`): as many cores as this process may use,
taken by someone else. A fair share of the cores is half of them, so a job that needs all its cores should
take about 2× as long beside the hog; the goal is ≤ 2.5× (a job whose threads spin or wait on a stalled peer
takes far longer: that is what the thread settings in `common/cpus.py` prevent).

1. **train**: a reduced but representative one-click fine-tune as a user starts it: `python app.py --data-dir D
   train --project demo --json --epochs 1 --max-steps-per-epoch STEPS` (every other setting the one-click
   default: Energy at Mid2, contrast target, batch 64, frozen norm) on the demo project (all 2,000 training
   images; val 200 and test 400 images instead of 400/800), in a fresh process with the app's thread
   environment. Its work is the one-click run's, scaled: STEPS guided steps, a val evaluation before and after
   the epoch, and the before/after test evaluations. Wall seconds of the whole command.
2. **explain**: `ExplanationService.explain` of an image not explained before (B-cos, Input, predicted class,
   shipped baseline), as the server does it, in a fresh process per configuration: median wall ms over
   `--explain-images` images. Configurations: the server's setting (`configure_serving_threads`) and, for the
   record, every thread count from 1 to `usable_cpus()`.

Every configuration runs quiet and beside the hog in the same run; the ratio hog/quiet is reported. The
baseline row "libgomp default wait" repeats the train command with `OMP_WAIT_POLICY` emptied (before this
change the process started without it). Load averages are recorded: other users' load makes "quiet" less quiet.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import machine  # noqa: E402
from common.cpus import thread_env, usable_cpus  # noqa: E402

thread_env()  # before torch loads in this process (the explain worker imports it)

log = logging.getLogger("bench.contention")
DEMO_SIZES = {"val_size": 200, "test_size": 400}


@contextlib.contextmanager
def hog(processes: int) -> Iterator[None]:
    """`processes` busy Python loops running for the duration of the block."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    time.sleep(1.0)  # let them take their cores
    try:
        yield
    finally:
        for process in busy:
            process.kill()
        for process in busy:
            process.wait()


def prepare_demo(data_dir: Path) -> float:
    """The demo project (full train split, smaller val/test) in `data_dir`; returns the seconds it took."""
    from core.data import SyntheticConfig
    from services.database import open_store
    from services.demo import create_demo_project
    from services.settings import Settings

    started = time.perf_counter()
    settings = Settings(data_dir=data_dir, device="cpu")
    engine = open_store(settings)
    create_demo_project(engine, settings, config=SyntheticConfig(**DEMO_SIZES))
    engine.dispose()
    return time.perf_counter() - started


def train_seconds(data_dir: Path, steps: int, env: dict[str, str]) -> float:
    """Wall seconds of the reduced one-click `train` command in a fresh process with `env`."""
    cmd = [sys.executable, str(REPO / "app.py"), "--data-dir", str(data_dir), "--device", "cpu", "train",
           "--project", "demo", "--json", "--epochs", "1", "--max-steps-per-epoch", str(steps)]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"train failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def explain_worker(data_dir: Path, images: int, threads: int | None) -> dict[str, Any]:
    """In this process: configure threads like the server (or `threads`), explain `images` new images."""
    import torch

    from services.explain_requests import explain_target
    from services.explanations import ExplanationService, configure_serving_threads
    from services.settings import Settings
    from ui.deps import build_deps

    settings = Settings(data_dir=data_dir, device="cpu")
    if threads is None:
        configure_serving_threads(settings)
    else:
        torch.set_num_threads(threads)
    deps = build_deps(settings, upgrade_schema=False)
    service = ExplanationService(settings, deps.models, cache_dir=Path(tempfile.mkdtemp(prefix="contention-cache-")))
    ids = list(range(1, images + 2))  # the first is a warm-up (model load)
    samples = []
    for image_id in ids:
        request = explain_target(deps.engine, "demo", image_id, data_dir=settings.data_dir).request
        started = time.perf_counter()
        service.explain(request, "bcos", "input", service.predicted_class(request))
        samples.append(time.perf_counter() - started)
    return {"threads": torch.get_num_threads(), "median_ms": round(1000 * statistics.median(samples[1:]), 1),
            "p90_ms": round(1000 * sorted(samples[1:])[int(0.9 * (len(samples) - 1))], 1)}


def explain_ms(data_dir: Path, images: int, threads: int | None) -> dict[str, Any]:
    """`explain_worker` in a fresh process (its thread pool starts the way the server's does)."""
    cmd = [sys.executable, __file__, "--worker", str(data_dir), "--explain-images", str(images)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ})
    if done.returncode != 0:
        raise RuntimeError(f"explain worker failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio(hogged: float, quiet: float) -> float:
    """hog / quiet, rounded."""
    return round(hogged / quiet, 2)


def measure(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Every configuration quiet, then beside the hog (same run)."""
    cpus = usable_cpus()
    app_env = thread_env(dict(os.environ))
    default_wait = {**os.environ, "OMP_WAIT_POLICY": ""}  # before: libgomp's default (spin, then sleep)
    configurations: dict[str, Any] = {}
    if "train" in args.parts:
        configurations["train"] = lambda: train_seconds(data_dir, args.steps, app_env)
        configurations["train, libgomp default wait"] = lambda: train_seconds(data_dir, args.steps, default_wait)
    if "explain" in args.parts:
        configurations["explain, server setting"] = lambda: explain_ms(data_dir, args.explain_images, None)
        for threads in range(1, cpus + 1):
            configurations[f"explain, {threads} thread(s)"] = (
                lambda t=threads: explain_ms(data_dir, args.explain_images, t))
    results: dict[str, Any] = {name: {"quiet": [], "hog": []} for name in configurations}
    for _ in range(args.repeats):
        for name, run in configurations.items():
            results[name]["quiet"].append(run())
            log.info("%s quiet: %s", name, results[name]["quiet"][-1])
        with hog(cpus):
            for name, run in configurations.items():
                results[name]["hog"].append(run())
                log.info("%s hog: %s", name, results[name]["hog"][-1])
    summary: dict[str, Any] = {}
    for name, got in results.items():
        if name.startswith("train"):
            quiet, hogged = statistics.median(got["quiet"]), statistics.median(got["hog"])
            summary[name] = {"quiet_s": round(quiet, 2), "hog_s": round(hogged, 2), "hog_over_quiet": ratio(hogged,
                                                                                                            quiet)}
        else:
            quiet = statistics.median(r["median_ms"] for r in got["quiet"])
            hogged = statistics.median(r["median_ms"] for r in got["hog"])
            summary[name] = {"threads": got["quiet"][0]["threads"], "quiet_ms": quiet, "hog_ms": hogged,
                             "hog_over_quiet": ratio(hogged, quiet)}
    return summary


def main(argv: list[str] | None = None) -> None:
    """Run the contention benchmark and print one JSON object (or, with --worker, one explain measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="guided steps of the reduced one-click run")
    parser.add_argument("--explain-images", type=int, default=24, help="uncached explanations per configuration")
    parser.add_argument("--repeats", type=int, default=1, help="quiet/hog rounds (medians reported)")
    parser.add_argument("--quick", action="store_true", help="3 steps, 6 explanations")
    parser.add_argument("--parts", nargs="+", choices=("train", "explain"), default=["train", "explain"])
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(explain_worker(args.worker, args.explain_images, args.threads)))
        return
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if args.quick:
        args.steps, args.explain_images = 3, 6
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="contention-") as tmp:
        prepared_s = prepare_demo(Path(tmp))
        summary = measure(args, Path(tmp))
    result = {
        "bench": "contention",
        "machine": {**machine(), "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "hog": f"{usable_cpus()} busy Python processes",
        "train_command": f"python app.py --data-dir D train --project demo --json --epochs 1 --max-steps-per-epoch "
                         f"{args.steps} (demo: 2,000 train, {DEMO_SIZES['val_size']} val, {DEMO_SIZES['test_size']} "
                         "test images)",
        "demo_prepared_s": round(prepared_s, 1),
        "results": summary,
        "goal_hog_over_quiet": 2.5,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
