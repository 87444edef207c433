"""Equality with the reference libraries: captum InputXGradient, pytorch-grad-cam GradCAM."""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import InputXGradient as CaptumInputXGradient
from pytorch_grad_cam import GradCAM as ReferenceGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from core.explain import GradCAM, InputXGradient, upsample


def test_ixg_matches_captum(resnet18: nn.Module, images: torch.Tensor) -> None:
    targets = torch.tensor([1, 5, 7])
    expected = CaptumInputXGradient(resnet18).attribute(images.clone().requires_grad_(), target=targets).sum(1)
    with InputXGradient(resnet18, layer="input") as explainer:
        torch.testing.assert_close(explainer(images, targets), expected.detach(), rtol=1e-4, atol=1e-6)


def test_gradcam_matches_pytorch_grad_cam(resnet18: nn.Module, images: torch.Tensor) -> None:
    x = torch.nn.functional.interpolate(images, size=64)  # a 2×2 final layer, so the maps are not trivial
    targets = torch.tensor([1, 5, 7])
    with ReferenceGradCAM(resnet18, target_layers=[resnet18.layer4[-1]]) as cam:
        expected = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    with GradCAM(resnet18, layer="final") as explainer:
        raw = explainer.attribute(x, targets).maps
    # The reference min-max normalises each map at layer resolution, then resizes (cv2, bilinear).
    low = raw - raw.amin((1, 2), keepdim=True)
    low = low / (1e-7 + low.amax((1, 2), keepdim=True))
    np.testing.assert_allclose(upsample(low, (64, 64)).numpy(), expected, rtol=1e-4, atol=1e-5)
