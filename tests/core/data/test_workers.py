"""Worker processes of the demo generator: results in task order, failures told, nothing of the caller re-run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from core.data.workers import WorkerError, run_in_workers

ROOT = Path(__file__).resolve().parents[3]


def test_results_come_back_in_task_order() -> None:
    tasks = [(float(n * n),) for n in range(9)]
    assert list(run_in_workers(math.sqrt, tasks, 2)) == [float(n) for n in range(9)]


def test_a_failing_task_raises_with_the_workers_traceback() -> None:
    with pytest.raises(ValueError, match="math domain error") as info:
        list(run_in_workers(math.sqrt, [(4.0,), (-1.0,), (9.0,)], 2))
    assert isinstance(info.value.__cause__, WorkerError)  # the worker's traceback comes along
    assert "in a worker process" in str(info.value.__cause__)


def test_a_worker_that_dies_is_a_worker_error() -> None:
    with pytest.raises(WorkerError, match="exit 3"):
        list(run_in_workers(sys.exit, [(0,), (3,)], 2))


def test_a_script_without_a_main_guard_generates_in_parallel(tmp_path: Path) -> None:
    """A user's script calling the generator at top level (no `if __name__ == "__main__"`): a spawned pool would
    re-run the script in every worker; these workers import only the drawing module."""
    script = tmp_path / "make_demo.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from core.data import SyntheticConfig, generate_demo_dataset, load_manifest\n"
        f"print('RUN', flush=True)\n"
        f"generate_demo_dataset({str(tmp_path / 'demo')!r}, SyntheticConfig(train_size=200, val_size=20, "
        "test_size=20), workers=2)\n"
        f"print(json.dumps(len(load_manifest({str(tmp_path / 'demo')!r})['images'])))\n",
        encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.split()
    assert lines.count("RUN") == 1  # the script ran once: no worker re-ran it
    assert json.loads(lines[-1]) == 240
