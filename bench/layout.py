"""Benchmark: the one click's training step in the channels-last memory layout against the default (NCHW), JSON out.

`core.train.fine_tune` puts the model in the channels-last layout (`core.train.loop.channels_last`). This times the
step it runs: the shipped demo's B-cos net (bcos_small, 64²), a batch of 64 images plus 64 box-swap composites (the
default `counterfactuals` 1.0, all 64 annotated), the Energy loss on the contrast at Mid2 with
`create_graph=True`, backward, Adam — `core.train.step.guided_step` as the trainer calls it. Both layouts start
from the same weights and see the same batch; the steps run interleaved (bench/guided_step.py
`interleaved_medians`) so the machine's load hits both alike. Also checks that both layouts give the same loss.

    python bench/layout.py [--threads 2] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine
from bench.guided_step import interleaved_medians, make_batch
from core.bcos import build_model
from core.explain import EXPLAINERS
from core.guidance import LOSSES
from core.train.loop import channels_last
from core.train.step import guided_step

log = logging.getLogger("bench.layout")


def main(argv: list[str] | None = None) -> None:
    """Time the guided step in both layouts and print one JSON object with the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2: the CI machine's cores)")
    parser.add_argument("--batch", type=int, default=128, help="images per step (64 + 64 composites)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="batch 16, 2 repeats (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats = 16, 2
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    default = build_model("bcos_small", 2).train()
    models = {"nchw": default, "channels_last": channels_last(copy.deepcopy(default))}
    batch = make_batch(args.batch, 64, 2, seed=0)
    batch["annotated"] = torch.ones(args.batch, dtype=torch.bool)
    with contextlib.ExitStack() as stack:
        steps, losses = {}, {}
        for name, model in models.items():
            explainer = stack.enter_context(EXPLAINERS["bcos"](model, layer="mid2"))
            optimizer = torch.optim.Adam(model.parameters(), lr=0.0)  # lr 0: both stay at the same weights

            def step(model=model, explainer=explainer, optimizer=optimizer, name=name) -> None:
                optimizer.zero_grad(set_to_none=True)
                loss, _ = guided_step(model, explainer, batch, loss_fn=LOSSES["energy"], lam=0.5,
                                      multi_label=False, contrast=True)
                loss.backward()
                optimizer.step()
                losses[name] = float(loss.detach())

            steps[name] = step
        times = interleaved_medians(steps, args.repeats)
    ratio = times["nchw"]["wall_s"] / times["channels_last"]["wall_s"]
    print(json.dumps({
        "bench": "layout", "machine": {**machine(), "threads": args.threads, "torch": torch.__version__},
        "step": f"bcos_small 64², batch {args.batch} all annotated, Energy on the contrast at Mid2, backward, Adam",
        "baseline": "nchw (the default layout)", "times": times,
        "speedup_channels_last_vs_nchw": round(ratio, 2),
        "same_loss": abs(losses["nchw"] - losses["channels_last"]) <= 1e-4 * max(1.0, abs(losses["nchw"])),
    }))


if __name__ == "__main__":
    main()
