"""B-cos layers, native B-cos ResNets, B-cosification of torchvision models (docs/science.md §1–2)."""

from core.bcos.bcosify import BcosifiedNet, bcosify, bcosify_input
from core.bcos.conv import BcosConv2d
from core.bcos.encoding import (
    DEFAULT_LOGIT_BIAS,
    ChannelNormalization,
    InverseEncoding,
    prior_logit_bias,
)
from core.bcos.explanation import ExplainableModule, constant_factors, explanation_mode, is_explaining
from core.bcos.linear import BcosLinear
from core.bcos.norm import UncentredBatchNorm2d
from core.bcos.registry import ARCHITECTURES, build_model
from core.bcos.resnet import BcosResNet, resnet18, resnet34, resnet50, small_resnet
from core.bcos.torchvision_weights import load_torchvision_weights
from core.bcos.transfer import Transfer, model_from_weights

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_LOGIT_BIAS",
    "BcosConv2d",
    "BcosLinear",
    "BcosResNet",
    "BcosifiedNet",
    "ChannelNormalization",
    "ExplainableModule",
    "InverseEncoding",
    "Transfer",
    "UncentredBatchNorm2d",
    "bcosify",
    "bcosify_input",
    "build_model",
    "constant_factors",
    "explanation_mode",
    "is_explaining",
    "load_torchvision_weights",
    "model_from_weights",
    "prior_logit_bias",
    "resnet18",
    "resnet34",
    "resnet50",
    "small_resnet",
]
