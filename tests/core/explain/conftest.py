"""Small models shared by the explainer tests (inputs stay at 32–64 px so the folder runs in seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torchvision
from torch import nn


class TinyLinear(nn.Module):
    """``logits = W · flatten(x)``: Input×Gradient is exactly ``W[t] ⊙ x`` summed over channels."""

    def __init__(self, channels: int = 3, size: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(channels * size * size, classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class BiasFreeReLUNet(nn.Module):
    """A bias-free conv/ReLU net (positively homogeneous): IG with zero baseline equals IxG."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Conv2d(8, classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).mean(dim=(2, 3))


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: the CI machine has 2 shared cores and oversubscription stalls small ops."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def resnet18() -> nn.Module:
    """A randomly initialised torchvision ResNet-18 in eval mode."""
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10).eval()


@pytest.fixture
def images() -> torch.Tensor:
    """(3, 3, 32, 32) images in [0, 1]."""
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
