"""Input encodings that live inside models (docs/science.md §1 and §2 step 1), and the logit bias."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "DEFAULT_LOGIT_BIAS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ChannelNormalization",
    "InverseEncoding",
    "prior_logit_bias",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def prior_logit_bias(prior: float = 1 / 1000) -> float:
    """Logit of a sigmoid prior, ``log(p / (1 - p))``; the fixed B-cos logit bias.

    Args:
        prior: the probability every class gets from an all-zero evidence map, in (0, 1).

    Returns:
        The bias; ``prior_logit_bias(1/1000) = -log(999) ≈ -6.9068``.
    """
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must be in (0, 1), got {prior}")
    return math.log(prior / (1.0 - prior))


# Sigmoid prior 0.001 for multi-label BCE (docs/science.md §1); equals B-cos v2's -log(1000 - 1).
DEFAULT_LOGIT_BIAS = prior_logit_bias(1 / 1000)


class InverseEncoding(nn.Module):
    """The B-cos input encoding ``[r, g, b, 1-r, 1-g, 1-b]``.

    Shapes:
        images (B, C, H, W) in [0, 1] → (B, 2C, H, W).
    """

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) → (B, 2C, H, W)."""
        return torch.cat([images, 1.0 - images], dim=1)


class ChannelNormalization(nn.Module):
    """Per-channel ``(x - mean) / std`` with constant (non-state-dict) statistics.

    For a B-cosified net, ``ChannelNormalization.inverse_imagenet()`` maps ``[x, 1-x]`` to ``[z, -z]``
    with ``z`` the usual ImageNet-normalised image (docs/science.md §2 step 1).

    Args:
        mean, std: one value per channel.

    Shapes:
        (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        # Non-persistent: the statistics are part of the architecture, not of the checkpoint.
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @classmethod
    def imagenet(cls) -> ChannelNormalization:
        """The 3-channel ImageNet normalisation."""
        return cls(IMAGENET_MEAN, IMAGENET_STD)

    @classmethod
    def inverse_imagenet(cls) -> ChannelNormalization:
        """The 6-channel normalisation of ``[x, 1-x]``: mean ``(m, 1-m)``, std ``(s, s)``."""
        return cls(IMAGENET_MEAN + tuple(1.0 - m for m in IMAGENET_MEAN), IMAGENET_STD * 2)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) → (B, C, H, W)."""
        return (x - self.mean) / self.std
