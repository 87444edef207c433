"""`app.py train` / `app.py evaluate` on a tiny project: JSON contract, store rows, failures, kills, DDP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import app
from services.settings import Settings
from store.db import open_database, session_scope
from store.models_runs import Checkpoint, Evaluation, EvaluationImage, TrainingRun

ROOT = Path(__file__).resolve().parents[2]
EVAL_KEYS = {"accuracy", "f1", "epg", "iou", "group_accuracy", "worst_group_accuracy", "n_images", "split",
             "checkpoint"}


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def _cli(settings: Settings, *args: str) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--device", "cpu", *args]


def _rows(settings: Settings, model: type) -> list:
    engine = open_database(settings.database_url)
    with session_scope(engine) as session:
        rows = session.query(model).all()
        session.expunge_all()
    engine.dispose()
    return rows


def test_train_json_contract_and_store_rows(tiny_project: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code = app.main(_cli(tiny_project, "train", "--project", "demo", "--epochs", "2", "--batch-size", "32",
                         "--lam", "1", "--json"))
    out = _last_json(capsys.readouterr().out)
    assert code == 0 and out["status"] == "succeeded"
    assert set(out) >= {"run_id", "status", "checkpoints", "best_checkpoint", "seconds", "before", "after"}
    assert set(out["before"]) >= EVAL_KEYS and set(out["after"]) >= EVAL_KEYS
    assert out["before"]["split"] == "test" and out["after"]["n_images"] == 16
    assert Path(out["best_checkpoint"]).is_file() and all(Path(p).is_file() for p in out["checkpoints"])
    run = next(r for r in _rows(tiny_project, TrainingRun) if r.id == out["run_id"])
    assert run.status == "succeeded" and run.progress == 1.0 and run.finished is not None
    produced = [c for c in _rows(tiny_project, Checkpoint) if c.run_id == run.id]
    assert len(produced) == len(out["checkpoints"]) and all(c.parent_id == run.base_checkpoint_id for c in produced)
    progress = json.loads((tiny_project.data_dir / "runs" / f"run-{run.id}.json").read_text())
    assert progress["status"] == "succeeded" and progress["losses"] and len(progress["evals"]) == 2


def test_evaluate_stores_per_image_results(tiny_project: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(_cli(tiny_project, "evaluate", "--project", "demo", "--split", "val", "--json")) == 0
    out = _last_json(capsys.readouterr().out)
    assert set(out) >= EVAL_KEYS and out["split"] == "val" and 0.0 <= out["epg"] <= 1.0
    assert set(out["group_accuracy"]) == {"warm/cue-warm", "warm/cue-cool", "cool/cue-warm", "cool/cue-cool"}
    evaluation = _rows(tiny_project, Evaluation)[-1]
    per_image = [r for r in _rows(tiny_project, EvaluationImage) if r.evaluation_id == evaluation.id]
    assert len(per_image) == out["n_images"] == 16 and all(r.epg is not None for r in per_image)


def test_evaluate_rejects_checkpoint_of_another_architecture(tiny_project: Settings, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    import torch

    from core.bcos import build_model
    from core.train import save_checkpoint

    torch.manual_seed(0)
    wrong = save_checkpoint(tmp_path, build_model("bcos_small", 3), classes=["a", "b", "c"])
    assert app.main(_cli(tiny_project, "evaluate", "--project", "demo", "--checkpoint", str(wrong))) == 1
    assert "3 classes" in caplog.text and "project has 2" in caplog.text


def test_second_training_for_a_project_is_refused(tiny_project: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from store.runs import create_training_run, update_training_run

    engine = open_database(tiny_project.database_url)
    with session_scope(engine) as session:
        run = create_training_run(session, project_id=1, config={})
        session.flush()
        update_training_run(session, run.id, status="running", pid=os.getpid())  # alive: this test process
    engine.dispose()
    code = app.main(_cli(tiny_project, "train", "--project", "demo", "--epochs", "1", "--json"))
    out = _last_json(capsys.readouterr().out)
    assert code == 1 and out["status"] == "failed" and "already has" in out["error"]


def _wait_for(predicate, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("condition not reached in time")


def _spawn_train(settings: Settings, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "app.py"), *_cli(settings, "train", "--project", "demo", *extra, "--json")]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _run_status(settings: Settings) -> str | None:
    runs = _rows(settings, TrainingRun)
    return runs[-1].status if runs else None


def _progress_started(settings: Settings) -> bool:
    runs = _rows(settings, TrainingRun)
    return bool(runs) and runs[-1].status == "running" and runs[-1].progress > 0


def test_sigterm_cancels_and_sigkill_is_detected_later(tiny_project: Settings) -> None:
    proc = _spawn_train(tiny_project, "--epochs", "50", "--batch-size", "8")
    try:
        _wait_for(lambda: _progress_started(tiny_project))
        os.killpg(proc.pid, signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and _last_json(stdout)["status"] == "cancelled"
    assert _run_status(tiny_project) == "cancelled"
    assert not list((tiny_project.data_dir / "checkpoints").glob(".tmp-*"))

    proc = _spawn_train(tiny_project, "--epochs", "50", "--batch-size", "8")
    _wait_for(lambda: _progress_started(tiny_project))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert _run_status(tiny_project) == "running"  # nobody told the database
    assert app.main(_cli(tiny_project, "projects")) == 0  # any later start detects the dead run
    run = _rows(tiny_project, TrainingRun)[-1]
    assert run.status == "failed" and "ended without reporting" in (run.error or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_one_run(tiny_project: Settings) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), str(ROOT / "app.py"),
           *_cli(tiny_project, "train", "--project", "demo", "--epochs", "1", "--batch-size", "16", "--json")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = _last_json(done.stdout)
    assert out["status"] == "succeeded" and len(out["checkpoints"]) == 1
    runs = _rows(tiny_project, TrainingRun)
    assert len(runs) == 1 and runs[0].status == "succeeded"
    produced = [c for c in _rows(tiny_project, Checkpoint) if c.run_id == runs[0].id]
    assert len(produced) == 1 and produced[0].metrics.get("epg") is not None


def test_an_epoch_dominated_at_once_is_not_registered_and_the_run_succeeds(
        tiny_project: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    # lr 1e-12 leaves the weights as they are: epoch 2 ties epoch 1 in every bin, so the Pareto archive
    # deletes its file as soon as it is written (ties keep the earliest). The run must still succeed.
    code = app.main(_cli(tiny_project, "train", "--project", "demo", "--epochs", "2", "--batch-size", "32",
                         "--lr", "1e-12", "--json"))
    out = _last_json(capsys.readouterr().out)
    assert code == 0 and out["status"] == "succeeded", out
    assert len(out["checkpoints"]) == 1 and Path(out["best_checkpoint"]).is_file()
    produced = [c for c in _rows(tiny_project, Checkpoint) if c.run_id == out["run_id"]]
    assert [c.metrics["epoch"] for c in produced] == [1]
    progress = json.loads((tiny_project.data_dir / "runs" / f"run-{out['run_id']}.json").read_text())
    assert [e["epoch"] for e in progress["evals"]] == [1, 2]  # the curve still shows both epochs
