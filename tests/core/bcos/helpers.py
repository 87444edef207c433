"""Shared helpers for the B-cos tests: capture a layer's output and take its contributions."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from core.bcos import explanation_mode


def logits_and_features(model: nn.Module, images: Tensor, layer: str) -> tuple[Tensor, Tensor]:
    """One normal forward; returns logits (B, C) and the output (B, C', h, w) of module ``layer``."""
    captured: list[Tensor] = []
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        logits = model(images.clone().requires_grad_(True))
    finally:
        handle.remove()
    return logits, captured[0]


def bcos_contributions(model: nn.Module, images: Tensor, layer: str, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Target logits (B,) and B-cos contributions (B,) summed over the map at ``layer``."""
    logits, feats = logits_and_features(model, images, layer)
    chosen = logits[torch.arange(len(targets)), targets]
    with explanation_mode(model):
        (grad,) = torch.autograd.grad(chosen.sum(), feats)
    return chosen.detach(), (grad * feats).sum(dim=(1, 2, 3)).detach()
