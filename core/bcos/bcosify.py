"""B-cosification of pretrained torchvision CNNs (Arya et al., NeurIPS 2024; docs/science.md §2).

Steps 1–2 (:func:`bcosify_input`) are exact: the model takes ``[x, 1-x]``, normalises it to
``[z, -z]`` and its first conv gets ``cat([W, -W], 1) / 2``. Steps 3–4 (:func:`bcosify`) turn every
conv into a B-cos conv with the pretrained (unnormalised) weights, the final linear layer into a
1×1 B-cos conv before global pooling, BN into uncentred BN, max-pool into AvgPool2d(3, 2, 1), and
drop every bias; ReLU stays. Those steps change the outputs, so the result needs fine-tuning.

Contributions of a B-cosified net are taken after its internal normalisation (``explain_layers
["input"] == "normalize"``): on the raw ``[x, 1-x]`` they would miss the affine shift.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import cast

import torch
from torch import Tensor, nn

from core.bcos.conv import BcosConv2d
from core.bcos.encoding import DEFAULT_LOGIT_BIAS, ChannelNormalization, InverseEncoding
from core.bcos.norm import UncentredBatchNorm2d

__all__ = ["BcosifiedNet", "bcosify", "bcosify_input"]

logger = logging.getLogger(__name__)


class BcosifiedNet(nn.Module):
    """A torchvision CNN taking images in [0, 1]: encode, normalise, features, head, pool, bias.

    Args:
        features: (B, 6, H, W) normalised input → (B, F, h, w) feature map.
        head: (B, F, h, w) → (B, C, h, w), applied *before* global average pooling.
        logit_bias: fixed float added to the logits (0.0 for the exact steps-1–2 model).
        arch: the name in ``core.bcos.ARCHITECTURES``.
        explain_layers: layer name → dotted module name (docs/ARCHITECTURE.md).
        is_bcos: True once steps 3–4 have been applied.

    Shapes:
        images (B, 3, H, W) in [0, 1] → logits (B, C).
    """

    def __init__(
        self,
        features: nn.Module,
        head: nn.Module,
        *,
        logit_bias: float,
        arch: str,
        explain_layers: dict[str, str],
        is_bcos: bool,
    ) -> None:
        super().__init__()
        self.encoder = InverseEncoding()
        self.normalize = ChannelNormalization.inverse_imagenet()
        self.features = features
        self.head = head
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.logit_bias = float(logit_bias)
        self.arch = arch
        self.explain_layers = explain_layers
        self.is_bcos = is_bcos

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] → logits (B, C)."""
        x = self.features(self.normalize(self.encoder(images)))
        return self.avgpool(self.head(x)).flatten(1) + self.logit_bias


def _split_torchvision(model: nn.Module) -> tuple[nn.Sequential, nn.Linear, str]:
    """Cut a torchvision ResNet/DenseNet into (features before pooling, final linear, family)."""
    from torchvision.models import DenseNet, ResNet  # on first use: see core.bcos.torchvision_weights

    if isinstance(model, ResNet):
        names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        features = nn.Sequential(OrderedDict((n, getattr(model, n)) for n in names))
        return features, model.fc, "resnet"
    if isinstance(model, DenseNet):
        # torchvision applies a functional ReLU after `features`; make it a module so it stays in order.
        features = nn.Sequential(OrderedDict([*model.features.named_children(), ("relu5", nn.ReLU())]))
        return features, model.classifier, "densenet"
    raise ValueError(f"bcosify supports torchvision ResNet and DenseNet models, got {type(model).__name__}")


def _explain_layers(family: str) -> dict[str, str]:
    if family == "resnet":
        mids = {f"mid{i}": f"features.layer{i}" for i in (1, 2, 3)}
        return {"input": "normalize", **mids, "final": "features.layer4"}
    mids = {f"mid{i}": f"features.denseblock{i}" for i in (1, 2, 3)}
    return {"input": "normalize", **mids, "final": "features.relu5"}


def _first_conv_name(features: nn.Sequential) -> str:
    return "conv1" if hasattr(features, "conv1") else "conv0"


