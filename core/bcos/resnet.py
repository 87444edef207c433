"""Native B-cos ResNets, key-compatible with the B-cos v2 release (``bcos.models.resnet``).

Architecture as B-cos v2 ``bcos_final``: B-cos convs (B = 2) with unit-norm weights, uncentred
bias-free batch norm, no ReLU, average-pool stem, a 1×1 B-cos conv head before global average
pooling and a fixed logit bias. Unlike the ``bcos`` package, the model takes ``(B, 3, H, W)``
images in [0, 1] and applies the ``[x, 1-x]`` encoding itself (module ``encoder``, which has no
state, so the state dict keys are exactly B-cos v2's).
"""

from __future__ import annotations

from torch import Tensor, nn

from core.bcos.conv import BcosConv2d
from core.bcos.encoding import DEFAULT_LOGIT_BIAS, InverseEncoding
from core.bcos.norm import UncentredBatchNorm2d

__all__ = ["BasicBlock", "BcosResNet", "Bottleneck", "resnet18", "resnet34", "resnet50", "small_resnet"]

NATIVE_EXPLAIN_LAYERS = {"input": "encoder", "mid1": "layer1", "mid2": "layer2", "mid3": "layer3", "final": "layer4"}


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, b: float = 2.0) -> BcosConv2d:
    return BcosConv2d(cin, cout, kernel, stride, padding=kernel // 2, b=b)


class BasicBlock(nn.Module):
    """Two 3×3 B-cos convs with uncentred BN and an identity/projection shortcut; no ReLU.

    Shapes: (B, inplanes, H, W) → (B, planes, H/stride, W/stride).
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 3, stride)
        self.bn1 = UncentredBatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = UncentredBatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """(B, Cin, H, W) → (B, planes, H', W')."""
        out = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class Bottleneck(nn.Module):
    """1×1 → 3×3 (strided, torchvision v1.5 style) → 1×1 B-cos convs; expansion 4; no ReLU.

    Shapes: (B, inplanes, H, W) → (B, 4·planes, H/stride, W/stride).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 1)
        self.bn1 = UncentredBatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = UncentredBatchNorm2d(planes)
        self.conv3 = _conv(planes, planes * self.expansion, 1)
        self.bn3 = UncentredBatchNorm2d(planes * self.expansion)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """(B, Cin, H, W) → (B, 4·planes, H', W')."""
        out = self.bn1(self.conv1(x))
        out = self.bn2(self.conv2(out))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class BcosResNet(nn.Module):
    """A native B-cos ResNet following docs/ARCHITECTURE.md.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage (four stages).
        num_classes: C.
        width: channels of the stem and of stage 1 (stages double it).
        small_inputs: CIFAR-style stem (3×3 stride-1 conv, no pooling) instead of 7×7/2 + AvgPool(3,2,1).
        logit_bias: fixed float added to the logits (default ``-log(999)``, sigmoid prior 0.001).
        arch: the name of this architecture in ``core.bcos.ARCHITECTURES``.

    Shapes:
        images (B, 3, H, W) in [0, 1] → logits (B, C).
    """

    is_bcos = True

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, int, int, int],
        num_classes: int = 1000,
        *,
        width: int = 64,
        small_inputs: bool = False,
        logit_bias: float = DEFAULT_LOGIT_BIAS,
        arch: str = "bcos_resnet",
    ) -> None:
        super().__init__()
        self.arch = arch
        self.logit_bias = float(logit_bias)
        self.explain_layers = dict(NATIVE_EXPLAIN_LAYERS)
        self.num_classes = num_classes
        self.encoder = InverseEncoding()
        if small_inputs:
            self.conv1 = _conv(6, width, 3)
            self.pool: nn.Module | None = None
        else:
            self.conv1 = BcosConv2d(6, width, 7, 2, padding=3)
            self.pool = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = UncentredBatchNorm2d(width)
        self._inplanes = width
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        self.num_features = width * 8 * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = BcosConv2d(self.num_features, num_classes, 1)
        self._init_weights()

    def _make_layer(self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int) -> nn.Sequential:
        out_planes = planes * block.expansion
        downsample = None
        if stride != 1 or self._inplanes != out_planes:
            downsample = nn.Sequential(_conv(self._inplanes, out_planes, 1, stride), UncentredBatchNorm2d(out_planes))
        stage = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = out_planes
        stage += [block(out_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] → layer4 features (B, num_features, h, w)."""
        x = self.bn1(self.conv1(self.encoder(images)))
        if self.pool is not None:
            x = self.pool(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] → logits (B, C)."""
        # The head is applied before pooling: it is a B-cos (non-linear) map, so order matters.
        x = self.avgpool(self.fc(self.forward_features(images))).flatten(1)
        return x + self.logit_bias


def resnet18(num_classes: int = 1000, *, logit_bias: float = DEFAULT_LOGIT_BIAS) -> BcosResNet:
    """B-cos ResNet-18 (B-cos v2 ``resnet_18`` keys). images (B, 3, H, W) → logits (B, C)."""
    return BcosResNet(BasicBlock, (2, 2, 2, 2), num_classes, logit_bias=logit_bias, arch="bcos_resnet18")


def resnet34(num_classes: int = 1000, *, logit_bias: float = DEFAULT_LOGIT_BIAS) -> BcosResNet:
    """B-cos ResNet-34 (B-cos v2 ``resnet_34`` keys). images (B, 3, H, W) → logits (B, C)."""
    return BcosResNet(BasicBlock, (3, 4, 6, 3), num_classes, logit_bias=logit_bias, arch="bcos_resnet34")


def resnet50(num_classes: int = 1000, *, logit_bias: float = DEFAULT_LOGIT_BIAS) -> BcosResNet:
    """B-cos ResNet-50 (B-cos v2 ``resnet_50`` keys). images (B, 3, H, W) → logits (B, C)."""
    return BcosResNet(Bottleneck, (3, 4, 6, 3), num_classes, logit_bias=logit_bias, arch="bcos_resnet50")


def small_resnet(num_classes: int = 2, *, logit_bias: float = DEFAULT_LOGIT_BIAS) -> BcosResNet:
    """Small B-cos ResNet for 64×64 demo images that trains quickly on a CPU (~0.3M parameters).

    CIFAR-style stem (3×3 stride 1, no pooling), one BasicBlock per stage, widths 16/32/64/128;
    feature maps 64² (layer1) … 8² (layer4) for a 64² input. images (B, 3, H, W) → logits (B, C).
    """
    return BcosResNet(
        BasicBlock, (1, 1, 1, 1), num_classes, width=16, small_inputs=True, logit_bias=logit_bias, arch="bcos_small"
    )
