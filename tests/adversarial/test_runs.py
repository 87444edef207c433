"""Issue 15 items 1 and 5 kept as standing inputs: invalid settings are never "Started", and a training process
killed while the server is up does not lock its project."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import gradio as gr
import pytest

from services.runs import cancel_run, project_runs, queue_run
from tests.adversarial.conftest import launch_running, row_counts
from tests.ui.conftest import TinyProject, build_tiny_project
from ui.handlers import finetune


@pytest.fixture()
def tiny(tmp_path: Path) -> TinyProject:
    return build_tiny_project(tmp_path / "data")


@pytest.mark.parametrize("changed", [{"lam": -1}, {"lr": 0}, {"epochs": 0}, {"batch_size": 2.5},
                                     {"annotated_fraction": 2}, {"box_dilation": float("nan")}])
def test_invalid_settings_start_nothing(tiny: TinyProject, changed: dict) -> None:
    form = [changed.get(name, getattr(finetune.DEFAULTS, name)) for name, _ in finetune.FORM_SETTINGS]
    before = row_counts(tiny.deps.engine)
    with pytest.raises(gr.Error, match="invalid training setting"):
        finetune.start_training(tiny.deps, tiny.name, form)
    assert row_counts(tiny.deps.engine) == before  # no run row, so no process either
    with pytest.raises(ValueError, match="invalid training setting"):
        queue_run(tiny.deps.engine, tiny.deps.settings, tiny.name, changed)


def test_a_run_killed_while_the_server_is_up_frees_its_project(tiny: TinyProject) -> None:
    engine, settings = tiny.deps.engine, tiny.deps.settings
    launched = launch_running(tiny)
    os.killpg(launched.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (view := project_runs(engine, settings, tiny.name)[0]).active:
        assert time.monotonic() < deadline, "the killed run still shows as running"
        time.sleep(0.25)
    assert view.status == "failed" and "killed by signal 9" in view.error
    # one line of cause and where the full log is, never the log's tail (issue 24, item 3)
    assert view.error == f"Run {launched.run_id} failed: the training process was killed by signal 9. " \
                         f"Full log: {launched.log_path}"
    with pytest.raises(ValueError, match="no fine-tune"):
        cancel_run(engine, tiny.name)
    assert queue_run(engine, settings, tiny.name, {"epochs": 1}) > launched.run_id  # the project is free again
