"""B-cos layers against the formulas of docs/science.md §1 and against the `bcos` package."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from bcos.modules import BcosConv2d as RefBcosConv2d
from bcos.modules import norms as ref_norms

from core.bcos import (
    DEFAULT_LOGIT_BIAS,
    BcosConv2d,
    BcosLinear,
    ChannelNormalization,
    InverseEncoding,
    UncentredBatchNorm2d,
    prior_logit_bias,
)

CONV_CASES = [
    # kernel, stride, padding, dilation, groups, b
    (3, 1, 1, 1, 1, 2.0),
    (3, 2, 1, 1, 2, 2.0),
    (3, 1, 2, 2, 1, 2.0),
    (7, 2, 3, 1, 1, 2.0),
    (1, 1, 0, 1, 1, 2.5),
    (3, 1, 3, 1, 1, 2.0),  # padding beyond k // 2: the conv fallback of the patch norm
]


def unfold_bcos_conv(x, weight, kernel, stride, padding, dilation, b):
    """Direct formula on explicit patches (groups = 1): out = |cos|^(B-1) · ŵ·x."""
    patches = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)  # (B, C·k², L)
    w_hat = weight.flatten(1) / weight.flatten(1).norm(dim=1, keepdim=True)  # (O, C·k²)
    lin = torch.einsum("ok,bkl->bol", w_hat, patches)
    norms = (patches.pow(2).sum(1, keepdim=True) + 1e-6).sqrt()
    out = ((lin / norms).abs() + 1e-6).pow(b - 1) * lin if b != 2 else lin.abs() / norms * lin
    side = math.isqrt(out.shape[-1])
    return out.unflatten(-1, (side, side))


@pytest.mark.filterwarnings("ignore:dilation > 1 is much slower")
@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "groups", "b"), CONV_CASES)
def test_bcos_conv_matches_bcos_package(kernel, stride, padding, dilation, groups, b):
    torch.manual_seed(0)
    ours = BcosConv2d(4, 6, kernel, stride, padding, dilation, groups, b=b).double()
    ref = RefBcosConv2d(4, 6, kernel, stride, padding, dilation, groups, b=b).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64)
    if dilation > 1 or padding > kernel // 2:  # cases the package's fast (avg_pool2d) path cannot do
        ref.calc_patch_norms = ref._calc_patch_norms_slow
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "groups", "b"), [c for c in CONV_CASES if c[4] == 1]
)
def test_bcos_conv_matches_patch_formula(kernel, stride, padding, dilation, groups, b):
    torch.manual_seed(1)
    conv = BcosConv2d(3, 5, kernel, stride, padding, dilation, b=b).double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    expected = unfold_bcos_conv(x, conv.linear.weight, kernel, stride, padding, dilation, b)
    torch.testing.assert_close(conv(x), expected, rtol=1e-10, atol=1e-12)


def test_unnormalised_b1_conv_is_plain_conv():
    torch.manual_seed(2)
    conv = BcosConv2d(3, 4, 3, padding=1, b=1, normalize_weights=False)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.linear.weight, padding=1))


def test_unnormalised_weights_scale_the_output():
    torch.manual_seed(3)
    conv = BcosConv2d(3, 4, 3, padding=1, normalize_weights=False)
    normed = BcosConv2d(3, 4, 3, padding=1)
    normed.load_state_dict(conv.state_dict())
    x = torch.randn(2, 3, 8, 8)
    norms = conv.linear.weight.flatten(1).norm(dim=1)[None, :, None, None]
    # B = 2: out is quadratic in w, so raw weights scale the output by ||w||².
    torch.testing.assert_close(conv(x), normed(x) * norms**2, rtol=1e-4, atol=1e-5)


def test_bcos_linear_matches_formula():
    torch.manual_seed(4)
    layer = BcosLinear(5, 3).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    w = layer.linear.weight / layer.linear.weight.norm(dim=1, keepdim=True)
    lin = x @ w.T
    expected = lin.abs() / (x.pow(2).sum(1, keepdim=True) + 1e-6).sqrt() * lin
    torch.testing.assert_close(layer(x), expected)


def make_ref_bn(channels: int):
    return ref_norms.NoBias(ref_norms.BatchNormUncentered2d)(channels)


def test_uncentred_bn_matches_bcos_package_in_train_and_eval():
    torch.manual_seed(5)
    ours, ref = UncentredBatchNorm2d(4), make_ref_bn(4)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2.0)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 4, 5, 5) * 3 + 1
    torch.testing.assert_close(ours.train()(x), ref.train()(x))
    torch.testing.assert_close(ours.running_var, ref.running_var)
    assert int(ours.num_batches_tracked) == 1
    torch.testing.assert_close(ours.eval()(x), ref.eval()(x))


def test_uncentred_bn_formula_in_eval():
    bn = UncentredBatchNorm2d(2).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 3.0]))
        bn.running_var.copy_(torch.tensor([4.0, 9.0]))
    x = torch.ones(1, 2, 1, 1)
    expected = torch.tensor([2 / math.sqrt(4 + 1e-5), 3 / math.sqrt(9 + 1e-5)]).view(1, 2, 1, 1)
    torch.testing.assert_close(bn(x), expected)
    assert "bias" not in bn.state_dict()


def test_inverse_encoding_and_six_channel_normalisation_give_z_minus_z():
    x = torch.rand(2, 3, 4, 4)
    encoded = InverseEncoding()(x)
    torch.testing.assert_close(encoded, torch.cat([x, 1 - x], 1))
    z6 = ChannelNormalization.inverse_imagenet()(encoded)
    z = ChannelNormalization.imagenet()(x)
    torch.testing.assert_close(z6, torch.cat([z, -z], 1), rtol=1e-5, atol=1e-5)


def test_logit_bias_is_the_sigmoid_prior():
    assert math.isclose(DEFAULT_LOGIT_BIAS, -math.log(999))
    assert math.isclose(torch.sigmoid(torch.tensor(DEFAULT_LOGIT_BIAS)).item(), 1e-3, rel_tol=1e-5)
    with pytest.raises(ValueError, match="prior"):
        prior_logit_bias(1.0)
