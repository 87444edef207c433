"""Explainer throughput against per-image reference baselines, printed as JSON.

    python bench/explain.py            # B-cos ResNet-18/50 at 224², batch 1/8/32
    python bench/explain.py --quick    # one timed repeat, fewer images; for a small shared machine

Ours: ``core.explain`` explainers called as ``explainer(images, targets)`` (upsampled maps, no graph).
Baselines, in the same run and on the same weights: the ``bcos`` package's per-image ``model.explain()``
loop (B-cos), captum ``InputXGradient`` per image (IxG) and pytorch-grad-cam ``GradCAM`` per image (GradCAM).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bcos.models import pretrained as bcos_pretrained
from captum.attr import InputXGradient as CaptumIxG
from pytorch_grad_cam import GradCAM as GradCamReference
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from core import bcos as core_bcos
from core.explain import EXPLAINERS

Run = Callable[[Tensor, Tensor], object]
LAYERS = {"bcos": "input", "ixg": "input", "gradcam": "final"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 timed repeats, no warm-up at batch > 1")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (fastest kept)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"], choices=["resnet18", "resnet50"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="torch device string, e.g. cpu or cuda:0")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    return parser.parse_args(argv)


def seconds(run: Run, images: Tensor, targets: Tensor, repeats: int, warmup: bool) -> tuple[float, float]:
    """Fastest ``(wall, cpu)`` seconds of ``run(images, targets)`` over ``repeats`` calls."""
    return compare([run], images, targets, repeats, warmup)[0]


def compare(runs: list[Run], images: Tensor, targets: Tensor, repeats: int, warmup: bool) -> list[tuple[float, float]]:
    """Fastest ``(wall, cpu)`` seconds of each run, interleaved per repeat so that other users' load hits all alike.

    CPU time is this process's (all threads): on a small shared machine it is the fairer figure, since
    waiting for a core is not counted. Minimums are kept because interference only ever adds time.
    """
    if warmup:
        for run in runs:
            run(images, targets)
    best = [(float("inf"), float("inf"))] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            _sync(images.device)
            wall, cpu = time.perf_counter(), time.process_time()
            run(images, targets)
            _sync(images.device)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[i] = (min(best[i][0], wall), min(best[i][1], cpu))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bcos_explain_loop(reference: nn.Module) -> Run:
    """The ``bcos`` package's ``model.explain()`` called once per image, on its 6-channel input."""

    def run(images: Tensor, targets: Tensor) -> None:
        for image, target in zip(images, targets.tolist()):
            encoded = torch.cat([image, 1 - image])[None].requires_grad_()
            reference.explain(encoded, idx=target)

    return run


def captum_loop(model: nn.Module) -> Run:
    """captum ``InputXGradient`` per image."""
    ixg = CaptumIxG(model)

    def run(images: Tensor, targets: Tensor) -> None:
        for image, target in zip(images, targets.tolist()):
            ixg.attribute(image[None].clone().requires_grad_(), target=target).detach()

    return run


def gradcam_loop(model: nn.Module) -> Run:
    """pytorch-grad-cam ``GradCAM`` at ``layer4`` per image."""

    def run(images: Tensor, targets: Tensor) -> None:
        with GradCamReference(model, target_layers=[model.layer4]) as cam:
            for image, target in zip(images, targets.tolist()):
                cam(input_tensor=image[None], targets=[ClassifierOutputTarget(target)])

    return run


def ours(model: nn.Module, method: str) -> Run:
    """Our explainer, built once per measurement, called on the whole batch."""

    def run(images: Tensor, targets: Tensor) -> Tensor:
        with EXPLAINERS[method](model, layer=LAYERS[method]) as explainer:
            return explainer(images, targets)

    return run


def build_models(arch: str, device: torch.device, channels_last: bool) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(ours, same weights contiguous for captum/grad-cam, the ``bcos`` package's model) on ``device``."""
    reference = getattr(bcos_pretrained, arch)(pretrained=False).eval().to(device)
    plain = getattr(core_bcos, arch)(num_classes=1000).eval().to(device)
    plain.load_state_dict(reference.state_dict())
    mine = copy.deepcopy(plain)
    if channels_last:
        mine = mine.to(memory_format=torch.channels_last)
    return mine, plain, reference


def throughput(args: argparse.Namespace, arch: str, device: torch.device) -> list[dict[str, object]]:
    """Images/s of ours and of each baseline for every batch size."""
    mine, plain, reference = build_models(arch, device, args.channels_last)
    baselines = {
        "bcos": ("bcos explain() loop", bcos_explain_loop(reference)),
        "ixg": ("captum InputXGradient loop", captum_loop(plain)),
        "gradcam": ("pytorch-grad-cam GradCAM loop", gradcam_loop(plain)),
    }
    rows = []
    generator = torch.Generator().manual_seed(0)
    for batch in args.batches:
        images = torch.rand(batch, 3, args.size, args.size, generator=generator).to(device)
        targets = torch.randint(0, 1000, (batch,), generator=generator).to(device)
        warmup = not args.quick or batch == 1
        for method, (baseline_name, baseline) in baselines.items():
            (w_ours, c_ours), (w_base, c_base) = compare(
                [ours(mine, method), baseline], images, targets, args.repeats, warmup
            )
            rows.append({
                "model": f"bcos_{arch}", "method": method, "batch": batch, "baseline": baseline_name,
                "ours_images_per_cpu_s": round(batch / c_ours, 3),
                "baseline_images_per_cpu_s": round(batch / c_base, 3), "ratio_cpu": round(c_base / c_ours, 3),
                "ours_images_per_s": round(batch / w_ours, 3), "baseline_images_per_s": round(batch / w_base, 3),
                "ratio_wall": round(w_base / w_ours, 3),
            })  # fmt: skip
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def latency(args: argparse.Namespace, device: torch.device) -> list[dict[str, object]]:
    """Single-image latency (the UI's case) for the 64² demo model and B-cos ResNet-50 at ``args.size``."""
    demo = core_bcos.small_resnet(num_classes=2).eval().to(device)
    resnet50 = core_bcos.resnet50(num_classes=1000).eval().to(device)
    if args.channels_last:
        demo, resnet50 = (m.to(memory_format=torch.channels_last) for m in (demo, resnet50))
    rows = []
    for name, model, size in (("bcos_small", demo, 64), ("bcos_resnet50", resnet50, args.size)):
        image, target = torch.rand(1, 3, size, size, device=device), torch.zeros(1, dtype=torch.long, device=device)
        for method in LAYERS:
            wall, cpu = seconds(ours(model, method), image, target, max(args.repeats, 3), warmup=True)
            rows.append({
                "model": name, "size": size, "method": method,
                "latency_ms": round(1000 * wall, 1), "cpu_ms": round(1000 * cpu, 1),
            })  # fmt: skip
    return rows


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    return {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print one JSON document."""
    args = parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 2)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    started = time.perf_counter()
    report = {
        "benchmark": "explain",
        "config": {k: v for k, v in vars(args).items()},
        "machine": machine(),
        "throughput": [row for arch in args.models for row in throughput(args, arch, device)],
        "latency": latency(args, device),
    }
    report["machine"]["load_average_end"] = os.getloadavg()
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
