"""Benchmark: batched localisation evaluation (EPG + IoU) vs the reference procedure, one run, JSON out.

Rao et al., ICCV 2023 evaluate EPG and IoU over every (image, ground-truth class) pair. Their code
runs a forward pass on an evaluation batch of 4 and then, per pair, one ``autograd.grad`` with
``create_graph=True`` over that whole batch. Ours is the app's own evaluation, ``core.train.evaluate.evaluate``
(multi-label): ``Explainer.attribute_multi`` forwards each image of a batch once (graph-free up to the layer) and
runs one batched explanation backward per class slot on the retained graph, metrics on the device. A second
baseline is our previous per-pair procedure (images repeated once per class, one graph-free forward and backward
per pair, batched). All report EPG/IoU per image (mean over its classes); the bench checks they agree.

Run from the repository root: ``python bench/evaluate.py [--quick]`` (prints one JSON object).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import cpu_name
from core.bcos import explanation_mode, resnet18
from core.explain import EXPLAINERS
from core.guidance import boxes_to_masks
from core.metrics import box_iou, energy_pointing_game
from core.train.evaluate import EvalResult, evaluate

log = logging.getLogger("bench.evaluate")
T = TypeVar("T")
CLOCK = "wall"  # or "cpu"; set from --clock


@dataclass(frozen=True)
class EvalData:
    """Synthetic multi-label detection data: ``images (N, 3, H, W)``, ``labels (N, C)`` bool,
    ``boxes (N, C, K, 4)`` and ``valid (N, C, K)`` (each present class has 1..K boxes)."""

    images: Tensor
    labels: Tensor
    boxes: Tensor
    valid: Tensor

    def pairs(self) -> Tensor:
        """``(P, 2)`` (image, class) index pairs for every ground-truth class."""
        return self.labels.nonzero()

    def masks(self, pairs: Tensor) -> Tensor:
        """``(P, H, W)`` union masks of each pair's boxes."""
        img, cls = pairs.unbind(1)
        return boxes_to_masks(self.boxes[img, cls], self.valid[img, cls], *self.images.shape[-2:])


def build_data(num_images: int, num_classes: int, size: int, max_classes: int, seed: int) -> EvalData:
    """Random images with 1..``max_classes`` classes each (VOC averages ≈ 1.5), 1–2 boxes per class."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(num_images, 3, size, size, generator=gen)
    scores = torch.rand(num_images, num_classes, generator=gen)
    count = torch.randint(1, max_classes + 1, (num_images, 1), generator=gen)
    labels = scores.argsort(1, descending=True).argsort(1) < count  # top-`count` random classes
    corners = torch.rand(num_images, num_classes, 2, 4, generator=gen) * size
    boxes = torch.cat((corners[..., :2].minimum(corners[..., 2:]), corners[..., :2].maximum(corners[..., 2:])), -1)
    valid = torch.stack((torch.ones_like(labels), torch.rand(num_images, num_classes, generator=gen) < 0.5), -1)
    return EvalData(images, labels, boxes, valid & labels[..., None])


def eval_batches(data: EvalData, batch: int) -> list[dict[str, Tensor]]:
    """``data`` as ``core.data.collate_guidance``-style batches (boxes flattened to ``(B, C·K, 4)``)."""
    n, classes, k = data.valid.shape
    box_labels = torch.arange(classes, device=data.valid.device).repeat_interleave(k).expand(n, -1)
    out = []
    for start in range(0, n, batch):
        rows = slice(start, start + batch)
        size = data.images[rows].shape[0]
        out.append({
            "images": data.images[rows], "target": data.labels[rows].float(),
            "label": data.labels[rows].float().argmax(1), "group": torch.full((size,), -1),
            "key": torch.arange(start, start + size), "boxes": data.boxes[rows].flatten(1, 2),
            "box_labels": box_labels[rows], "box_valid": data.valid[rows].flatten(1, 2),
        })  # fmt: skip
    return out


def evaluate_batched(model: nn.Module, batches: list[dict[str, Tensor]], layer: str, chunk: int) -> EvalResult:
    """Our procedure: the app's ``core.train.evaluate.evaluate`` (multi-label, B-cos, ``chunk`` pairs per pass)."""
    return evaluate(model, batches, multi_label=True, attribution="bcos", layer=layer, chunk=chunk)


def evaluate_per_pair(model: nn.Module, data: EvalData, layer: str, chunk: int) -> Tensor:
    """Our previous procedure: every (image, class) pair as a row of its own (images repeated per class),
    ``chunk`` pairs per graph-free forward + backward; returns the pairs' maps ``(P, h, w)``."""
    pairs = data.pairs()
    maps = []
    with EXPLAINERS["bcos"](model, layer=layer) as explainer:
        for start in range(0, pairs.shape[0], chunk):
            part = pairs[start:start + chunk]
            maps.append(explainer.attribute_detached(data.images[part[:, 0]], part[:, 1]).maps)
    return torch.cat(maps)


