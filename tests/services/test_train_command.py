"""`app.py train` / `app.py evaluate` on a tiny project: JSON contract, store rows, failures, kills, DDP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

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
        rows = list(session.scalars(select(model).order_by(model.id if hasattr(model, "id") else model.image_id)))
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


def test_evaluate_json_reports_the_decisions_epg_beside_the_class_logits(tiny_project: Settings,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # single-label: `epg` stays the class logit's map, `epg_decision` is the decision's (class vs runner-up)
    assert app.main(_cli(tiny_project, "evaluate", "--project", "demo", "--split", "val", "--json")) == 0
    out = _last_json(capsys.readouterr().out)
    assert 0.0 <= out["epg"] <= 1.0 and 0.0 <= out["epg_decision"] <= 1.0 and out["epg_decision"] != out["epg"]
    assert out["epg_labels"] == {"epg": "EPG (class logit)", "epg_decision": "EPG (decision: class vs runner-up)"}
    assert _rows(tiny_project, Evaluation)[-1].metrics["epg_decision"] == out["epg_decision"]  # Compare reads it


def test_evaluate_json_of_a_multi_label_evaluation_has_no_decision() -> None:
    from types import SimpleNamespace

    from services.evaluation import summary

    checkpoint = SimpleNamespace(id=1, path="checkpoints/x.pt", sha256="0" * 64)
    out = summary({"f1": 0.5, "epg": 0.25, "multi_label": True}, split="test", checkpoint=checkpoint)
    assert out["epg"] == 0.25 and "epg_decision" not in out and out["epg_labels"] == {"epg": "EPG (class logit)"}


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
    assert code == 1 and out["status"] == "failed" and "still running" in out["error"]
    assert len(_rows(tiny_project, TrainingRun)) == 1  # nothing queued


@pytest.mark.parametrize(("flags", "message"), [
    (("--lam", "-1"), "lam=-1.0 is out of range"),
    (("--lr", "0"), "lr=0.0 is out of range"),
    (("--annotated-fraction", "1.5"), "annotated_fraction=1.5 is out of range"),
])
def test_invalid_settings_are_refused_before_anything_is_queued(
        tiny_project: Settings, caplog: pytest.LogCaptureFixture, flags: tuple[str, ...], message: str) -> None:
    assert app.main(_cli(tiny_project, "train", "--project", "demo", *flags)) == 2
    assert message in caplog.text and _rows(tiny_project, TrainingRun) == []


def test_a_queued_run_executes_with_the_settings_of_its_row(tiny_project: Settings,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from services.database import open_store
    from services.runs import queue_run

    engine = open_store(tiny_project)
    run_id = queue_run(engine, tiny_project, "demo", {"epochs": 1, "lam": 2.5, "batch_size": 32,
                                                      "max_steps_per_epoch": 1, "keep_start": False})
    engine.dispose()
    queued = _rows(tiny_project, TrainingRun)[-1]
    assert queued.status == "queued" and queued.config["lam"] == 2.5 and queued.config["epochs"] == 1
    assert app.main(_cli(tiny_project, "train", "--run", str(run_id), "--activate", "--json")) == 0
    out = _last_json(capsys.readouterr().out)
    assert out["run_id"] == run_id and out["status"] == "succeeded"
    assert out["config"]["lam"] == 2.5 and out["config"]["attribution"] == "bcos"  # auto resolved for a B-cos net
    assert out["config"]["keep_start"] is False and out["outcome"] != "no_improvement"  # one step: kept all the same
    assert out["active_checkpoint_id"] == out["best_checkpoint_id"] is not None  # --activate
    assert app.main(_cli(tiny_project, "train", "--run", str(run_id))) == 1  # a run executes once
    assert app.main(_cli(tiny_project, "train", "--run", str(run_id), "--lam", "1")) == 2  # settings live in the row


def test_queue_refuses_a_project_without_model_or_validation_split(tiny_project: Settings) -> None:
    from services.database import open_store
    from services.errors import NotFoundError
    from services.runs import queue_run
    from store.models import Image
    from store.models_runs import Checkpoint as CheckpointRow

    engine = open_store(tiny_project)
    with session_scope(engine) as session:
        for image in session.scalars(select(Image).where(Image.split == "val")):
            image.split = "test"
    with pytest.raises(ValueError, match=r"no images in the .val. split.*project split demo --val-fraction"):
        queue_run(engine, tiny_project, "demo", {})
    with session_scope(engine) as session:
        for checkpoint in session.scalars(select(CheckpointRow)):
            checkpoint.active = False
    with pytest.raises(NotFoundError, match=r"no active model.*model new"):
        queue_run(engine, tiny_project, "demo", {})
    engine.dispose()
    assert _rows(tiny_project, TrainingRun) == []


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


def test_a_killed_cli_run_is_failed_once_its_heartbeat_stops(tiny_project: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUIDANCE_RUN_TIMEOUT_S", "600")  # no machine is that slow: only the aged beat below counts
    proc = _spawn_train(tiny_project, "--epochs", "50", "--batch-size", "8")
    _wait_for(lambda: _progress_started(tiny_project))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert _run_status(tiny_project) == "running"  # nobody told the database
    assert app.main(_cli(tiny_project, "projects")) == 0  # a look within the timeout leaves it alone
    assert _run_status(tiny_project) == "running"
    engine = open_database(tiny_project.database_url)  # the silence outlasts the timeout: its last beat is older
    with session_scope(engine) as session:
        run = session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())).first()
        run.heartbeat = (run.heartbeat or run.created) - timedelta(seconds=601)
    engine.dispose()
    assert app.main(_cli(tiny_project, "projects")) == 0  # any later look fails the silent run
    run = _rows(tiny_project, TrainingRun)[-1]
    assert run.status == "failed" and "no sign of life" in (run.error or "")


def test_a_launched_run_killed_by_signal_is_failed_at_once_with_its_log(tiny_project: Settings) -> None:
    from services.database import open_store
    from services.runs import cancel_run, launch_run, project_runs

    engine = open_store(tiny_project)
    # fixed: exactly 50 epochs, still running when killed (the adaptive default may stop after 3)
    launched = launch_run(engine, tiny_project, "demo", {"epochs": 50, "batch_size": 8, "schedule": "fixed"})
    assert launched.log_path.name == f"run-{launched.run_id}.log"
    _wait_for(lambda: _progress_started(tiny_project))
    os.killpg(launched.pid, signal.SIGKILL)
    _wait_for(lambda: _run_status(tiny_project) == "failed", 30)  # the watcher saw it exit: no 60 s wait
    view = project_runs(engine, tiny_project, "demo")[0]
    assert view.id == launched.run_id and "killed by signal 9" in view.error
    assert view.error.endswith(f"Full log: {launched.log_path}")
    with pytest.raises(ValueError, match="no fine-tune"):
        cancel_run(engine, "demo")  # nothing left running: cancel says so instead of hanging
    engine.dispose()


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


def test_a_run_no_better_than_its_start_keeps_it_and_says_so(
        tiny_project: Settings, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    # lr 1e-12 leaves the weights as they are: both epochs tie the starting model, which wins the tie (the earliest),
    # and epoch 2 ties epoch 1 in every bin, so the Pareto archive deletes its file as soon as it is written
    before = [c.id for c in _rows(tiny_project, Checkpoint) if c.active]
    code = app.main(_cli(tiny_project, "train", "--project", "demo", "--epochs", "2", "--batch-size", "32",
                         "--lr", "1e-12", "--activate", "--json"))
    out = _last_json(capsys.readouterr().out)
    assert code == 0 and out["status"] == "succeeded" and out["outcome"] == "no_improvement", out
    assert out["best_checkpoint"] is None and out["best_checkpoint_id"] is None and out["after"] is None
    assert [out["active_checkpoint_id"]] == before  # --activate, yet nothing was activated
    message = out["message"]
    assert message.startswith("no improvement — your model is kept") and "nothing was activated" in message
    summary = out["summary"]
    assert (summary["kept_epoch"], summary["epochs"], summary["stop_reason"]) == (0, 2, "reached the epoch cap (2)")
    assert "decisions first" in summary["selection_rule"]
    assert "no improvement — your model is kept" in caplog.text  # said on the log too, not only in --json
    run = next(r for r in _rows(tiny_project, TrainingRun) if r.id == out["run_id"])
    assert run.status == "succeeded" and run.summary == summary  # the row says it (run line, history, Compare)
    assert [c.id for c in _rows(tiny_project, Checkpoint) if c.active] == before
    produced = [c for c in _rows(tiny_project, Checkpoint) if c.run_id == out["run_id"]]
    assert [c.metrics["epoch"] for c in produced] == [1] and len(out["checkpoints"]) == 1  # listed, for a look
    assert all("not chosen" in c.note and "run's choice" not in str(c.metrics) for c in produced)
    progress = json.loads((tiny_project.data_dir / "runs" / f"run-{out['run_id']}.json").read_text())
    assert [e["epoch"] for e in progress["evals"]] == [1, 2]  # the curve still shows both epochs
    assert progress["summary"] == summary


def test_train_from_a_checkpoint_file_registers_it_as_the_base(tiny_project: Settings, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from core.bcos import build_model
    from core.train import save_checkpoint

    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    mine = save_checkpoint(tmp_path / "elsewhere", build_model("bcos_small", 2), classes=["warm", "cool"])
    code = app.main(_cli(tiny_project, "train", "--project", "demo", "--base", str(mine), "--epochs", "1",
                         "--max-steps-per-epoch", "1", "--batch-size", "8", "--json"))
    out = _last_json(capsys.readouterr().out)
    assert code == 0 and out["status"] == "succeeded", out  # was: "run 1 has no base checkpoint"
    run = next(r for r in _rows(tiny_project, TrainingRun) if r.id == out["run_id"])
    base = next(c for c in _rows(tiny_project, Checkpoint) if c.id == run.base_checkpoint_id)
    assert base.path.endswith(mine.name) and not base.active  # registered, not activated
    other = save_checkpoint(tmp_path / "other", build_model("bcos_small", 3), classes=["a", "b", "c"])
    runs_before = len(_rows(tiny_project, TrainingRun))
    assert app.main(_cli(tiny_project, "train", "--project", "demo", "--base", str(other), "--json")) == 1
    assert "was trained for the classes ['a', 'b', 'c'], not 'demo'" in caplog.text
    assert len(_rows(tiny_project, TrainingRun)) == runs_before  # refused before a run row was written


def test_a_run_whose_choice_is_at_chance_says_so(tiny_project: Settings, capsys: pytest.CaptureFixture[str],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    # the random start answers 0.5 on a balanced val of 16; a step of 1e-12 changes nothing, and --no-keep-start keeps
    # that epoch: its accuracy is within two standard errors of always answering one class (0.5 + 0.25)
    code = app.main(_cli(tiny_project, "train", "--project", "demo", "--epochs", "1", "--max-steps-per-epoch", "1",
                         "--batch-size", "8", "--lr", "1e-12", "--no-keep-start", "--json"))
    out = _last_json(capsys.readouterr().out)
    assert code == 0 and out["status"] == "succeeded" and out["outcome"] == "at_chance", out
    assert out["summary"]["chance"] == {"majority": 0.5, "threshold": 0.75, "images": 16}
    assert out["message"].startswith("at chance — not learned yet: the kept epoch's validation accuracy 0.500")
    assert "start from pretrained weights" in out["message"] and "at chance — not learned yet" in caplog.text
    run = next(r for r in _rows(tiny_project, TrainingRun) if r.id == out["run_id"])
    assert run.summary["outcome"] == "at_chance"  # the run line and the history say it too (RunView.outcome)
