"""Checkpoint files: self-describing, atomic, loadable only through `load_checkpoint`, clear mismatches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from core.bcos import build_model
from core.train import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint


def _small(classes: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("bcos_small", classes)


def test_round_trip_keeps_weights_and_metadata(tmp_path: Path) -> None:
    model = _small()
    path = save_checkpoint(tmp_path, model, classes=["warm", "cool"], config={"lam": 0.5}, metrics={"epg": 0.7},
                           parent="ab" * 32)
    assert path.name.startswith("bcos_small-") and len(path.stem.split("-")[1]) == 10
    payload = read_checkpoint(path)
    assert set(payload) == {"format", "arch", "config", "classes", "metrics", "parent", "model"}
    loaded = load_checkpoint(path, expected_classes=["warm", "cool"], expected_arch="bcos_small")
    assert loaded.parent == "ab" * 32 and loaded.metrics == {"epg": 0.7} and loaded.config == {"lam": 0.5}
    images = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(loaded.model.eval()(images), model.eval()(images))


def test_same_weights_same_file(tmp_path: Path) -> None:
    model = _small()
    assert save_checkpoint(tmp_path, model, classes=["a", "b"]) == save_checkpoint(tmp_path, model, classes=["a", "b"])
    assert len(list(tmp_path.iterdir())) == 1


def test_a_model_trained_channels_last_is_written_as_the_same_nchw_file(tmp_path: Path) -> None:
    from core.train.loop import channels_last

    nchw = save_checkpoint(tmp_path / "a", _small(), classes=["a", "b"])
    converted = channels_last(_small())  # the trainer's layout (core.train.fine_tune)
    assert not converted.conv1.linear.weight.is_contiguous()
    written = save_checkpoint(tmp_path / "b", converted, classes=["a", "b"])
    assert written.name == nchw.name and written.read_bytes() == nchw.read_bytes()
    assert all(v.is_contiguous() for v in read_checkpoint(written)["model"].values())


def test_crash_while_writing_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def power_loss(*_: object) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "replace", power_loss)
    with pytest.raises(OSError, match="disk vanished"):
        save_checkpoint(tmp_path, _small(), classes=["a", "b"])
    assert list(tmp_path.iterdir()) == []  # neither a half-written checkpoint nor a temp file


def test_wrong_architecture_is_named(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, _small(), classes=["a", "b"])
    with pytest.raises(CheckpointError, match="holds architecture 'bcos_small', but 'bcos_resnet18' was expected"):
        load_checkpoint(path, expected_arch="bcos_resnet18")


def test_wrong_class_count_is_named(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, _small(3), classes=["a", "b", "c"])
    with pytest.raises(CheckpointError, match=r"trained for 3 classes .* but the project has 2"):
        load_checkpoint(path, expected_classes=["a", "b"])


def test_weights_that_do_not_fit_the_architecture(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, _small(), classes=["a", "b"])
    payload = read_checkpoint(path)
    payload["arch"] = "bcos_resnet18"
    forged = tmp_path / "forged.pt"
    torch.save(payload, forged)
    with pytest.raises(CheckpointError, match="do not fit architecture 'bcos_resnet18'"):
        load_checkpoint(forged)


def test_bare_weights_and_garbage_files_are_refused(tmp_path: Path) -> None:
    bare = tmp_path / "bare.pt"
    torch.save(_small().state_dict(), bare)
    with pytest.raises(CheckpointError, match="bare weights file"):
        load_checkpoint(bare)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