def per_image_means(values: Tensor, pairs: Tensor, n: int) -> Tensor:
    """Per-pair ``values (P,)`` averaged per image over its pairs: ``(n,)`` (every image has ≥ 1 pair here)."""
    sums = torch.zeros(n, dtype=torch.float64).index_add_(0, pairs[:, 0], values.double())
    return sums / torch.zeros(n, dtype=torch.float64).index_add_(0, pairs[:, 0], torch.ones_like(values).double())


def evaluate_reference(model: nn.Module, data: EvalData, layer: str, batch: int = 4) -> tuple[Tensor, Tensor]:
    """The reference's procedure: batch of 4, per pair one ``autograd.grad(create_graph=True)``, per-pair syncs."""
    module = model.get_submodule(model.explain_layers[layer])
    captured: list[Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
    epgs, ious = [], []
    try:
        for start in range(0, len(data.images), batch):
            captured.clear()
            images = data.images[start : start + batch].clone().requires_grad_()
            logits = model(images)
            for img, cls in data.labels[start : start + batch].nonzero().tolist():
                with explanation_mode(model):
                    (grad,) = torch.autograd.grad(logits[img, cls], captured[0], create_graph=True, retain_graph=True)
                attribution = (grad[img] * captured[0][img]).sum(0)[None]  # (1, h, w)
                mask = data.masks(torch.tensor([[start + img, cls]]))
                epgs.append(energy_pointing_game(attribution, mask).item())
                ious.append(box_iou(attribution, mask).item())
    finally:
        handle.remove()
    return torch.tensor(epgs), torch.tensor(ious)


def timed(fn: Callable[..., T], *args: object) -> tuple[T, float]:
    """``(fn(*args), seconds)``; seconds of process CPU time when ``CLOCK`` says so (steadier on a shared
    machine, where other processes' load distorts wall time)."""
    clock = time.process_time if CLOCK == "cpu" else time.perf_counter
    start = clock()
    result = fn(*args)
    return result, clock() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shrinks everything for a smoke run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="images evaluated by our batched procedure")
    parser.add_argument("--reference-images", type=int, default=32, help="images timed with the reference procedure")
    parser.add_argument("--rounds", type=int, default=4, help="alternating parts in which ours and the reference are "
                                                              "timed (drift on a shared machine reaches both)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--max-classes", type=int, default=2, help="ground-truth classes per image: 1..this")
    parser.add_argument("--chunk", type=int, default=32, help="images per multi-target pass (per-pair: pairs)")
    parser.add_argument("--per-pair-images", type=int, default=64, help="images timed with the per-pair baseline")
    parser.add_argument("--batch", type=int, default=32, help="images per evaluation batch (ours)")
    parser.add_argument("--layer", default="input")
    parser.add_argument(
        "--channels-last", action=argparse.BooleanOptionalAction, default=True, help="our model in channels-last"
    )
    parser.add_argument("--threads", type=int, default=1, help="1: see bench/RESULTS.md (OpenMP on shared cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu", help="cpu: process CPU seconds")
    parser.add_argument("--quick", action="store_true", help="64², 64 images, 16 for the reference")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.images, args.reference_images, args.per_pair_images = 64, 64, 16, 32
    return args


