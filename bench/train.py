"""Benchmark: guided fine-tuning throughput per layer, through the trainer's own step, JSON out.

Measures images/s of `core.train.step.guided_step` + backward + Adam step at layers Input, Mid2 and
Final on the demo model (`bcos_small`, 64², batch 64, CPU), against the plain classification step
(λ = 0, no explanation) measured in the same run, with every image annotated (the worst case) and
with 10% annotated (the demo's case). The paper reports Mid2 ≈ 1.7× faster than Input; we print
our ratio. With a GPU it also times B-cos ResNet-50 at 224², batch 64: step time, peak memory,
bf16 vs fp32.

    python bench/train.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.bcos import build_model
from core.explain import EXPLAINERS
from core.guidance import LOSSES
from core.train.step import guided_step

LAYERS = ("input", "mid2", "final")


def make_batch(batch: int, size: int, classes: int, annotated: float, device: torch.device) -> dict[str, Any]:
    """A collated-like batch: images, single-label targets, one box per image, `annotated` fraction flagged."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    corners = torch.rand(batch, 1, 4, generator=gen) * size
    boxes = torch.cat((corners[..., :2].minimum(corners[..., 2:]), corners[..., :2].maximum(corners[..., 2:]) + 4), -1)
    out = {"images": torch.rand(batch, 3, size, size, generator=gen), "label": labels,
           "target": torch.nn.functional.one_hot(labels, classes).float(), "boxes": boxes.clamp(max=size),
           "box_labels": labels[:, None], "box_valid": torch.ones(batch, 1, dtype=torch.bool),
           "annotated": torch.arange(batch) < max(1, round(annotated * batch))}
    return {k: v.to(device) for k, v in out.items()}


def time_steps(model: torch.nn.Module, batch: dict[str, Any], *, layer: str, lam: float, repeats: int,
               autocast: torch.dtype | None = None) -> list[float]:
    """Seconds per full optimiser step (after two warm-up steps)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    with EXPLAINERS["bcos"](model, layer=layer) as explainer:
        for i in range(repeats + 2):
            if batch["images"].is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            loss, _ = guided_step(model, explainer, batch, loss_fn=LOSSES["energy"], lam=lam, multi_label=False,
                                  autocast_dtype=autocast)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if batch["images"].is_cuda:
                torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - start)
    return times


def cpu_section(repeats: int) -> dict[str, Any]:
    """Demo model on CPU: images/s per layer and annotated fraction, vs the plain step."""
    torch.manual_seed(0)
    model = build_model("bcos_small", 2).train()
    device = torch.device("cpu")
    out: dict[str, Any] = {"model": "bcos_small", "image_size": 64, "batch": 64}
    plain = statistics.median(time_steps(model, make_batch(64, 64, 2, 1.0, device), layer="input", lam=0.0,
                                         repeats=repeats))
    out["plain_images_per_s"] = round(64 / plain, 1)
    for fraction in (1.0, 0.1):
        batch = make_batch(64, 64, 2, fraction, device)
        rows = {}
        for layer in LAYERS:
            step = statistics.median(time_steps(model, batch, layer=layer, lam=1e-3, repeats=repeats))
            rows[layer] = {"images_per_s": round(64 / step, 1), "guided_over_plain": round(step / plain, 2)}
        rows["mid2_speedup_over_input"] = round(rows["mid2"]["images_per_s"] / rows["input"]["images_per_s"], 2)
        out[f"annotated_{int(fraction * 100)}pct"] = rows
    return out


def gpu_section(repeats: int) -> dict[str, Any]:
    """B-cos ResNet-50, 224², batch 64 on CUDA: step time and peak memory, fp32 vs bf16, per layer."""
    device = torch.device("cuda")
    model = build_model("bcos_resnet50", 20).to(device).train()
    batch = make_batch(64, 224, 20, 0.5, device)
    out: dict[str, Any] = {"model": "bcos_resnet50", "device": torch.cuda.get_device_name(device)}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        for layer in LAYERS:
            torch.cuda.reset_peak_memory_stats(device)
            step = statistics.median(time_steps(model, batch, layer=layer, lam=1e-3, repeats=repeats, autocast=dtype))
            out[f"{name}_{layer}"] = {"step_s": round(step, 4), "images_per_s": round(64 / step, 1),
                                      "peak_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)}
        out[f"{name}_mid2_speedup_over_input"] = round(out[f"{name}_mid2"]["images_per_s"]
                                                       / out[f"{name}_input"]["images_per_s"], 2)
    return out


def main() -> None:
    """Parse flags, run the sections, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 10
    result = {"bench": "train", "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": cpu_section(repeats)}
    if torch.cuda.is_available():
        result["gpu"] = gpu_section(repeats)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
