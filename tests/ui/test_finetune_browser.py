"""The Fine-tune tab in a real browser: refusals, a dying process, a reload mid-run, a double click.

Playwright drives Debian's Chromium (never `playwright install`). Each test leaves no run queued or
running, because the project allows one at a time.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from services.runs import finish_if_active, write_run_progress
from store.db import session_scope
from store.models_runs import TrainingRun
from store.projects import ImageInput, add_images, create_project, get_project, set_image_labels
from store.runs import active_checkpoint, create_training_run, register_checkpoint, update_training_run
from tests.ui.browser import expect, expect_patience, queued_run_id, require_chromium, wait_for_run_end
from tests.ui.conftest import CLASSES, SIZE, TinyProject

pytestmark = pytest.mark.browser
require_chromium()
patient_expect = expect_patience(20_000)  # 2 shared cores: a first page load can take 10 s


def _runs(tiny: TinyProject, project: str | None = None) -> list[TrainingRun]:
    with session_scope(tiny.deps.engine) as session:
        project_id = get_project(session, project or tiny.name).id
        rows = session.scalars(select(TrainingRun).where(TrainingRun.project_id == project_id)
                               .order_by(TrainingRun.id)).all()
        session.expunge_all()
        return list(rows)


@pytest.fixture()
def no_active_run(served: tuple[str, TinyProject]) -> Iterator[None]:
    """After the test, end any run it left queued or running (and its process)."""
    yield
    _, tiny = served
    for run in _runs(tiny):
        if run.status in ("queued", "running"):
            if run.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(run.pid, signal.SIGKILL)
            finish_if_active(tiny.deps.engine, run.id, "ended by the test")


def open_finetune(page, url: str, project: str | None = None) -> None:
    page.goto(url)
    if project:
        page.locator("#project input").click()
        page.get_by_role("option", name=project, exact=True).click()
        expect(page.locator("#project input")).to_have_value(project)
    page.get_by_role("tab", name="Fine-tune").click()
    expect(page.locator("#run-status")).to_be_visible()


def short_run_form(page, *, epochs: str = "1", steps: str = "1") -> None:
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Epochs").fill(epochs)
    page.get_by_label("Batch size").fill("2")
    page.get_by_label("Max steps per epoch (0: all)").fill(steps)


def test_a_project_without_a_val_split_is_refused_with_the_reason_and_nothing_starts(
        page, served: tuple[str, TinyProject], no_active_run: None) -> None:
    url, tiny = served
    with session_scope(tiny.deps.engine) as session:  # a project made after the server started: train only
        project = create_project(session, name="no-val", task="single_label", image_size=SIZE, classes=CLASSES)
        images = [ImageInput(path=f"images/img_{i:02d}.png", sha256=f"{i:064x}", width=SIZE, height=SIZE,
                             split="train") for i in range(2)]
        for i, (image, _) in enumerate(add_images(session, project_id=project.id, images=images)):
            set_image_labels(session, image_id=image.id, class_names=[CLASSES[i % 2]])
        checkpoint = active_checkpoint(session, get_project(session, tiny.name).id)
        register_checkpoint(session, project_id=project.id, path=checkpoint.path, sha256=checkpoint.sha256,
                            arch=checkpoint.arch, activate=True)
    open_finetune(page, url, "no-val")  # the new project is offered after a reload
    page.locator("#start-training").click()
    expect(page.get_by_text(re.compile(r"no images in the 'val' split"))).to_be_visible()
    expect(page.locator("#train-status textarea")).to_have_value(re.compile(r"^Not started"))
    expect(page.locator("#start-training")).to_be_enabled()
    assert _runs(tiny, "no-val") == []


def test_a_run_whose_process_dies_shows_failed_with_one_line_and_its_log(page, served: tuple[str, TinyProject],
                                                                 no_active_run: None) -> None:
    url, tiny = served
    open_finetune(page, url)
    short_run_form(page, epochs="10000", steps="0")
    page.locator("#setting-schedule input").click()  # exactly 10,000 epochs: still running when killed
    page.get_by_role("option", name="fixed", exact=True).click()
    expect(page.locator("#setting-schedule input")).to_have_value("fixed")
    page.locator("#start-training").click()
    run_id = queued_run_id(page)
    expect(page.locator("#start-training")).to_be_disabled()  # while a run is active
    expect(page.locator("#run-status")).to_have_text(f"run {run_id}: running", timeout=120_000)
    [run] = [r for r in _runs(tiny) if r.id == run_id]
    log = tiny.deps.data_dir / "runs" / f"run-{run.id}.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # this run has trained: its own progress, not a time
        [now] = [r for r in _runs(tiny) if r.id == run_id]
        if now.progress > 0:
            break
        time.sleep(0.5)
    assert now.status == "running" and now.progress > 0, (now.status, now.progress)
    os.killpg(run.pid, signal.SIGKILL)
    assert wait_for_run_end(page, run_id, 30_000) == "failed"
    expect(page.locator("#run-error")).to_contain_text("killed by signal 9")
    expect(page.locator("#run-error")).to_contain_text(f"Full log: {log}")
    status_line = re.compile(rf"^Run {run.id} failed after \d+:\d\d: see the error below\.$")
    expect(page.locator("#train-status textarea")).to_have_value(status_line)  # no longer "…is starting…"
    history = page.locator("#run-history")
    expect(history).to_contain_text("failed")
    expect(history).to_contain_text("killed by signal 9")
    expect(page.locator("#start-training")).to_be_enabled()


def test_a_reload_mid_run_resumes_the_live_view(page, served: tuple[str, TinyProject], no_active_run: None) -> None:
    url, tiny = served
    settings = tiny.deps.settings
    with session_scope(tiny.deps.engine) as session:  # a running run as the trainer leaves it (no process here)
        run = create_training_run(session, project_id=get_project(session, tiny.name).id, config={"epochs": 2})
        session.flush()
        update_training_run(session, run.id, status="running", progress=0.3, message="epoch 1/2")
        run_id = run.id
    write_run_progress(settings, run_id, {"step": 3, "steps_total": 10, "eta_s": 125, "losses": []})
    open_finetune(page, url)
    expect(page.locator("#run-step")).to_have_text("3/10")
    page.reload()
    page.get_by_role("tab", name="Fine-tune").click()
    expect(page.locator("#run-status")).to_have_text(f"run {run_id}: running")
    expect(page.locator("#run-step")).to_have_text("3/10")
    expect(page.locator("#train-progress")).to_contain_text("elapsed")
    expect(page.locator("#train-progress")).to_contain_text("ETA 2:05")
    expect(page.locator("#start-training")).to_be_disabled()
    expect(page.locator("#cancel-training")).to_be_enabled()
    with session_scope(tiny.deps.engine) as session:
        update_training_run(session, run_id, progress=0.5)  # a heartbeat
    write_run_progress(settings, run_id, {"step": 5, "steps_total": 10, "eta_s": 60, "losses": []})
    expect(page.locator("#run-step")).to_have_text("5/10", timeout=10_000)  # the timer runs again: no click
    with session_scope(tiny.deps.engine) as session:
        update_training_run(session, run_id, status="cancelled", message="stopped by the test")
    expect(page.locator("#run-status")).to_have_text(f"run {run_id}: cancelled", timeout=10_000)
    expect(page.locator("#start-training")).to_be_enabled()
    expect(page.locator("#cancel-training")).to_be_disabled()  # nothing to cancel


def test_a_double_click_starts_one_run(page, served: tuple[str, TinyProject], no_active_run: None) -> None:
    url, tiny = served
    before = len(_runs(tiny))
    open_finetune(page, url)
    budget = page.locator("#setting-budget_s input")  # the one click's time budget is on show, not folded away
    expect(budget).to_be_visible()
    expect(budget).to_have_value("300")
    budget.fill("120")
    budget.blur()
    short_run_form(page)
    page.locator("#start-training").dblclick()
    run_id = queued_run_id(page)
    runs = _runs(tiny)[before:]
    assert [r.id for r in runs] == [run_id] and runs[0].pid
    assert runs[0].config["budget_s"] == 120 and runs[0].config["batch_size"] == 2  # both places reach the run
    wait_for_run_end(page, run_id, 150_000)  # this run's end, not an earlier test's (they share one project)
    expect(page.locator("#start-training")).to_be_enabled()  # the poll after the end re-enabled it
    expect(page.get_by_text(re.compile(r"still (queued|running)"))).to_have_count(0)  # no refusal of a second
    with session_scope(tiny.deps.engine) as session:
        assert session.scalar(select(func.count()).select_from(TrainingRun)) == before + 1


def test_a_run_no_better_than_its_start_says_so_and_activates_nothing(page, served: tuple[str, TinyProject],
                                                                      no_active_run: None) -> None:
    url, tiny = served
    with session_scope(tiny.deps.engine) as session:
        active_before = active_checkpoint(session, get_project(session, tiny.name).id).id
    open_finetune(page, url)
    short_run_form(page)
    page.locator("#setting-lr input").fill("1e-12")  # the step changes nothing: the epoch ties its start
    page.locator("#setting-lr input").blur()
    page.locator("#start-training").click()
    run_id = queued_run_id(page)
    assert wait_for_run_end(page, run_id, 150_000) == "no improvement — your model is kept"
    expect(page.locator("#run-why")).to_contain_text("kept the starting model (no epoch beat it on validation)")
    expect(page.locator("#run-why")).to_contain_text("decisions first")  # the rule that kept it
    expect(page.locator("#train-status textarea")).to_have_value(
        re.compile(rf"^Run {run_id} ended after \d+:\d\d: no improvement — your model is kept\. Nothing was activated"))
    history = page.locator("#run-history")
    expect(history).to_contain_text("no improvement — your model is kept")
    expect(history).to_contain_text("stopped: reached the epoch cap (1)")
    with session_scope(tiny.deps.engine) as session:
        assert active_checkpoint(session, get_project(session, tiny.name).id).id == active_before
    page.get_by_role("tab", name="Compare").click()  # Compare opens on this run's checkpoint and says what it did
    page.get_by_role("button", name="Refresh checkpoints").click()
    # the refresh has filled the picker with this run's checkpoint (the page load filled it with an older pair)
    expect(page.locator("#compare-after input")).to_have_value(re.compile(rf"run {run_id}, epoch 1"))
    page.locator("#compare-run").click()
    expect(page.locator("#compare-note")).to_contain_text(f"Run {run_id}: no improvement — your model is kept",
                                                          timeout=60_000)