def machine(device: torch.device, threads: int) -> dict:
    """What the numbers were measured on."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{cpu_name()}, {os.cpu_count()} logical CPUs"
    return {"device": str(device), "name": name, "threads": threads, "torch": torch.__version__}


def slice_data(data: EvalData, start: int, stop: int) -> EvalData:
    """Images ``start:stop`` of ``data``."""
    return EvalData(*(t[start:stop] for t in (data.images, data.labels, data.boxes, data.valid)))


def interleaved(args: argparse.Namespace, model: nn.Module, reference_model: nn.Module, data: EvalData,
                subset: EvalData) -> tuple[EvalResult, float, tuple[Tensor, Tensor], float]:
    """Ours on all images and the reference on ``subset``, in ``args.rounds`` alternating parts, so a change
    in the machine's speed during the run (other users) reaches both sides alike. Returns ours (merged
    over the parts), its seconds, the reference's per-pair EPG/IoU and its seconds."""
    rounds = max(1, min(args.rounds, len(subset.images) // 4))
    ours_cuts = [round(len(data.images) * r / rounds) for r in range(rounds + 1)]
    ref_cuts = [4 * round(len(subset.images) / 4 * r / rounds) for r in range(rounds + 1)]  # whole batches of 4
    ours_s = ref_s = 0.0
    parts, epgs, ious = [], [], []
    for r in range(rounds):
        part = slice_data(data, ours_cuts[r], ours_cuts[r + 1])
        batches = eval_batches(part, args.batch)
        for batch in batches:
            batch["key"] = batch["key"] + ours_cuts[r]
        result, seconds = timed(evaluate_batched, model, batches, args.layer, args.chunk)
        parts.append(result)
        ours_s += seconds
        (epg, iou), seconds = timed(evaluate_reference, reference_model,
                                    slice_data(subset, ref_cuts[r], ref_cuts[r + 1]), args.layer)
        epgs.append(epg)
        ious.append(iou)
        ref_s += seconds
    return merge_results(parts), ours_s, (torch.cat(epgs), torch.cat(ious)), ref_s


def merge_results(parts: list[EvalResult]) -> EvalResult:
    """One result from results on consecutive parts: per-image rows concatenated; EPG/IoU as the mean of the
    per-image values (what this bench reports; the parts' own aggregates are not reused)."""
    rows = [row for part in parts for row in part.per_image]
    metrics = {key: sum(float(row[key]) for row in rows) / len(rows) for key in ("epg", "iou")}
    return EvalResult(metrics=metrics, per_image=rows)


def run(args: argparse.Namespace) -> dict:
    """Time our batched procedure on all images and the reference's on a subset, in one run."""
    device = torch.device(args.device)
    reference_model = resnet18(num_classes=args.classes).to(device).eval()  # the reference's layout
    model = copy.deepcopy(reference_model)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)  # the explainer follows the weights' layout
    data = build_data(args.images, args.classes, args.size, args.max_classes, args.seed)
    data = EvalData(*(t.to(device) for t in (data.images, data.labels, data.boxes, data.valid)))
    subset = slice_data(data, 0, args.reference_images)
    subset_batches = eval_batches(subset, args.batch)
    pairs = int(data.labels.sum())
    log.info("warm-up")
    evaluate_batched(model, subset_batches, args.layer, args.chunk)
    evaluate_reference(reference_model, slice_data(subset, 0, 4), args.layer)
    ours, ours_s, (ref_epg, ref_iou), ref_s = interleaved(args, model, reference_model, data, subset)
    log.info("ours: %d pairs in %.1f s; reference: %d pairs in %.1f s", pairs, ours_s, len(ref_epg), ref_s)
    contiguous, contiguous_s = timed(evaluate_batched, reference_model, subset_batches, args.layer, args.chunk)
    per_pair_data = EvalData(*(t[: args.per_pair_images] for t in (data.images, data.labels, data.boxes, data.valid)))
    per_pair_batches = eval_batches(per_pair_data, args.batch)
    _, per_pair_s = timed(evaluate_per_pair, model, per_pair_data, args.layer, args.chunk)
    _, multi_s = timed(evaluate_batched, model, per_pair_batches, args.layer, args.chunk)
    per_pair_pairs = int(per_pair_data.labels.sum())
    shared, n_ref = len(ref_epg), args.reference_images
    ours_rate, ref_rate = pairs / ours_s, shared / ref_s
    subset_pairs = subset.pairs()
    ref_epg_img = per_image_means(ref_epg, subset_pairs, n_ref)
    ref_iou_img = per_image_means(ref_iou, subset_pairs, n_ref)
    epg = torch.tensor([row["epg"] for row in ours.per_image[:n_ref]], dtype=torch.float64)
    iou = torch.tensor([row["iou"] for row in ours.per_image[:n_ref]], dtype=torch.float64)
    return {
        "ours": {"seconds": ours_s, "pairs_per_s": ours_rate, "epg": ours.metrics["epg"], "iou": ours.metrics["iou"]},
        "reference": {"images": n_ref, "pairs": shared, "seconds": ref_s, "pairs_per_s": ref_rate},
        "speedup": ours_rate / ref_rate,
        "per_pair_baseline": {  # ours before multi-target, and ours now, on the same first images
            "images": args.per_pair_images, "pairs": per_pair_pairs,
            "per_pair_pairs_per_s": per_pair_pairs / per_pair_s, "multi_target_pairs_per_s": per_pair_pairs / multi_s,
            "multi_target_over_per_pair": per_pair_s / multi_s,
        },
        "ours_contiguous_on_reference_subset": {
            "pairs_per_s": shared / contiguous_s,
            "speedup": shared / contiguous_s / ref_rate,
        },
        "max_abs_diff_vs_reference": {  # per-image means over the image's classes
            "epg": float((epg - ref_epg_img).abs().max()),
            "iou": float((iou - ref_iou_img).abs().max()),
            "contiguous_mean_epg": abs(contiguous.metrics["epg"] - float(ref_epg_img.mean())),
        },
        "pairs": pairs,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print one JSON object."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    global CLOCK
    CLOCK = args.clock
    setup = {key: getattr(args, key) for key in ("size", "layer", "images", "batch", "chunk", "channels_last", "clock")}
    result = {
        "bench": "evaluate",
        "machine": machine(torch.device(args.device), args.threads),
        "model": "bcos_resnet18 (random weights, eval mode)",
        **setup,
        **run(args),
        "goal_speedup": 4.0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
