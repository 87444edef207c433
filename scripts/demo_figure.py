"""Draw the README's before/after picture from the real engine's explanations.

Rows: test images whose corner badge *conflicts* with the object's class. Columns: the image with
its object box, the baseline's B-cos explanation of its prediction, the guided model's. Each panel
is titled with the predicted class. Writes docs/demo_before_after.png.

    python scripts/demo_figure.py --after PATH_TO_FINE_TUNED_CHECKPOINT [--data-dir data]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data import CLASSES, demo_records, generate_demo_dataset, load_rgb
from core.explain import EXPLAINERS, overlay_heatmap
from core.train import load_checkpoint

log = logging.getLogger("demo_figure")
ROOT = Path(__file__).resolve().parents[1]
SCALE = 4  # 64 px → 256 px panels


def panel(image: np.ndarray, caption: str, box: tuple[float, ...] | None = None) -> np.ndarray:
    """Upscaled RGB panel with an optional box and a caption bar."""
    big = cv2.resize(image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    if box is not None:
        x0, y0, x1, y1 = (round(v * SCALE) for v in box)
        cv2.rectangle(big, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 2)
    bar = np.full((34, big.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, caption, (8, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return np.vstack([bar, big])


def explain(model: torch.nn.Module, images: torch.Tensor) -> tuple[np.ndarray, list[int]]:
    """B-cos maps (B, H, W) of each image's predicted class, and the predictions."""
    with EXPLAINERS["bcos"](model.eval(), layer="input") as explainer:
        with torch.no_grad():
            predicted = model(images).argmax(1)
        maps = explainer(images, predicted)
    return maps.numpy(), predicted.tolist()


def main() -> None:
    """Render the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=ROOT / "checkpoints" / "demo-baseline.pt")
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/guidance-demo-bench"))
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "demo_before_after.png")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    generate_demo_dataset(args.data_dir)
    records = [r for r in demo_records(args.data_dir, "test") if r.group in (1, 2)][:: 50][: args.rows]
    pixels = [load_rgb(r.path) for r in records]
    images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255
    rows = []
    before_maps, before_pred = explain(load_checkpoint(args.before).model, images)
    after_maps, after_pred = explain(load_checkpoint(args.after).model, images)
    for i, record in enumerate(records):
        truth = CLASSES[record.labels[0]]
        rows.append(np.hstack([
            panel(pixels[i], f"{truth} object, badge lies", record.boxes[0]),
            panel(overlay_heatmap(pixels[i], before_maps[i], alpha=0.6), f"before: {CLASSES[before_pred[i]]}"),
            panel(overlay_heatmap(pixels[i], after_maps[i], alpha=0.6), f"after: {CLASSES[after_pred[i]]}"),
        ]))
    figure = np.vstack(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
    log.info("wrote %s (%dx%d)", args.out, figure.shape[1], figure.shape[0])


if __name__ == "__main__":
    main()
