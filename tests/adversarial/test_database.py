"""Issue 24, items 8 and 9: the database's state, whatever the input.

8. Another process holding SQLite's write lock (`BEGIN IMMEDIATE`) during a box save, a run start or an import:
   the answer is "the database is busy (another process is writing); nothing was saved — try again" after the
   busy timeout (under 5 s; it was 30 s), never SQL text, and nothing is written.
9. A data folder removed, replaced or made read-only under a running server or run: refused before anything is
   written, said once ("the data folder DIR is gone; nothing was written — restore it and restart"), and never
   re-created as a new empty database.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image as PILImage
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import app
import store
from services.errors import BUSY_MESSAGE, DatabaseBusyError, DataDirUnavailableError
from services.runs import run_log_path
from store.db import SQLITE_BUSY_TIMEOUT_MS
from tests.adversarial.conftest import launch_running, row_counts
from tests.ui.conftest import TinyProject, build_tiny_project
from ui.handlers import annotate, finetune
from ui.handlers.common import user_errors

REPO = Path(app.__file__).resolve().parent
HOLD_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()  # until the test closes stdin
connection.execute("ROLLBACK")
"""


@pytest.fixture()
def tiny(tmp_path: Path) -> TinyProject:
    return build_tiny_project(tmp_path / "data")


