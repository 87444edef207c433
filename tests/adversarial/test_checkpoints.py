"""Broken and poisoned checkpoint files (issue 15, items 7 and 10): a clear `CheckpointError` naming the
file and what to do, never a raw traceback, never a registered row, never a changed file."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from core.bcos import build_model
from core.train import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from tests.adversarial.conftest import Cli, row_counts, tree_state
from tests.store.conftest import write_image


def _good(directory: Path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(directory, build_model("bcos_small", 2), classes=["cat", "dog"])


def _poisoned(directory: Path, value: float) -> Path:
    torch.manual_seed(0)
    model = build_model("bcos_small", 2)
    parameter = next(iter(model.parameters()))
    with torch.no_grad():
        parameter.view(-1)[3] = value
    return save_checkpoint(directory, model, classes=["cat", "dog"])


def _empty(directory: Path) -> Path:
    (directory / "empty.pt").write_bytes(b"")
    return directory / "empty.pt"


def _truncated(directory: Path) -> Path:
    data = _good(directory).read_bytes()
    (directory / "truncated.pt").write_bytes(data[: len(data) // 2])
    return directory / "truncated.pt"


def _one_byte(directory: Path) -> Path:
    (directory / "one.pt").write_bytes(b"\x80")
    return directory / "one.pt"


BROKEN = {
    "empty": (_empty, r"empty\.pt is empty \(0 bytes\); copy the checkpoint file again"),
    "truncated": (_truncated, r"truncated\.pt is not a readable checkpoint \(.+\); it may be truncated"),
    "one byte": (_one_byte, r"one\.pt is not a readable checkpoint \(.+\)"),
    "NaN weights": (lambda d: _poisoned(d, math.nan),
                    r"bcos_small-\w+\.pt holds non-finite weights \(NaN or infinity\) in [\w.]+ "
                    r"\(1 of \d+ values\); it cannot be used: pick an earlier checkpoint"),
    "inf weights": (lambda d: _poisoned(d, -math.inf), r"bcos_small-\w+\.pt holds non-finite weights"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_checkpoint_is_a_clear_error(tmp_path: Path, case: str) -> None:
    make, message = BROKEN[case]
    path = make(tmp_path)
    for read in (read_checkpoint, lambda p: load_checkpoint(p, expected_classes=["cat", "dog"])):
        with pytest.raises(CheckpointError, match=message):
            read(path)


def test_state_dict_that_is_not_a_dict_is_a_clear_error(tmp_path: Path) -> None:
    torch.save({"format": 1, "arch": "bcos_small", "classes": ["cat", "dog"], "model": [1, 2]}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"odd\.pt: 'model' is list, not a state dict"):
        read_checkpoint(tmp_path / "odd.pt")


@pytest.fixture
def project(cli: Cli, tmp_path: Path) -> Cli:
    """Project "p": folder import, 2 classes, train and test images (so `evaluate` has a split)."""
    for k, (split, label) in enumerate([("train", "cat"), ("train", "dog"), ("test", "cat"), ("test", "dog")]):
        write_image(tmp_path / "sets" / "f" / split / label / f"{k}.png", (32, 32), (k * 40, 10, 200 - k * 40))
    assert cli("import", "folder", str(tmp_path / "sets" / "f"), "--project", "p") == 0
    return cli


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_evaluate_refuses_a_broken_checkpoint_file(project: Cli, tmp_path: Path, case: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """`evaluate --checkpoint FILE` registers the file first: a broken one is neither registered nor run."""
    make, message = BROKEN[case]
    (tmp_path / "files").mkdir()
    path = make(tmp_path / "files")
    rows, files, data = row_counts(project.engine), tree_state(tmp_path / "files"), tree_state(project.data_dir)
    caplog.clear()
    assert project("evaluate", "--project", "p", "--checkpoint", str(path), "--split", "test") == 1
    assert row_counts(project.engine) == rows
    assert tree_state(tmp_path / "files") == files and tree_state(project.data_dir) == data
    assert any(r.levelname == "ERROR" for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert re.search(message, caplog.text), caplog.text


def test_evaluate_refuses_a_registered_checkpoint_emptied_since(project: Cli, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "files").mkdir()
    path = _good(tmp_path / "files")
    assert project("evaluate", "--project", "p", "--checkpoint", str(path), "--split", "test") == 0
    path.write_bytes(b"")
    rows = row_counts(project.engine)
    caplog.clear()
    assert project("evaluate", "--project", "p", "--checkpoint", "1", "--split", "test") == 1
    assert row_counts(project.engine) == rows
    assert f"{path.name} is empty (0 bytes)" in caplog.text