def bcosify_input(model: nn.Module, *, arch: str | None = None) -> BcosifiedNet:
    """Steps 1–2 of B-cosification only: exact, output-preserving.

    The returned model takes images in [0, 1], encodes ``[x, 1-x]``, normalises with the 6-channel
    ImageNet statistics to ``[z, -z]`` and uses first-conv weights ``cat([W, -W], 1) / 2``, so
    ``bcosify_input(m)(x) == m(imagenet_normalise(x))`` up to rounding (eval mode).

    Args:
        model: a torchvision ResNet or DenseNet (it is modified in place and reused).
        arch: name stored in ``model.arch``; defaults to ``"<family>_input"``.

    Returns:
        A :class:`BcosifiedNet` with ``logit_bias == 0`` and ``is_bcos == False``.
    """
    features, fc, family = _split_torchvision(model)
    first = getattr(features, _first_conv_name(features))
    if first.in_channels != 3:
        raise ValueError(f"first conv has {first.in_channels} input channels; bcosify expects an RGB model (3)")
    six = nn.Conv2d(6, first.out_channels, first.kernel_size, first.stride, first.padding, first.dilation,
                    first.groups, bias=first.bias is not None).to(first.weight)  # fmt: skip
    with torch.no_grad():
        six.weight.copy_(torch.cat([first.weight, -first.weight], dim=1) / 2)
        if first.bias is not None:
            six.bias.copy_(first.bias)
    setattr(features, _first_conv_name(features), six)
    head = nn.Conv2d(fc.in_features, fc.out_features, 1, bias=fc.bias is not None).to(fc.weight)
    with torch.no_grad():
        # A linear head commutes with average pooling, so applying it as a 1×1 conv first is exact.
        head.weight.copy_(fc.weight[:, :, None, None])
        if fc.bias is not None:
            head.bias.copy_(fc.bias)
    return BcosifiedNet(
        features, head, logit_bias=0.0, arch=arch or f"{family}_input",
        explain_layers=_explain_layers(family), is_bcos=False,
    )  # fmt: skip


def _to_bcos_conv(conv: nn.Conv2d, b: float) -> BcosConv2d:
    if conv.padding_mode != "zeros":
        raise ValueError(f"B-cos convs support zero padding only, got {conv.padding_mode!r}")
    new = BcosConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, b=b, normalize_weights=False).to(conv.weight)  # fmt: skip
    with torch.no_grad():
        new.linear.weight.copy_(conv.weight)  # bias dropped (step 4)
    return new


def _to_uncentred_bn(bn: nn.BatchNorm2d) -> UncentredBatchNorm2d:
    new = UncentredBatchNorm2d(bn.num_features, bn.eps, bn.momentum).to(bn.running_var)
    with torch.no_grad():
        if bn.weight is not None:
            new.weight.copy_(bn.weight)
        new.running_var.copy_(bn.running_var)
        new.running_mean.copy_(bn.running_mean)  # kept for reference only; uncentred BN ignores it
    return new


def _convert_modules(module: nn.Module, b: float) -> None:
    """Replace convs, BNs and max-pools below ``module`` in place (docs/science.md §2 step 3)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            setattr(module, name, _to_bcos_conv(child, b))
        elif isinstance(child, nn.BatchNorm2d):
            setattr(module, name, _to_uncentred_bn(child))
        elif isinstance(child, nn.MaxPool2d):
            setattr(module, name, nn.AvgPool2d(3, 2, 1))
        else:
            _convert_modules(child, b)


def bcosify(
    model: nn.Module, *, b: float = 2.0, logit_bias: float = DEFAULT_LOGIT_BIAS, arch: str | None = None
) -> BcosifiedNet:
    """B-cosify a torchvision ResNet-18/50 or DenseNet-121 (docs/science.md §2 steps 1–4).

    Args:
        model: a torchvision ``ResNet`` or ``DenseNet``, typically with pretrained weights
            (see :func:`core.bcos.load_torchvision_weights`). It is converted in place and reused.
        b: the B-cos exponent of every conv (2 in the paper's final configs).
        logit_bias: fixed float added to the logits (default ``-log(999)``).
        arch: name stored in ``model.arch``; defaults to ``"bcosified_<family>"``.

    Returns:
        A :class:`BcosifiedNet` (images (B, 3, H, W) in [0, 1] → logits (B, C)) with no biases,
        ``is_bcos == True`` and ``explain_layers["input"] == "normalize"``. It needs fine-tuning.
    """
    family = _split_torchvision(model)[2]
    net = bcosify_input(model, arch=arch or f"bcosified_{family}")
    _convert_modules(net.features, b)
    net.head = _to_bcos_conv(cast(nn.Conv2d, net.head), b)
    net.logit_bias = float(logit_bias)
    net.is_bcos = True
    logger.info("B-cosified a torchvision %s (B=%g, logit bias %.4f)", family, b, logit_bias)
    return net
