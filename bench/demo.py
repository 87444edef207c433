"""The demo's standing end-to-end benchmark: guided fine-tuning variants from the shipped baseline.

For each variant and seed: fine-tune `checkpoints/demo-baseline.pt` on the demo training split
(boxes on ≤10% of it), select by the trainer's own rule on val, and evaluate on the balanced test
split. Beside accuracy and EPG it asks where each model's *decision* on the cue-conflicting test images
comes from: the B-cos explanation of `logit_true - logit_other`, summed over the badge and over the
object box (the trap of docs/science.md §7 is a badge that still argues for the wrong class). Prints one
JSON object per run and, at the end, a markdown table (mean ± spread over seeds) for bench/RESULTS.md.
The control variant ("no guidance", λ = 0) is the named baseline: same steps, same data, no
localisation loss.

    python bench/demo.py [--seeds 0 1 2] [--variants "contrast target" ...] [--data-dir /tmp/demo]

Slow (about 15 minutes for 3 seeds on 2 CPU cores); never part of the test run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data import CLASSES, GROUPS, demo_records, generate_demo_dataset, load_manifest, load_rgb
from core.explain import EXPLAINERS
from core.guidance import boxes_to_masks
from core.train import TrainConfig, load_checkpoint
from core.train.evaluate import evaluate
from core.train.fine_tune import fine_tune
from core.train.loop import TrainData, build_loader, to_device

ROOT = Path(__file__).resolve().parents[1]
# Every variant is spelled out against the paper's recipe (Energy loss, B-cos at the input, class logit,
# λ/lr/epochs of TrainConfig), so the table stays the same when the shipped default changes.
RECIPE: dict[str, Any] = {"loss": "energy", "attribution": "bcos", "layer": "input", "target": "class"}
VARIANTS: dict[str, dict[str, Any]] = {
    "no guidance (λ=0)": {"lam": 0.0},
    "energy, input, class (paper recipe)": {},
    "contrast target": {"target": "contrast"},
    "layer mid2": {"layer": "mid2"},
    "contrast target, layer mid2": {"target": "contrast", "layer": "mid2"},
    "layer final": {"layer": "final"},
    "L1 loss": {"loss": "l1"},
    "1% boxes": {"annotated_fraction": 0.1},
    "boxes dilated 25%": {"box_dilation": 0.25},
    # The shipped default (contrast at Mid2) with fewer and coarser boxes: what a user should expect.
    "contrast, mid2, 1% boxes": {"target": "contrast", "layer": "mid2", "annotated_fraction": 0.1},
    "contrast, mid2, boxes dilated 25%": {"target": "contrast", "layer": "mid2", "box_dilation": 0.25},
}


def aligned(group: str) -> bool:
    """True for a cue-aligned group such as ``"warm/cue-warm"``."""
    label, cue = group.split("/cue-")
    return label == cue


@dataclass(frozen=True)
class DecisionProbe:
    """The cue-conflicting test images, to ask where the *decision* comes from (docs/science.md §7).

    The B-cos explanation of the contrast `logit_true - logit_other` sums exactly to the decision margin;
    summed over the badge it says how much the shortcut still argues (negative: for the wrong class, the
    trap; positive: inverted), summed over the object box how much the object does.
    """

    images: torch.Tensor  # (N, 3, H, W) in [0, 1]
    targets: torch.Tensor  # (N,) true classes
    badge: torch.Tensor  # (H, W) bool
    boxes: torch.Tensor  # (N, H, W) bool

    @classmethod
    def from_records(cls, records: list, cue_region: list[int], size: int) -> DecisionProbe:
        """Build from the conflicting records of a split."""
        conflicting = [r for r in records if not aligned(GROUPS[r.group])]
        images = torch.from_numpy(np.stack([load_rgb(r.path) for r in conflicting])).permute(0, 3, 1, 2).float() / 255
        boxes = torch.tensor([[r.boxes[0]] for r in conflicting])  # (N, 1, 4): one object box per image
        masks = boxes_to_masks(boxes, torch.ones(len(conflicting), 1, dtype=torch.bool), size, size)
        badge = boxes_to_masks(torch.tensor([[cue_region]], dtype=torch.float), torch.ones(1, 1, dtype=torch.bool),
                               size, size)[0]
        return cls(images, torch.tensor([r.labels[0] for r in conflicting]), badge, masks)

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        """Mean contribution of the badge and of the object box to the decision margin."""
        with EXPLAINERS["bcos"](model.eval(), layer="input") as explainer:
            maps = torch.cat([explainer.attribute_detached(self.images[i:i + 128], self.targets[i:i + 128],
                                                           contrast=True).maps
                              for i in range(0, len(self.targets), 128)])
        return {"badge_to_decision": float((maps * self.badge).sum((1, 2)).mean()),
                "object_to_decision": float((maps * self.boxes).sum((1, 2)).mean())}


def test_metrics(model: torch.nn.Module, data: TrainData, test: list, probe: DecisionProbe) -> dict[str, Any]:
    """Accuracy, EPG, IoU, per-group and worst-group accuracy on the test split; the decision's sources."""
    loader = build_loader(test, data, 128, shuffle=False, seed=0, cache=True)
    result = evaluate(model, (to_device(b, torch.device("cpu")) for b in loader), multi_label=False,
                      group_names=list(GROUPS))
    accuracies = [v for k, v in result.metrics["group_accuracy"].items() if aligned(k)]
    return {**{k: result.metrics[k] for k in ("accuracy", "epg", "iou", "worst_group_accuracy")},
            "aligned_accuracy": sum(accuracies) / len(accuracies), **probe(model),
            "group_accuracy": result.metrics["group_accuracy"]}


