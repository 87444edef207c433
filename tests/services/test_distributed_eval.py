"""Evaluation under torchrun covers the whole split: each rank evaluates its shard, rows are gathered, rank 0 stores.

`train --json` and `evaluate --json` under `torchrun --nproc-per-node 2` (gloo, CPU) give the figures a single
process gives on the same checkpoints, and store one evaluation with one row per image.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

import app
from core.train import distributed as dist_utils
from core.train import evaluate as evaluation
from services.settings import Settings
from store.db import open_database, session_scope
from store.models_runs import Evaluation, EvaluationImage

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ("accuracy", "epg", "iou", "worst_group_accuracy", "n_images")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(settings: Settings, *args: str) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--device", "cpu", *args]


def _torchrun(settings: Settings, *args: str) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), str(ROOT / "app.py"), *_cli(settings, *args, "--json")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, done.stdout[-2000:]  # rank 0 alone prints the result
    return json.loads(lines[0])


def _single(settings: Settings, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert app.main(_cli(settings, *args, "--json")) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _same_figures(distributed: dict, single: dict) -> None:
    for key in FIGURES:
        assert distributed[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key
    assert distributed["group_accuracy"] == pytest.approx(single["group_accuracy"], abs=1e-6)


def _evaluations(settings: Settings) -> list[tuple[int, int]]:
    """(evaluation id, number of per-image rows) for every stored evaluation."""
    engine = open_database(settings.database_url)
    with session_scope(engine) as session:
        found = [(e.id, len(session.scalars(select(EvaluationImage).where(EvaluationImage.evaluation_id == e.id))
                            .all())) for e in session.scalars(select(Evaluation).order_by(Evaluation.id))]
    engine.dispose()
    return found


@pytest.mark.slow
def test_evaluate_under_torchrun_equals_one_process(tiny_project: Settings,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    stored = len(_evaluations(tiny_project))
    distributed = _torchrun(tiny_project, "evaluate", "--project", "demo", "--split", "test")
    assert distributed["n_images"] == 16  # the whole split, not a rank's half
    added = _evaluations(tiny_project)[stored:]
    assert [rows for _, rows in added] == [16]  # rank 0 alone stored it, one row per image
    _same_figures(distributed, _single(tiny_project, capsys, "evaluate", "--project", "demo", "--split", "test"))


@pytest.mark.slow
def test_train_json_under_torchrun_reports_the_whole_split(tiny_project: Settings,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    stored = len(_evaluations(tiny_project))
    out = _torchrun(tiny_project, "train", "--project", "demo", "--epochs", "1", "--batch-size", "16")
    assert out["status"] == "succeeded" and out["before"]["n_images"] == out["after"]["n_images"] == 16
    # before and after, stored by rank 0 alone with one row per image (the epoch's val figures carry no rows)
    assert [rows for _, rows in _evaluations(tiny_project)[stored:] if rows] == [16, 16]
    for side in ("before", "after"):
        checkpoint = str(out[side]["checkpoint"]["id"])
        single = _single(tiny_project, capsys, "evaluate", "--project", "demo", "--checkpoint", checkpoint)
        _same_figures(out[side], single)


def test_gathered_rows_come_back_in_split_order_without_the_samplers_padding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 5 images over 2 ranks: DistributedSampler gives rank 0 images 0, 2, 4 and rank 1 images 1, 3, 0 (padding)
    keys = {0: [10, 12, 14], 1: [11, 13, 10]}

    def shard(rank: int) -> evaluation._Accumulator:
        acc = evaluation._Accumulator()
        k = torch.tensor(keys[rank])
        for name, value in (("logits", k[:, None].float().repeat(1, 2)), ("targets", k[:, None].float()),
                            ("labels", k), ("groups", k % 2), ("keys", k), ("epg", k / 100), ("iou", k / 1000)):
            getattr(acc, name).append(value)
        return acc

    def local(acc: evaluation._Accumulator) -> dict:
        return {f: torch.cat(getattr(acc, f)) for f in ("logits", "targets", "labels", "groups", "keys", "epg", "iou")}

    monkeypatch.setattr(dist_utils, "all_gather_objects", lambda obj: [local(shard(0)), local(shard(1))])
    out = evaluation._gathered(shard(0))
    assert torch.cat(out.keys).tolist() == [10, 11, 12, 13, 14]
    torch.testing.assert_close(torch.cat(out.epg), torch.tensor([10, 11, 12, 13, 14]) / 100)
    assert torch.cat(out.logits).shape == (5, 2)


def test_gathered_rows_keep_the_decisions_epg_when_every_rank_measured_it(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {0: [10, 12], 1: [11, 10]}  # rank 1's second row is the sampler's padding

    def local(rank: int) -> dict:
        k = torch.tensor(keys[rank])
        return {"logits": k[:, None].float().repeat(1, 2), "targets": k[:, None].float(), "labels": k,
                "groups": k % 2, "keys": k, "epg": k / 100, "iou": k / 1000, "epg_decision": k / 10}

    monkeypatch.setattr(dist_utils, "all_gather_objects", lambda obj: [local(0), local(1)])
    out = evaluation._gathered(evaluation._Accumulator())
    torch.testing.assert_close(torch.cat(out.epg_decision), torch.tensor([10, 11, 12]) / 10)
    torch.testing.assert_close(torch.cat(out.epg), torch.tensor([10, 11, 12]) / 100)