@contextmanager
def write_lock(database: Path) -> Iterator[None]:
    """Another process holds `database`'s write lock (sqlite3 `BEGIN IMMEDIATE`) for the block."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(database)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def _form() -> list:
    return [getattr(finetune.DEFAULTS, name) for name, _ in finetune.FORM_SETTINGS]


def _one_box(tiny: TinyProject) -> tuple:
    value, snapshot, _, _ = annotate.load_annotation(tiny.deps, tiny.name, tiny.image_ids[0])
    box = {"xmin": 2 * snapshot.scale, "ymin": 2 * snapshot.scale, "xmax": 20 * snapshot.scale,
           "ymax": 20 * snapshot.scale, "label": "warm"}
    return snapshot, {**value, "boxes": [box]}


def _image_folder(root: Path) -> Path:
    for i, label in enumerate(("warm", "cool")):
        (root / label).mkdir(parents=True, exist_ok=True)
        PILImage.new("RGB", (32, 32), (60 * i, 90, 200)).save(root / label / f"new_{label}.png")
    return root


# --- 8: a busy database --------------------------------------------------------------------------------------------


def test_a_busy_answer_comes_within_5_s(tiny: TinyProject) -> None:
    with tiny.deps.engine.connect() as connection:
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_TIMEOUT_MS <= 5000


def test_a_box_save_and_a_run_start_while_another_process_writes_say_busy(tiny: TinyProject) -> None:
    database = tiny.deps.data_dir / "studio.db"
    snapshot, edited = _one_box(tiny)
    before = row_counts(tiny.deps.engine)
    with write_lock(database):
        with pytest.raises(gr.Error) as saved:
            annotate.save_annotation(tiny.deps, tiny.name, snapshot, edited, "alice")
        with pytest.raises(gr.Error) as started:
            finetune.start_training(tiny.deps, tiny.name, _form())
    for refusal in (saved.value, started.value):
        assert refusal.message == BUSY_MESSAGE  # never "(sqlite3.OperationalError) … [SQL: UPDATE …]"
    assert row_counts(tiny.deps.engine) == before  # nothing saved, no run queued (so no process started)
    *_, status = annotate.save_annotation(tiny.deps, tiny.name, snapshot, edited, "alice")
    assert status.startswith("Saved 1")  # once the other writer is done, the same save goes through


def test_an_import_while_another_process_writes_says_busy(tiny: TinyProject, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    images = _image_folder(tmp_path / "incoming")
    before = row_counts(tiny.deps.engine)
    argv = ["--data-dir", str(tiny.deps.data_dir), "import", "folder", str(images), "--project", "more"]
    with write_lock(tiny.deps.data_dir / "studio.db"):
        assert app.main(argv) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [BUSY_MESSAGE] and "[SQL" not in caplog.text and "Traceback" not in caplog.text
    assert row_counts(tiny.deps.engine) == before
    assert app.main(argv) == 0  # and after it, the import works


def test_database_errors_reach_the_page_as_one_line_without_sql() -> None:
    with pytest.raises(gr.Error) as busy, user_errors():
        raise DatabaseBusyError()
    assert busy.value.message == BUSY_MESSAGE
    raw = OperationalError("UPDATE image SET split=? WHERE image.id = ?", (1, 2), Exception("disk I/O error"))
    with pytest.raises(gr.Error) as other, user_errors():
        raise raw
    assert other.value.message == "the database refused this (disk I/O error); nothing was saved — try again"


# --- 9: the data folder taken away under a running server ----------------------------------------------------------


@pytest.mark.parametrize("how", ["moved", "deleted"])
def test_a_data_folder_removed_under_the_server_is_refused_once_and_never_recreated(
        tiny: TinyProject, tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tiny.deps.data_dir
    snapshot, edited = _one_box(tiny)
    before = row_counts(tiny.deps.engine)
    moved = tmp_path / "moved"
    if how == "moved":
        data_dir.rename(moved)  # the files live on elsewhere: we can look at what was written to them
    else:
        shutil.rmtree(data_dir)  # open handles keep the deleted database writable: nothing may use them
    gone = f"the data folder {data_dir} is gone; nothing was written — restore it and restart"
    with pytest.raises(gr.Error, match=re.escape(gone)):
        annotate.save_annotation(tiny.deps, tiny.name, snapshot, edited, "alice")
    with pytest.raises(gr.Error, match=re.escape(gone)):
        finetune.start_training(tiny.deps, tiny.name, _form())
    for _ in range(3):  # the Fine-tune tab polls every second: it says so in its bar and stops polling
        bar, *_, keep_polling, _ended = finetune.poll_training(tiny.deps, tiny.name)
        assert gone in bar and keep_polling is False
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [gone]  # reported once
    assert not data_dir.exists()  # no new empty studio.db, no runs/ folder
    if how == "moved":
        engine = store.open_database(f"sqlite:///{moved / 'studio.db'}", create=False)
        assert row_counts(engine) == before
        engine.dispose()


def test_a_database_file_replaced_under_the_server_is_refused(tiny: TinyProject, tmp_path: Path) -> None:
    database = tiny.deps.data_dir / "studio.db"
    snapshot, edited = _one_box(tiny)
    copy = tmp_path / "copy.db"
    shutil.copy(database, copy)
    os.replace(copy, database)  # e.g. a backup restored over it while the server runs
    with pytest.raises(gr.Error, match=re.escape(f"the database {database} was replaced by another file")):
        annotate.save_annotation(tiny.deps, tiny.name, snapshot, edited, "alice")


READ_ONLY_UNDER_A_SERVER = """
import os, sys
from pathlib import Path
import store
from services.database import open_store
from services.errors import DataDirUnavailableError
from services.settings import Settings
from store.db import session_scope

data_dir = Path(sys.argv[1])
engine = open_store(Settings(data_dir=data_dir))  # the running server's engine
with session_scope(engine) as session:
    print("projects", len(store.list_projects(session)), flush=True)
for path in (data_dir / "studio.db", data_dir):  # chmod -R a-w DATA, as a person would
    path.chmod(path.stat().st_mode & ~0o222)
for attempt in range(2):
    try:
        with session_scope(engine) as session:
            store.create_project(session, name=f"late{attempt}", task="single_label", image_size=32,
                                 classes=["a", "b"])
        print("written")
    except DataDirUnavailableError as exc:
        print("refused", exc.first, exc)