def run(variant: str, seed: int, data: TrainData, test: list, probe: DecisionProbe, baseline: Path) -> dict[str, Any]:
    """One fine-tune; returns its test metrics and wall time."""
    model = load_checkpoint(baseline).model
    config = TrainConfig().with_overrides(seed=seed, device="cpu", **{**RECIPE, **VARIANTS[variant]})
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        result = fine_tune(model, data, config, out_dir=Path(out))
        chosen = load_checkpoint(Path(result.best["path"])).model if result.best else model
        seconds = time.monotonic() - started
        metrics = test_metrics(chosen, data, test, probe)
    return {"variant": variant, "seed": seed, "seconds": round(seconds, 1), **metrics}


def table(rows: list[dict[str, Any]], base: dict[str, Any]) -> str:
    """Markdown table: mean ± half-range over seeds per variant."""
    def cell(values: list[float], digits: int = 3) -> str:
        mean, spread = statistics.fmean(values), (max(values) - min(values)) / 2
        return f"{mean:.{digits}f} ± {spread:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"

    keys = ("worst_group_accuracy", "aligned_accuracy", "accuracy", "epg", "iou", "badge_to_decision",
            "object_to_decision", "seconds")
    lines = ["| variant | seeds | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys),
             "| baseline (shipped) | - | " + " | ".join(f"{base[k]:.3f}" if k in base else "-" for k in keys) + " |"]
    order = {name: i for i, name in enumerate(VARIANTS)}
    for variant in sorted(dict.fromkeys(r["variant"] for r in rows), key=lambda v: order.get(v, len(order))):
        group = [r for r in rows if r["variant"] == variant]
        cells = (cell([r[k] for r in group], 0 if k == "seconds" else 3) for k in keys)
        lines.append(f"| {variant} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Run the variants × seeds and print JSON lines plus the markdown table (or rebuild it from a log)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "guidance-demo-bench")
    parser.add_argument("--baseline", type=Path, default=ROOT / "checkpoints" / "demo-baseline.pt")
    parser.add_argument("--from-log", type=Path, nargs="+", default=None,
                        help="only rebuild the table from the JSON lines of earlier runs of this script")
    args = parser.parse_args()
    if args.from_log:
        lines = [json.loads(line) for path in args.from_log for line in path.read_text().splitlines()
                 if line.startswith("{")]
        base = next(r for r in lines if r["variant"] == "baseline")
        rows = [r for r in lines if r["variant"] != "baseline"]
        print(table(rows, base))
        return
    generate_demo_dataset(args.data_dir)
    data = TrainData(train=demo_records(args.data_dir, "train"), val=demo_records(args.data_dir, "val"),
                     classes=list(CLASSES), image_size=64, multi_label=False, group_names=list(GROUPS))
    test = demo_records(args.data_dir, "test")
    probe = DecisionProbe.from_records(test, load_manifest(args.data_dir)["cue_region"], 64)
    base = test_metrics(load_checkpoint(args.baseline).model, data, test, probe)
    print(json.dumps({"variant": "baseline", **base}), flush=True)
    rows = []
    for variant in args.variants:
        for seed in args.seeds:
            rows.append(run(variant, seed, data, test, probe, args.baseline))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows, base))


if __name__ == "__main__":
    main()
