"""The demo's standing end-to-end benchmark: guided fine-tuning variants from the shipped baseline.

For each variant and seed: fine-tune `checkpoints/demo-baseline.pt` on the demo training split
(boxes on ≤10% of it), select by the trainer's own rule on val, and evaluate on the balanced test
split. Prints one JSON object per run and, at the end, a markdown table (mean ± spread over seeds)
for bench/RESULTS.md. The control variant ("no guidance", λ = 0) is the named baseline: same
steps, same data, no localisation loss.

    python bench/demo.py [--seeds 0 1 2] [--variants default contrast ...] [--data-dir /tmp/demo]

Slow (minutes per run on 2 CPU cores); never part of the test run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data import CLASSES, GROUPS, demo_records, generate_demo_dataset
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
}


def test_metrics(model: torch.nn.Module, data: TrainData, test: list) -> dict[str, Any]:
    """Accuracy, EPG, IoU, per-group and worst-group accuracy on the test split."""
    loader = build_loader(test, data, 128, shuffle=False, seed=0, cache=True)
    result = evaluate(model, (to_device(b, torch.device("cpu")) for b in loader), multi_label=False,
                      group_names=list(GROUPS))
    aligned = [v for k, v in result.metrics["group_accuracy"].items() if k.split("/cue-")[0] == k.split("/cue-")[1]]
    return {**{k: result.metrics[k] for k in ("accuracy", "epg", "iou", "worst_group_accuracy")},
            "aligned_accuracy": sum(aligned) / len(aligned), "group_accuracy": result.metrics["group_accuracy"]}


def run(variant: str, seed: int, data: TrainData, test: list, baseline: Path) -> dict[str, Any]:
    """One fine-tune; returns its test metrics and wall time."""
    model = load_checkpoint(baseline).model
    config = TrainConfig().with_overrides(seed=seed, device="cpu", **{**RECIPE, **VARIANTS[variant]})
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        result = fine_tune(model, data, config, out_dir=Path(out))
        chosen = load_checkpoint(Path(result.best["path"])).model if result.best else model
        seconds = time.monotonic() - started
        metrics = test_metrics(chosen, data, test)
    return {"variant": variant, "seed": seed, "seconds": round(seconds, 1), **metrics}


def table(rows: list[dict[str, Any]], base: dict[str, Any]) -> str:
    """Markdown table: mean ± half-range over seeds per variant."""
    def cell(values: list[float], digits: int = 3) -> str:
        mean, spread = statistics.fmean(values), (max(values) - min(values)) / 2
        return f"{mean:.{digits}f} ± {spread:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"

    keys = ("worst_group_accuracy", "aligned_accuracy", "accuracy", "epg", "iou", "seconds")
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
    base = test_metrics(load_checkpoint(args.baseline).model, data, test)
    print(json.dumps({"variant": "baseline", **base}), flush=True)
    rows = []
    for variant in args.variants:
        for seed in args.seeds:
            rows.append(run(variant, seed, data, test, args.baseline))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows, base))


if __name__ == "__main__":
    main()