"""


def test_a_data_folder_made_read_only_under_the_server_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    engine = store.open_database(f"sqlite:///{data_dir / 'studio.db'}")
    store.upgrade(engine)
    before = row_counts(engine)
    engine.dispose()
    argv = [sys.executable, "-c", READ_ONLY_UNDER_A_SERVER, str(data_dir)]
    if os.geteuid() == 0:  # root writes whatever the mode bits say, unless it drops CAP_DAC_OVERRIDE
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv: a folder cannot be made read-only for this process")
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *argv]
    try:
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        for path in (data_dir, data_dir / "studio.db"):
            path.chmod(path.stat().st_mode | 0o200)
    message = f"the data folder {data_dir} is read-only; nothing was written — make it writable and restart"
    assert done.stdout.splitlines() == ["projects 0", f"refused True {message}", f"refused False {message}"], \
        done.stdout + done.stderr
    engine = store.open_database(f"sqlite:///{data_dir / 'studio.db'}", create=False)
    assert row_counts(engine) == before
    engine.dispose()


def test_the_guard_raises_the_same_error_the_handlers_catch(tmp_path: Path) -> None:
    engine = store.open_database(f"sqlite:///{tmp_path / 'data' / 'studio.db'}")
    store.upgrade(engine)
    shutil.rmtree(tmp_path / "data")
    with pytest.raises(DataDirUnavailableError) as first, store.session_scope(engine) as session:
        store.list_projects(session)
    with pytest.raises(DataDirUnavailableError) as second, store.session_scope(engine) as session:
        store.list_projects(session)
    assert first.value.first and not second.value.first  # a polling page logs it once
    engine.dispose()
    assert not (tmp_path / "data").exists()


# --- 9: the data folder taken away under a running run ------------------------------------------------------------


def test_a_data_folder_removed_under_a_running_run_stops_it_without_writing(tiny: TinyProject, tmp_path: Path) -> None:
    engine, settings = tiny.deps.engine, tiny.deps.settings
    launched = launch_running(tiny)
    data_dir, moved = settings.data_dir, tmp_path / "moved"
    data_dir.rename(moved)
    deadline = time.monotonic() + 60
    while _alive(launched.pid):
        assert time.monotonic() < deadline, "the run went on training into a data folder that is gone"
        time.sleep(0.25)
    log = (moved / "runs" / run_log_path(settings, launched.run_id).name).read_text("utf-8")
    gone = f"the data folder {data_dir} is gone; nothing was written — restore it and restart"
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and errors[0].endswith(gone) and "Traceback" not in log, log[-3000:]  # said once
    # no new empty database, no progress or log files; (a checkpoint the trainer was saving in the very moment the
    # folder went could still re-create checkpoints/: core.train saves it before telling anyone)
    assert not (data_dir / "studio.db").exists() and not (data_dir / "runs").exists()
    engine = store.open_database(f"sqlite:///{moved / 'studio.db'}", create=False)
    with store.session_scope(engine) as session:
        assert store.get_training_run(session, launched.run_id).status == "running"  # nothing written after
    engine.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.postgres
def test_postgresql_answers_busy_within_5_s_when_another_session_holds_a_lock(engine) -> None:
    """Item 8 on PostgreSQL: a write waits at most the busy timeout for another session's lock, then says busy."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (SQLite: the tests above)")
    with store.session_scope(engine) as session:
        store.create_project(session, name="pets", classes=["cat", "dog"])
    with engine.connect() as holder:
        holder.execute(text("LOCK TABLE project IN ACCESS EXCLUSIVE MODE"))  # held until this block ends
        started = time.monotonic()
        with pytest.raises(DatabaseBusyError, match=re.escape(BUSY_MESSAGE)), store.session_scope(engine) as session:
            store.create_project(session, name="birds", classes=["a", "b"])
        assert time.monotonic() - started < 5.0
        holder.rollback()
    with store.session_scope(engine) as session:
        assert [p.name for p in store.list_projects(session)] == ["pets"]  # nothing was saved
