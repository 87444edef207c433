"""B-cos 2-D convolution (docs/science.md §1; Böhle et al., B-cos Networks v2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from core.bcos.explanation import BcosTransform, gate_dynamic_factor

__all__ = ["BcosConv2d", "bcos_scale", "constant_bcos_scale", "patch_norms"]

# Stabilises the patch norm of all-zero patches (zero padding, dead channels).
NORM_EPS = 1e-6


def bcos_scale(linear_out: Tensor, norms: Tensor, b: float) -> Tensor:
    """The B-cos dynamic factor ``|cos|^(B-1) · ...`` for a linear output and its patch norms.

    Args:
        linear_out: (B, O, ...) output of the unit-norm linear map ``l``.
        norms: broadcastable to ``linear_out``; the input patch norms ``n``.
        b: the B-cos exponent B (> 1).

    Returns:
        (B, O, ...) factor ``s`` with ``out = s · l``: ``|l|/n`` for B = 2,
        ``(|l/n| + 1e-6)^(B-1)`` otherwise.
    """
    if b == 2:
        return linear_out.abs() / norms
    return ((linear_out / norms).abs() + 1e-6).pow(b - 1)


def constant_bcos_scale(linear_out: Tensor, norms: Tensor, b: float) -> Tensor:
    """:func:`bcos_scale` computed without a graph and with in-place steps (one full-size allocation).

    Same values and shapes as :func:`bcos_scale`; for :func:`core.bcos.explanation.constant_factors`.
    """
    with torch.no_grad():
        if b == 2:
            return linear_out.abs().div_(norms)
        return linear_out.div(norms).abs_().add_(1e-6).pow_(b - 1)


def patch_norms(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """Norm of every input patch that ``conv`` sees, ``sqrt(Σ_patch x² + 1e-6)``.

    Args:
        x: (B, C, H, W) input of ``conv``.
        conv: the convolution whose kernel, stride, padding, dilation and groups define the patches.

    Returns:
        (B, O, H', W') patch norms, already repeated over the output channels of each group.
    """
    groups = conv.groups
    squares = (x * x).unflatten(1, (groups, -1)).sum(2)  # (B, G, H, W): channels summed per group
    kernel = _pair(conv.kernel_size)
    padding = _pair(conv.padding)
    dilation = _pair(conv.dilation)
    pool_ok = dilation == (1, 1) and all(p <= k // 2 for p, k in zip(padding, kernel))
    if kernel == (1, 1) and padding == (0, 0):
        # A 1×1 window is the pixel itself: the pooled sum is a strided view, no pooling kernel needed.
        stride = _pair(conv.stride)
        sums = squares[..., :: stride[0], :: stride[1]]
    elif pool_ok:
        # Zero padding counts as zeros in a sum, so a divisor-free average pool is the window sum.
        sums = F.avg_pool2d(squares, kernel, conv.stride, padding, divisor_override=1)
    else:
        # avg_pool2d has no dilation (and limits padding): sum with a ones kernel per group instead.
        ones = squares.new_ones(groups, 1, *kernel)
        sums = F.conv2d(squares, ones, None, conv.stride, padding, dilation, groups)
    norms = (sums + NORM_EPS).sqrt()
    return norms.repeat_interleave(conv.out_channels // groups, dim=1) if groups > 1 else norms


class BcosConv2d(BcosTransform):
    """B-cos convolution: ``out = |cos(x, ŵ)|^(B-1) · (ŵ · x)`` per output position.

    Weights live in ``self.linear`` (an ``nn.Conv2d`` without bias) so state dicts use the
    ``<name>.linear.weight`` keys of the released B-cos v2 weight files.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: as ``nn.Conv2d``
            (zero padding only).
        b: the exponent B; B = 1 is a plain (optionally normalised) linear convolution.
        normalize_weights: True (native B-cos) uses ``ŵ = w/||w||`` per output channel; False keeps
            the raw weights, as B-cosified networks do (docs/science.md §2 step 3).

    Shapes:
        input (B, in_channels, H, W) → output (B, out_channels, H', W').
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 1,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        *,
        b: float = 2.0,
        normalize_weights: bool = True,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=False,
                         device=device, dtype=dtype)
        super().__init__(conv, b=b, normalize_weights=normalize_weights)

    @property
    def in_channels(self) -> int:
        """Number of input channels."""
        return self.linear.in_channels

    @property
    def out_channels(self) -> int:
        """Number of output channels."""
        return self.linear.out_channels

    def effective_weight(self) -> Tensor:
        """(O, C/G, kh, kw) the weight actually applied: unit norm per output channel if normalised."""
        w = self.linear.weight
        if not self.normalize_weights:
            return w
        return w / torch.linalg.vector_norm(w, dim=(1, 2, 3), keepdim=True)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) → (B, O, H', W')."""
        conv = self.linear
        out = F.conv2d(x, self.effective_weight(), None, conv.stride, conv.padding, conv.dilation, conv.groups)
        if self.b == 1:
            return out
        if self.constant_factors:  # explanation-only forward: no graph for the factor (see constant_factors)
            # In place: `out` is this layer's own intermediate, and a constant factor needs only itself saved.
            return out.mul_(constant_bcos_scale(out, patch_norms(x, conv), self.b))
        scale = bcos_scale(out, patch_norms(x, conv), self.b)
        return gate_dynamic_factor(scale, self) * out
