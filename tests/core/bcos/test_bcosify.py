"""B-cosification of torchvision ResNet/DenseNet (docs/science.md §2) and loading local weight files."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torchvision import models

import core.bcos as cb
from core.bcos.encoding import ChannelNormalization
from tests.core.bcos.helpers import bcos_contributions

TV = {"resnet18": models.resnet18, "resnet50": models.resnet50, "densenet121": models.densenet121}


def torchvision_model(name: str, num_classes: int = 7) -> nn.Module:
    """An untrained torchvision model with non-trivial BN statistics and biases (never downloads)."""
    torch.manual_seed(0)
    model = TV[name](weights=None, num_classes=num_classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_steps_one_and_two_preserve_outputs_exactly(name):
    original = torchvision_model(name).double()  # float64: exactness is the claim, not float32 rounding
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = original(ChannelNormalization.imagenet().double()(images))
        converted = cb.bcosify_input(original).double().eval()
        torch.testing.assert_close(converted(images), expected, rtol=1e-5, atol=1e-5)
    assert converted.features[0].in_channels == 6 and converted.logit_bias == 0.0


def test_bcosify_applies_every_step_to_resnet18():
    original = torchvision_model("resnet18")
    first = original.conv1.weight.detach().clone()
    block_conv = original.layer2[0].conv2.weight.detach().clone()
    fc_weight = original.fc.weight.detach().clone()
    gamma, var = original.bn1.weight.detach().clone(), original.bn1.running_var.detach().clone()
    relus = sum(isinstance(m, nn.ReLU) for m in original.modules())
    net = cb.bcosify(original)

    assert net.is_bcos and net.logit_bias == pytest.approx(cb.DEFAULT_LOGIT_BIAS)
    assert not any(name.endswith("bias") for name, _ in net.named_parameters())
    assert not any(isinstance(m, nn.BatchNorm2d | nn.MaxPool2d | nn.Linear) for m in net.modules())
    convs = [m for m in net.modules() if isinstance(m, cb.BcosConv2d)]
    assert all(c.b == 2 and not c.normalize_weights for c in convs)
    plain = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d) and not n.endswith(".linear")]
    assert plain == []
    torch.testing.assert_close(net.features.conv1.linear.weight, torch.cat([first, -first], 1) / 2)
    torch.testing.assert_close(net.features.layer2[0].conv2.linear.weight, block_conv)  # copied, not normalised
    torch.testing.assert_close(net.head.linear.weight, fc_weight[:, :, None, None])
    torch.testing.assert_close(net.features.bn1.weight, gamma)
    torch.testing.assert_close(net.features.bn1.running_var, var)
    pool = net.features.maxpool
    assert isinstance(pool, nn.AvgPool2d) and (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == relus
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        with_bias = net(images)
        net.logit_bias = 0.0
        torch.testing.assert_close(with_bias - net(images), torch.full((2, 7), cb.DEFAULT_LOGIT_BIAS))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "densenet121"])
def test_contributions_after_normalisation_sum_to_logit_minus_bias(name):
    # An untrained B-cosified net has tiny logits (~1e-12: each B = 2 layer scales by |cos|); with the
    # -6.9 bias, `logit - bias` would cancel to rounding noise, so compare without the bias.
    net = cb.bcosify(torchvision_model(name), logit_bias=0.0).double().eval()
    assert net.explain_layers["input"] == "normalize"
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    logits, contributions = bcos_contributions(net, images, "normalize", torch.tensor([0, 5]))
    torch.testing.assert_close(contributions, logits - net.logit_bias, rtol=1e-5, atol=0)


def test_contributions_on_raw_encoding_miss_part_of_the_logit():
    """Why the explanation is taken after the normalisation: the affine shift carries evidence."""
    net = cb.bcosify(torchvision_model("resnet18"), logit_bias=0.0).double().eval()
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    logits, contributions = bcos_contributions(net, images, "encoder", torch.tensor([0, 5]))
    assert not torch.allclose(contributions, logits - net.logit_bias, rtol=1e-3, atol=0)


def test_bcosify_rejects_other_models():
    with pytest.raises(ValueError, match="ResNet and DenseNet"):
        cb.bcosify(nn.Sequential(nn.Conv2d(3, 4, 3)))


def test_load_torchvision_weights_from_local_file(tmp_path):
    original = torchvision_model("resnet18", num_classes=1000)
    path = tmp_path / "resnet18.pth"
    torch.save({f"module.{k}": v for k, v in original.state_dict().items()}, path)  # DataParallel-style keys
    loaded = cb.load_torchvision_weights("resnet18", path).eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), original(images))
    replaced = cb.load_torchvision_weights("resnet18", path, num_classes=4)
    assert replaced.fc.out_features == 4
    torch.testing.assert_close(replaced.layer1[0].conv1.weight, original.layer1[0].conv1.weight)


def test_load_torchvision_weights_names_the_mismatch(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match=r"resnet50.*look like resnet18.*missing"):
        cb.load_torchvision_weights("resnet50", path)
    with pytest.raises(ValueError, match="look like resnet18"):
        cb.load_torchvision_weights("densenet121", path)
    with pytest.raises(ValueError, match="unknown torchvision architecture"):
        cb.load_torchvision_weights("vgg16", path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"^garbage\.pth is not a readable PyTorch weights file \(UnpicklingError\): "
                                         "it may be truncated"):  # one line, not torch's paragraph
        cb.load_torchvision_weights("resnet18", garbage)


def test_load_old_style_densenet_keys(tmp_path):
    original = torchvision_model("densenet121", num_classes=5)
    old_name = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.")
    # pre-0.4 files: dotted layer names and no num_batches_tracked
    old = {old_name.sub(r"\1.\2.", k): v for k, v in original.state_dict().items() if "num_batches" not in k}
    assert any(".norm.1." in k for k in old)
    path = tmp_path / "densenet121.pth"
    torch.save(old, path)
    loaded = cb.load_torchvision_weights("densenet121", path)
    for key, value in original.state_dict().items():
        if "num_batches" not in key:
            torch.testing.assert_close(loaded.state_dict()[key], value)
