"""Benchmark: one guided training step vs one plain classification step, per layer, JSON out.

Both steps are the trainer's own, ``core.train.step.guided_step`` followed by ``backward()`` and an Adam step
(Rao et al., ICCV 2023, §3). Guided: one forward through the B-cos explainer, the explanation with
``create_graph=True`` for the annotated rows only (``explainer.attribute(..., rows=has_box)``), the Energy
loss summed over them plus BCE on the whole batch, backward. Plain: the same function with λ = 0, which
takes a plain forward and BCE. Half of the batch is annotated (one box per image).

Run from the repository root: ``python bench/guided_step.py [--quick]`` (prints one JSON object).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import cpu_name
from core.bcos import resnet18
from core.explain import EXPLAINERS
from core.guidance import LOSSES
from core.train.step import guided_step

log = logging.getLogger("bench.guided_step")
LAYERS = ("input", "mid2", "final")


def make_batch(batch: int, size: int, classes: int, seed: int) -> dict[str, Tensor]:
    """A ``core.data.collate_guidance``-like batch: one class and one random box per image, first half annotated."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    corners = torch.rand(batch, 1, 4, generator=gen) * size
    boxes = torch.cat((corners[..., :2].minimum(corners[..., 2:]), corners[..., :2].maximum(corners[..., 2:])), -1)
    return {
        "images": torch.rand(batch, 3, size, size, generator=gen), "label": labels,
        "target": F.one_hot(labels, classes).float(), "boxes": boxes, "box_labels": labels[:, None],
        "box_valid": torch.ones(batch, 1, dtype=torch.bool), "annotated": torch.arange(batch) < batch // 2,
    }  # fmt: skip


def trainer_step(
    model: nn.Module, explainer: object, optimizer: torch.optim.Optimizer, batch: dict[str, Tensor], lam: float
) -> None:
    """``core.train.step.guided_step`` (multi-label BCE, Energy), backward, Adam step; λ = 0 is the plain step."""
    optimizer.zero_grad(set_to_none=True)
    loss, _ = guided_step(model, explainer, batch, loss_fn=LOSSES["energy"], lam=lam, multi_label=True,
                          generator=torch.Generator().manual_seed(0))
    loss.backward()
    optimizer.step()


def interleaved_medians(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and process-CPU seconds per step. Steps run round-robin (after one warm-up each) so
    that load from other processes on a shared machine hits all of them alike; CPU time is the steadier
    figure when other processes compete for the cores."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for step in steps.values():
        step()
    for _ in range(repeats):
        for name, step in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        name: {"wall_s": statistics.median(w for w, _ in values), "cpu_s": statistics.median(c for _, c in values)}
        for name, values in times.items()
    }


def machine(threads: int) -> dict:
    """What the numbers were measured on."""
    return {
        "device": "cpu",
        "name": f"{cpu_name()}, {os.cpu_count()} logical CPUs",
        "threads": threads,
        "torch": torch.__version__,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shrinks everything for a smoke run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lam", type=float, default=1e-3, help="λ of the Energy loss")
    parser.add_argument("--threads", type=int, default=1, help="1: see bench/RESULTS.md (OpenMP on shared cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="64², batch 8")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.batch = 64, 8
    return args


def main(argv: list[str] | None = None) -> None:
    """Time the plain step and the guided step at each layer in one run and print one JSON object."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = resnet18(num_classes=args.classes).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = make_batch(args.batch, args.size, args.classes, args.seed)
    with contextlib.ExitStack() as stack:
        explainers = {layer: stack.enter_context(EXPLAINERS["bcos"](model, layer=layer)) for layer in LAYERS}
        steps = {"plain": lambda: trainer_step(model, explainers["input"], optimizer, batch, 0.0)}
        for layer in LAYERS:
            steps[layer] = lambda layer=layer: trainer_step(model, explainers[layer], optimizer, batch, args.lam)
        seconds = interleaved_medians(steps, args.repeats)
    log.info("seconds: %s", seconds)
    result = {
        "bench": "guided_step",
        "machine": machine(args.threads),
        "model": "bcos_resnet18 (random weights, train mode)",
        "size": args.size,
        "batch": args.batch,
        "annotated": args.batch // 2,
        "step": "core.train.step.guided_step + backward + Adam (plain: the same with λ = 0)",
        "repeats": args.repeats,
        "seconds": seconds,
    }
    for clock in ("wall_s", "cpu_s"):
        plain, guided = seconds["plain"][clock], {layer: seconds[layer][clock] for layer in LAYERS}
        ratios = {layer: value / plain for layer, value in guided.items()}
        mid2_speedup = guided["input"] / guided["mid2"]
        result[clock.removesuffix("_s")] = {
            "guided_over_plain": ratios,
            "mid2_speedup_over_input": mid2_speedup,
            "goals_met": {
                "input_le_2.5x": ratios["input"] <= 2.5,
                "final_le_1.5x": ratios["final"] <= 1.5,
                "mid2_ge_1.5x_faster_than_input": mid2_speedup >= 1.5,
            },
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
