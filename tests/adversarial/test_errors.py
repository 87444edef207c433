"""Issue 24, item 3: no traceback reaches a user. A failed run shows one line of cause and where its full log is;
a command that cannot work says so in one line naming the file or setting and what to do, with exit status 2
(a read-only data folder, a missing database, a bad weights file), and writes nothing."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image as PILImage

import app
import store
from services.commands.failures import command_failure
from services.database import open_store
from services.errors import DatabaseMissingError
from services.runs import _watch, project_runs, queue_run, run_log_path
from services.settings import Settings
from store.db import session_scope
from tests.adversarial.conftest import row_counts, tree_state
from tests.ui.conftest import TinyProject, build_tiny_project
from ui.handlers import finetune

REPO = Path(app.__file__).resolve().parent
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # app.main's


def _cli(data_dir: Path, *argv: str) -> list[str]:
    return ["--data-dir", str(data_dir), "--device", "cpu", *argv]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _small_data_dir(data_dir: Path) -> Settings:
    """A data dir with a database holding project "pets" (classes cat, dog) and no images: no torch needed."""
    settings = Settings(data_dir=data_dir, device="cpu")
    engine = open_store(settings)
    with session_scope(engine) as session:
        store.create_project(session, name="pets", task="single_label", image_size=32, classes=["cat", "dog"])
    engine.dispose()
    return settings


def _image_folder(root: Path) -> Path:
    for i, label in enumerate(("cat", "dog")):
        (root / label).mkdir(parents=True, exist_ok=True)
        PILImage.new("RGB", (32, 32), (40 * i, 90, 200)).save(root / label / f"{label}.png")
    return root


# --- a failed run ----------------------------------------------------------------------------------------------


@pytest.fixture()
def tiny(tmp_path: Path) -> TinyProject:
    return build_tiny_project(tmp_path / "data")


def test_a_failed_run_shows_one_line_of_cause_and_where_its_full_log_is(
        tiny: TinyProject, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tiny.deps.data_dir
    image = data_dir / "images" / "img_00.png"
    image.write_bytes(image.read_bytes()[:60])  # a truncated PNG: training cannot decode it
    with caplog.at_level(logging.INFO):
        code = app.main(_cli(data_dir, "train", "--project", tiny.name, "--epochs", "1", "--batch-size", "2"))
    shown = caplog.text + capsys.readouterr().err
    assert code == 1 and "Traceback" not in shown  # the terminal gets one line, not 25
    [view] = project_runs(tiny.deps.engine, tiny.deps.settings, tiny.name)
    log_path = run_log_path(tiny.deps.settings, view.id)
    assert view.status == "failed" and "\n" not in view.error
    assert view.error.startswith(f"Run {view.id} failed: ") and "img_00.png" in view.error
    assert view.error.endswith(f". Full log: {log_path}")
    assert "Traceback (most recent call last)" in log_path.read_text("utf-8")  # the whole story is in the log
    assert any(line.startswith(f"run {view.id} failed: ") and "Full log:" in line for line in _errors(caplog))
    page = finetune.progress_html(view) + finetune.run_history(tiny.deps, tiny.name).to_string()
    assert "Traceback" not in page and 'File "' not in page and "img_00.png" in page


def test_a_run_whose_process_exits_early_names_the_cause_from_its_log(tmp_path: Path) -> None:
    settings = _small_data_dir(tmp_path / "data")
    engine = open_store(settings)
    with session_scope(engine) as session:
        project = store.get_project(session, "pets")
        run = store.create_training_run(session, project_id=project.id, config={})
        session.flush()
        run_id = run.id
    log_path = run_log_path(settings, run_id)
    log_path.parent.mkdir(parents=True)
    script = ("import logging, sys\n"
              f"logging.basicConfig(format={LOG_FORMAT!r})\n"
              "logging.getLogger('guidance').error('the data folder /x is gone; nothing was written — restore it')\n"
              "raise SystemExit(2)\n")
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=log_file, stderr=subprocess.STDOUT)
    _watch(engine, run_id, process, log_path)  # what the server's watcher does when a trainer ends early
    [view] = project_runs(engine, settings, "pets")
    assert view.error == (f"Run {run_id} failed: the training process exited with code 2 before finishing the run: "
                          f"the data folder /x is gone; nothing was written — restore it. Full log: {log_path}")
    engine.dispose()


def test_an_old_run_row_with_a_log_tail_shows_its_first_line_only(tmp_path: Path) -> None:
    settings = _small_data_dir(tmp_path / "data")
    engine = open_store(settings)
    with session_scope(engine) as session:
        run = store.create_training_run(session, project_id=store.get_project(session, "pets").id, config={})
        session.flush()
        store.update_training_run(session, run.id, status="failed", error=(
            "the training process exited with code 1 before finishing the run; last lines of its log:\n"
            "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 101"))
    [view] = project_runs(engine, settings, "pets")
    assert view.error == f"Run {view.id} failed: the training process exited with code 1 before finishing the run."
    engine.dispose()


# --- commands that cannot work ----------------------------------------------------------------------------------


def _unprivileged(argv: list[str]) -> list[str]:
    """`argv` run so that file permissions hold: root passes any mode bits unless it drops CAP_DAC_OVERRIDE."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: a folder cannot be made read-only for this process")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *argv]


@contextmanager
def read_only(root: Path) -> Iterator[None]:
    """`root` and everything under it without write permission for the block (restored afterwards)."""
    paths = [root, *root.rglob("*")]
    modes = {path: path.stat().st_mode for path in paths}
    for path in paths:
        path.chmod(modes[path] & ~0o222)
    try:
        yield
    finally:
        for path in paths:
            path.chmod(modes[path])


