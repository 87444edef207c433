"""Native B-cos ResNets: B-cos v2 key compatibility, equal logits and explanations, the model contract."""

from __future__ import annotations

import math

import bcos
import pytest
import torch
from bcos.models.resnet import BcosResNet as RefBcosResNet

import core.bcos as cb
from tests.core.bcos.helpers import bcos_contributions, logits_and_features


def reference_model(name: str, num_classes: int) -> RefBcosResNet:
    """The `bcos` package's B-cos v2 model (6-channel input), with non-trivial norm statistics."""
    torch.manual_seed(0)
    ref = getattr(bcos.pretrained, name)(pretrained=False, num_classes=num_classes, logit_bias=-math.log(999))
    with torch.no_grad():
        for key, value in ref.state_dict().items():
            if key.endswith("running_var") or (key.endswith(".weight") and value.dim() == 1):
                value.uniform_(0.5, 2.0)
    return ref


def test_released_weight_file_loads_without_renaming_and_logits_match(tmp_path):
    ref = reference_model("resnet18", 1000).eval()
    path = tmp_path / "resnet_18.pth"
    torch.save(ref.state_dict(), path)  # the format of the B-cos v2 release files
    ours = cb.resnet18(num_classes=1000).eval()
    ours.load_state_dict(torch.load(path, weights_only=True))  # strict: no renaming needed
    # float64: two correct float32 implementations of a deep net differ by ~1e-4 between CPUs' kernels
    ours, ref = ours.double(), ref.double()
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), ref(torch.cat([images, 1 - images], 1)), rtol=1e-5, atol=1e-5)


def test_resnet50_logits_match_bcos_package():
    ref = reference_model("resnet50", 10).double().eval()
    ours = cb.resnet50(num_classes=10).double().eval()
    ours.load_state_dict(ref.state_dict())
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), ref(torch.cat([images, 1 - images], 1)), rtol=1e-5, atol=1e-5)


def test_resnet34_state_dict_matches_bcos_package_keys_and_shapes():
    ref = bcos.pretrained.resnet34(pretrained=False, num_classes=10).state_dict()
    ours = cb.resnet34(num_classes=10).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in ref.items()}


def test_train_mode_logits_match_bcos_package():
    # float64: batch statistics over 2 images at 1x1 resolution amplify float32 rounding (3e-4 seen on another CPU)
    ref = reference_model("resnet18", 5).double().train()
    ours = cb.resnet18(num_classes=5).double().train()
    ours.load_state_dict(ref.state_dict())
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(ours(images), ref(torch.cat([images, 1 - images], 1)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.layer1[0].bn1.running_var, ref.layer1[0].bn1.running_var)


def test_explanation_matches_bcos_package_dynamic_linear_weights():
    ref = reference_model("resnet18", 4).double().eval()
    ours = cb.resnet18(num_classes=4).double().eval()
    ours.load_state_dict(ref.state_dict())
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    encoded = torch.cat([images, 1 - images], 1).requires_grad_(True)
    with ref.explanation_mode():  # the package detaches in the forward pass
        (ref_weights,) = torch.autograd.grad(ref(encoded)[:, 2].sum(), encoded)
    logits, feats = logits_and_features(ours, images, "encoder")  # ours: a normal forward
    with cb.explanation_mode(ours):
        (our_weights,) = torch.autograd.grad(logits[:, 2].sum(), feats)
    torch.testing.assert_close(our_weights, ref_weights, rtol=1e-7, atol=1e-10)


def test_resnet50_contributions_sum_to_logit_minus_bias():
    model = cb.resnet50(num_classes=3).double().eval()
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    logits, contributions = bcos_contributions(model, images, "encoder", torch.tensor([1, 2]))
    torch.testing.assert_close(contributions, logits - model.logit_bias, rtol=1e-5, atol=0)


@pytest.mark.parametrize("arch", sorted(cb.ARCHITECTURES))
def test_every_architecture_follows_the_model_contract(arch):
    model = cb.build_model(arch, 3).eval()
    assert model.arch == arch
    assert isinstance(model.is_bcos, bool) and model.is_bcos
    assert isinstance(model.logit_bias, float)
    assert set(model.explain_layers) == {"input", "mid1", "mid2", "mid3", "final"}
    modules = dict(model.named_modules())
    assert all(name in modules for name in model.explain_layers.values())
    assert not any("logit_bias" in key for key in model.state_dict())
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


@pytest.mark.parametrize("arch", ["bcos_small", "bcos_resnet18", "bcosified_resnet18"])
def test_checkpoint_round_trip_by_architecture_name(arch, tmp_path):
    model = cb.build_model(arch, 3).eval()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    rebuilt = cb.build_model(arch, 3).eval()
    rebuilt.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), model(images))


def test_small_resnet_is_small_and_has_expected_feature_maps():
    model = cb.small_resnet(num_classes=2).eval()
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert model.logit_bias == pytest.approx(-math.log(999))
    sizes = {}
    modules = dict(model.named_modules())
    hooks = [
        modules[name].register_forward_hook(lambda m, i, o, key=key: sizes.__setitem__(key, o.shape))
        for key, name in model.explain_layers.items()
    ]
    with torch.no_grad():
        model(torch.rand(2, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    assert sizes["input"] == (2, 6, 64, 64)
    expected = [(16, 64, 64), (32, 32, 32), (64, 16, 16), (128, 8, 8)]
    assert [sizes[k][1:] for k in ("mid1", "mid2", "mid3", "final")] == expected


def test_logit_bias_is_a_constructor_argument():
    model = cb.small_resnet(num_classes=2, logit_bias=0.0).eval()
    assert model.logit_bias == 0.0
    assert "logit_bias" not in dict(model.named_parameters()) and "logit_bias" not in dict(model.named_buffers())


def test_build_model_rejects_unknown_architecture():
    with pytest.raises(ValueError, match="bcos_resnet18"):
        cb.build_model("resnet-18", 3)
