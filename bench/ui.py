"""UI benchmark: the real app launched in-process, driven through gradio_client; prints JSON.

    python bench/ui.py [--quick] [--images 100000] [--explain-images 40] [--pages 40]

Measures, each against a named baseline in the same run:
- selecting an image's explanation (`/explain`, B-cos at Input, predicted class) on a small demo-like
  project: uncached (first request per image; goal p95 <= 1 s) vs cached (the same requests again;
  goal p95 <= 150 ms);
- one gallery page of 48 (`/gallery`, random pages, sorted by name) of a 100,000-image project
  (goal p95 <= 300 ms) vs loading every image row of that project through the ORM, and vs the same
  page computed by the handler in-process (what HTTP + gradio add).

The demo-like project uses the shipped baseline `checkpoints/demo-baseline.pt` when present, else a
random-weight network of the same architecture (the cost of an explanation does not depend on the
weights). Every row of the big project points at one of a few real PNGs (hard links), so the
gallery serves real files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, insert, select  # noqa: E402

from services.settings import Settings  # noqa: E402
from store.db import session_scope  # noqa: E402
from store.models import Image  # noqa: E402

DEMO, BIG = "demo", "big"
BASELINE = REPO / "checkpoints" / "demo-baseline.pt"
PAGE_SIZE = 48


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/max in milliseconds (nearest-rank)."""
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"n": len(ordered), "p50_ms": pick(0.5), "p95_ms": pick(0.95), "max_ms": round(ordered[-1] * 1000, 1)}


def timed(calls: list[Callable[[], Any]]) -> tuple[dict[str, float], float]:
    """Wall-clock percentiles of each call, and the process CPU seconds they took in all (server included)."""
    samples, cpu = [], time.process_time()
    for call in calls:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return percentiles(samples), round(time.process_time() - cpu, 2)


def build_demo_like(engine: Engine, settings: Settings, quick: bool) -> str:
    """The demo project at a small size, with the shipped baseline or a same-architecture stand-in."""
    from core.bcos import build_model
    from core.data import SyntheticConfig
    from core.train import file_sha256, save_checkpoint
    from services.demo import create_demo_project
    from store.projects import get_project
    from store.runs import register_checkpoint

    sizes = (16, 16, 16) if quick else (32, 32, 64)
    config = SyntheticConfig(train_size=sizes[0], val_size=sizes[1], test_size=sizes[2])
    create_demo_project(engine, settings, config=config, baseline=BASELINE if BASELINE.exists() else None)
    if BASELINE.exists():
        return "checkpoints/demo-baseline.pt (shipped baseline)"
    with session_scope(engine) as session:
        project = get_project(session, DEMO)
        classes = [c.name for c in project.classes]
        ckpt = save_checkpoint(settings.data_dir / "checkpoints", build_model("bcos_small", len(classes)),
                               classes=classes)
        register_checkpoint(session, project_id=project.id, path=str(ckpt), sha256=file_sha256(ckpt),
                            arch="bcos_small", activate=True)
    return "random-weight bcos_small (no shipped baseline yet)"


def build_big(engine: Engine, settings: Settings, n_images: int) -> float:
    """A project of `n_images` rows bulk-inserted, each a hard link to one of the demo's PNGs; returns seconds."""
    from store.projects import create_project

    start = time.perf_counter()
    sources = sorted((settings.data_dir / "demo").rglob("*.png"))[:8]
    target = settings.data_dir / BIG
    target.mkdir(parents=True)
    rows = []
    for i in range(n_images):
        name = f"{BIG}/{i:06d}.png"
        os.link(sources[i % len(sources)], settings.data_dir / name)  # ext4 allows 65,000 links per file
        rows.append({"path": name, "sha256": f"{i:064x}", "width": 64, "height": 64,
                     "split": ("train", "train", "train", "val", "test")[i % 5], "group": f"g{i % 4}"})
    with session_scope(engine) as session:
        project = create_project(session, name=BIG, task="single_label", image_size=64, classes=["a", "b"])
        for row in rows:
            row["project_id"] = project.id
        session.execute(insert(Image), rows)
    return round(time.perf_counter() - start, 1)


def launch(deps: Any) -> tuple[Any, str]:
    """The real app on a free port, in this process."""
    from ui.layout import build_demo, launch_options

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = build_demo(deps)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(deps.settings))
    return demo, f"http://127.0.0.1:{port}/"