READ_ONLY_COMMANDS = {
    "projects": ["projects"],
    "model list": ["model", "list", "--project", "pets"],
    "train": ["train", "--project", "pets", "--epochs", "1"],
    "import": ["import", "folder", "{images}", "--project", "more"],
    "export": ["export", "coco", "--project", "pets", "--out", "{out}"],
}


@pytest.mark.parametrize("command", sorted(READ_ONLY_COMMANDS))
def test_a_read_only_data_folder_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    data_dir = tmp_path / "data"
    _small_data_dir(data_dir)
    images = _image_folder(tmp_path / "images")
    argv = [a.format(images=images, out=tmp_path / "out.json") for a in READ_ONLY_COMMANDS[command]]
    before = tree_state(data_dir)
    with read_only(data_dir):
        done = subprocess.run(_unprivileged([sys.executable, str(REPO / "app.py"), *_cli(data_dir, *argv)]),
                              cwd=REPO, capture_output=True, text=True, timeout=240)
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert done.returncode == 2, output
    assert "Traceback" not in output and "sqlite3" not in output and "[SQL" not in output
    assert len(errors) == 1 and errors[0].endswith(
        f"the data folder {data_dir} is read-only; nothing was written — make it writable and restart")
    assert tree_state(data_dir) == before and not (tmp_path / "out.json").exists()


MISSING_COMMANDS = {
    "projects": ["projects"],
    "model list": ["model", "list", "--project", "pets"],
    "project set": ["project", "set", "pets", "--image-size", "64"],
    "train": ["train", "--project", "pets", "--epochs", "1"],
    "export": ["export", "coco", "--project", "pets", "--out", "{out}"],
}


@pytest.mark.parametrize("command", sorted(MISSING_COMMANDS))
@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_a_missing_database_is_named_and_not_created(tmp_path: Path, command: str, folder: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "data"
    if folder == "empty":
        data_dir.mkdir()
    argv = [a.format(out=tmp_path / "out.json") for a in MISSING_COMMANDS[command]]
    assert app.main(_cli(data_dir, *argv)) == 2
    [error] = _errors(caplog)
    assert error.startswith(f"no database at {data_dir / 'studio.db'}") and "--data-dir" in error
    assert "Traceback" not in caplog.text
    assert (data_dir.exists(), sorted(data_dir.iterdir()) if data_dir.exists() else []) == (folder == "empty", [])


@pytest.mark.parametrize("leftover", ["runs/run-3.log", "studio.db-wal"])
def test_no_new_empty_database_beside_the_remains_of_an_earlier_one(tmp_path: Path, leftover: str,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "data"
    (data_dir / leftover).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / leftover).write_text("from an earlier studio\n")
    before = tree_state(data_dir)
    images = _image_folder(tmp_path / "images")
    assert app.main(_cli(data_dir, "import", "folder", str(images), "--project", "pets")) == 2
    [error] = _errors(caplog)
    assert f"the database {data_dir / 'studio.db'} is missing" in error and "nothing was created" in error
    assert tree_state(data_dir) == before  # no studio.db appeared
    fresh = tmp_path / "fresh"
    assert app.main(_cli(fresh, "import", "folder", str(images), "--project", "pets")) == 0  # a first start works
    assert (fresh / "studio.db").is_file()


def test_a_bad_weights_file_is_one_line_and_exit_2(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    settings = _small_data_dir(tmp_path / "data")
    weights = tmp_path / "weights.pth"
    weights.write_text("hello")  # 5 bytes of text: torch.load raised KeyError: 101
    engine = open_store(settings)
    before = row_counts(engine)
    code = app.main(_cli(settings.data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small",
                         "--weights", str(weights)))
    [error] = _errors(caplog)
    assert code == 2 and "weights.pth is not a readable PyTorch weights file" in error and "copy it again" in error
    assert "Traceback" not in caplog.text + capsys.readouterr().err and row_counts(engine) == before
    engine.dispose()


def test_an_unexpected_error_is_one_line_with_the_way_to_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    _small_data_dir(tmp_path / "data")

    def broken(*_args: object) -> int:
        raise KeyError(101)

    monkeypatch.setattr("services.commands.projects.run", broken)
    with caplog.at_level(logging.INFO):
        assert app.main(_cli(tmp_path / "data", "projects")) == 1
    [error] = _errors(caplog)
    assert error.startswith("unexpected error (KeyError: 101)") and "--log-level DEBUG" in error
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(("exc", "code", "line"), [
    (PermissionError(13, "Permission denied", "/srv/out.json"), 2,
     "/srv/out.json: Permission denied; nothing was written — make it readable/writable for this user or choose "
     "another path"),
    (OSError(28, "No space left on device", "/srv/data/x"), 2,
     "/srv/data/x: No space left on device; nothing was written — the disk is full: free space and try again"),
    (ValueError("--port must be a number\nmore"), 2, "--port must be a number"),
])
def test_command_failures_are_one_line(exc: BaseException, code: int, line: str) -> None:
    assert command_failure(exc) == (code, line)


def test_queue_run_refuses_a_missing_database_without_creating_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gone", device="cpu")
    with pytest.raises(DatabaseMissingError, match="no database at"):
        queue_run(open_store(settings, create=False), settings, "pets", {})
    assert not settings.data_dir.exists()
