"""A first model on a small data set of your own: does the default λ-0 run train it? Prints JSON (issue 23, point 1).

    python bench/first_model.py [--sets digits-1-7,digits-3-8,shapes] [--device cpu]

Through the product's own route, as a new user goes, each set in a fresh data dir: `import folder` (the default
split: 10% val, 10% test per class), `model new --arch bcos_small` (from scratch), then from that same fresh model
(`--base ID`) two runs without boxes, each in a new process:

- **default**: `train --lam 0` — the adaptive schedule with its default 300 s budget (what the Fine-tune button does
  with λ 0);
- **fixed20** (the named baseline): `train --lam 0 --schedule fixed --epochs 20 --lr 1e-3`.

Reported per set: test accuracy of what each run kept (the starting model when it found nothing better), the
run's outcome and stop reason, its validation curve, wall seconds, and the ratios `default / fixed20` of accuracy,
of trainer seconds and of epochs (the epochs ratio does not depend on what else the machine runs). Goal: accuracy
ratio ≥ 0.95 with time ratio ≤ 1.

The sets (≤ 500 images each, made here, nothing downloaded):
- `digits-A-B`: real handwritten digits A and B from scikit-learn's bundled copy of the UCI digits (8×8 scans),
  enlarged 3× and placed at a random spot of a 64×64 noisy grey canvas (the class is the digit's shape);
- `shapes`: a filled circle or square of random size, colour and place on a noisy 64×64 canvas.
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

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import fresh_runs, machine  # noqa: E402
from common.cpus import thread_env  # noqa: E402

log = logging.getLogger("bench.first_model")
SIZE = 64


def _canvas(rng: np.random.Generator) -> np.ndarray:
    return np.clip(rng.normal(128, 20, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)


def write_digits(folder: Path, first: int, second: int, seed: int = 0) -> int:
    """Digits `first` and `second` as `folder/<digit>/*.png`; how many images."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # a bench-only need: say what to install
        raise SystemExit("the digits sets need scikit-learn (pip install scikit-learn): it ships the scans") from exc
    digits = load_digits()
    rng = np.random.default_rng(seed)
    count = 0
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        if label not in (first, second):
            continue
        ink = np.kron(pixels / 16.0, np.ones((3, 3)))  # 24×24, 0..1
        image = _canvas(rng).astype(np.float32)
        y, x = rng.integers(0, SIZE - 24, 2)
        patch = image[y:y + 24, x:x + 24]
        image[y:y + 24, x:x + 24] = patch * (1 - ink[..., None]) + 20 * ink[..., None]  # dark ink
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.astype(np.uint8)).save(target / f"{index:04d}.png")
        count += 1
    return count


def write_shapes(folder: Path, per_class: int = 200, seed: int = 0) -> int:
    """Filled circles and squares as `folder/<shape>/*.png`; how many images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for shape in ("circle", "square"):
        (folder / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = _canvas(rng)
            radius = int(rng.integers(7, 14))
            cy, cx = rng.integers(radius, SIZE - radius, 2)
            if shape == "circle":
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
            else:
                mask = (abs(yy - cy) <= radius * 0.85) & (abs(xx - cx) <= radius * 0.85)
            image[mask] = rng.integers(0, 256, 3)
            Image.fromarray(image).save(folder / shape / f"{i:04d}.png")
    return 2 * per_class


def cli(data_dir: Path, device: str, *args: str) -> dict[str, Any]:
    """`python app.py --data-dir D --device DEV ARGS --json` in a new process: its JSON and wall seconds."""
    cmd = [sys.executable, str(REPO / "app.py"), "--data-dir", str(data_dir), "--device", device, *args, "--json"]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=thread_env(dict(os.environ)))
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")
    text = done.stdout.strip()
    try:  # `import --json` prints one indented object; the others print theirs as the last line
        out = json.loads(text)
    except json.JSONDecodeError:
        out = json.loads(text.splitlines()[-1])
    return {**out, "wall_s": round(time.perf_counter() - started, 1)}


def kept_accuracy(run: dict[str, Any], start_accuracy: float) -> float:
    """Test accuracy of what the run kept: its choice's, or the starting model's when it found nothing better."""
    return float(run["after"]["accuracy"]) if run.get("after") else start_accuracy


def one_set(name: str, data_dir: Path, device: str) -> dict[str, Any]:
    """Make set `name`, import it, make a fresh model, run the default and the fixed-20 λ-0 runs from it."""
    photos = data_dir.parent / f"{name}-photos"
    images = write_shapes(photos) if name == "shapes" else write_digits(photos, *map(int, name.split("-")[1:]))
    imported = cli(data_dir, device, "import", "folder", str(photos), "--project", name)
    model = cli(data_dir, device, "model", "new", "--project", name, "--arch", "bcos_small")
    base = str(model["checkpoint_id"])
    start = float(cli(data_dir, device, "evaluate", "--project", name, "--checkpoint", base)["accuracy"])
    row: dict[str, Any] = {"set": name, "images": images, "start_test_accuracy": start,
                           "warnings": imported.get("warnings", [])}
    for label, extra in (("default", []), ("fixed20", ["--schedule", "fixed", "--epochs", "20", "--lr", "1e-3"])):
        run = cli(data_dir, device, "train", "--project", name, "--base", base, "--lam", "0", *extra)
        progress = json.loads((data_dir / "runs" / f"run-{run['run_id']}.json").read_text())
        row[label] = {"test_accuracy": kept_accuracy(run, start), "outcome": run.get("outcome"),
                      "stop_reason": (run.get("summary") or {}).get("stop_reason"),
                      "epochs": (run.get("summary") or {}).get("epochs"),
                      "kept_epoch": (run.get("summary") or {}).get("kept_epoch"), "wall_s": run["wall_s"],
                      "trainer_s": run["seconds"],
                      "val_accuracy": [round(e["accuracy"], 3) for e in progress.get("evals", [])]}
    row["accuracy_ratio"] = round(row["default"]["test_accuracy"] / row["fixed20"]["test_accuracy"], 3)
    row["time_ratio"] = round(row["default"]["trainer_s"] / row["fixed20"]["trainer_s"], 3)
    row["epochs_ratio"] = round(row["default"]["epochs"] / row["fixed20"]["epochs"], 3)  # load-independent
    row["goal_met"] = row["accuracy_ratio"] >= 0.95 and row["time_ratio"] <= 1.0
    return row


def main(argv: list[str] | None = None) -> None:
    """Run each set on a fresh data dir; print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="digits-1-7,digits-3-8,shapes", help="comma-separated set names")
    parser.add_argument("--device", default="cpu", help="torch device of the trainer (cpu, cuda, cuda:N)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    load_before = os.getloadavg()
    rows = []
    for name in args.sets.split(","):
        rows += fresh_runs(1, f"first-model-{name}-", lambda d, n=name: one_set(n, d / "data", args.device), log)
    print(json.dumps({"bench": "first_model", "baseline": "fixed20: train --lam 0 --schedule fixed --epochs 20 "
                      "--lr 1e-3 from the same fresh model",
                      "machine": {**machine(), "load_average_before": load_before,
                                  "load_average_after": os.getloadavg()}, "sets": rows}, indent=2))


if __name__ == "__main__":
    main()