def bench_explain(client: Any, engine: Engine, count: int) -> dict[str, Any]:
    """Uncached vs cached `/explain` over `count` images (after one warm-up that loads the model)."""
    with session_scope(engine) as session:
        ids = list(session.scalars(select(Image.id).where(Image.path.like(f"{DEMO}/%")).order_by(Image.id)))

    def explain(image_id: int) -> Callable[[], Any]:
        return lambda: client.predict(DEMO, image_id, "B-cos", "Input", "(predicted class)", api_name="/explain")

    first, _ = timed([explain(ids[0])])
    chosen = ids[1:count + 1]
    uncached, uncached_cpu = timed([explain(i) for i in chosen])
    cached, cached_cpu = timed([explain(i) for i in chosen])
    return {"first_call_with_model_load_ms": first["p50_ms"], "uncached": {**uncached, "cpu_s": uncached_cpu},
            "cached_baseline_same_requests": {**cached, "cpu_s": cached_cpu},
            "goals": {"uncached_p95_ms": 1000, "cached_p95_ms": 150},
            "met": {"uncached": uncached["p95_ms"] <= 1000, "cached": cached["p95_ms"] <= 150},
            "uncached_over_cached_p50": round(uncached["p50_ms"] / max(cached["p50_ms"], 1e-3), 1)}


def bench_gallery(client: Any, deps: Any, n_images: int, pages: int) -> dict[str, Any]:
    """Random gallery pages through gradio_client vs in-process handler vs loading every row."""
    from ui.handlers import explore

    rng = random.Random(0)
    numbers = [rng.randrange(n_images // PAGE_SIZE) for _ in range(pages)]
    args = (BIG, explore.ANY, explore.ANY, explore.ANY, "any", False, "Name")
    client.predict(*args, 0, api_name="/gallery")  # warm-up
    through_api, api_cpu = timed([lambda p=p: client.predict(*args, p, api_name="/gallery") for p in numbers])
    in_process, _ = timed([lambda p=p: explore.gallery_page(deps, *args, p) for p in numbers])

    def load_all() -> int:
        with session_scope(deps.engine) as session:
            return len(session.scalars(select(Image).where(Image.path.like(f"{BIG}/%"))).all())

    everything, _ = timed([load_all for _ in range(3)])
    return {"images": n_images, "page_size": PAGE_SIZE, "page_via_gradio_client": {**through_api, "cpu_s": api_cpu},
            "page_handler_in_process": in_process, "baseline_load_every_row_orm": everything,
            "goal_p95_ms": 300, "met": through_api["p95_ms"] <= 300,
            "baseline_over_page_p50": round(everything["p50_ms"] / max(through_api["p50_ms"], 1e-3), 1)}


def main() -> int:
    """Build both projects, serve the app, measure, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a short run)")
    parser.add_argument("--images", type=int, default=100_000, help="rows of the big project")
    parser.add_argument("--explain-images", type=int, default=None, help="images explained (default 40, quick 12)")
    parser.add_argument("--pages", type=int, default=None, help="gallery pages requested (default 60, quick 20)")
    args = parser.parse_args()
    from gradio_client import Client

    from services.explanations import configure_serving_threads
    from ui.deps import build_deps

    data_dir = Path(tempfile.mkdtemp(prefix="bench-ui-")) / "data"
    deps = build_deps(Settings(data_dir=data_dir))
    threads = configure_serving_threads(deps.settings)  # as `python app.py serve` does
    model = build_demo_like(deps.engine, deps.settings, args.quick)
    populate_s = build_big(deps.engine, deps.settings, args.images)
    load_before = os.getloadavg()
    demo, url = launch(deps)
    try:
        # ssl_verify=False: the URL is plain http (no TLS either way), but gradio_client makes a new httpx client per
        # request and httpx loads the CA store into an SSL context for each unless told not to: a third of this
        # process's CPU in py-spy, paid by the bench's client, never by a browser (one kept-alive connection)
        client = Client(url, verbose=False, download_files=False, ssl_verify=False)
        floor, _ = timed([lambda: client.predict(api_name="/projects") for _ in range(20)])
        explain = bench_explain(client, deps.engine, args.explain_images or (12 if args.quick else 40))
        gallery = bench_gallery(client, deps, args.images, args.pages or (20 if args.quick else 60))
    finally:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON
            demo.close()
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "platform": platform.platform(), "load_avg_before": load_before,
                                  "load_avg_after": os.getloadavg(), "torch_threads": threads},
                      "model": model, "populate_big_project_s": populate_s,
                      "round_trip_floor_trivial_endpoint": floor, "explain": explain,
                      "gallery": gallery}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
