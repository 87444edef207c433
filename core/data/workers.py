"""Run a function over chunks of work in fresh worker interpreters (the demo generator's parallel drawing).

Why not `multiprocessing`: a *forked* worker inherits the locks of the caller's other threads (OpenCV's and
torch's thread pools, the server's threads) but not the threads that would release them, and can hang for
good (CI hung once in the demo generator); a *spawned* one re-imports the caller's main script, which breaks
(or re-runs) any script that calls the generator outside an ``if __name__ == "__main__"`` guard. Here each
worker is ``python -c`` importing only the module of the function (``core.data`` resolves its names lazily,
so a drawing worker imports numpy and OpenCV, not torch): nothing of the caller is inherited or re-run.

Protocol: the parent pickles ``(function module, function name, [(task index, args), ...])`` to the worker's
stdin; the worker answers one pickled ``(task index, result)`` per task on stdout, in task order, and exits 0;
an exception in the function is pickled back and raised in the parent as the caller would have seen it (the
worker's traceback chained as :class:`WorkerError`); a worker that dies otherwise is a :class:`WorkerError`
with the end of its stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from queue import Queue
from typing import Any

__all__ = ["WorkerError", "run_in_workers"]

ROOT = Path(__file__).resolve().parents[2]  # the repository root: what `import core…` needs on sys.path
_WORKER = "from core.data.workers import _serve; _serve()"
_DONE = object()
_FAILED = -1  # the task index of a failure report


class WorkerError(RuntimeError):
    """A worker process failed; the message carries the end of its stderr (its traceback)."""


def _serve() -> None:
    """The worker's main: read the tasks, answer each, one pickle per task.

    The answers go to the original stdout; file descriptor 1 is pointed at stderr first, so a stray print of
    the function or of a C library cannot corrupt the stream of pickles.
    """
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    module, name, tasks = pickle.load(sys.stdin.buffer)
    function = getattr(importlib.import_module(module), name)
    for index, args in tasks:
        try:
            answer = pickle.dumps((index, function(*args)))
        except Exception as exc:  # sent to the parent, which raises it as the caller would have seen it
            trace = traceback.format_exc()
            try:
                answer = pickle.dumps((_FAILED, (exc, trace)))
            except Exception:  # an exception that does not pickle: its text
                answer = pickle.dumps((_FAILED, (WorkerError(trace), trace)))
            out.write(answer)
            out.flush()
            sys.exit(1)
        out.write(answer)
        out.flush()


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("OMP_NUM_THREADS", "1")  # the workers are the parallelism: no thread pools inside them
    return env


def _read(proc: subprocess.Popen[bytes], results: Queue[Any]) -> None:
    """Put every `(index, result)` of `proc` on `results`, then `(_DONE, proc)`."""
    assert proc.stdout is not None
    try:
        while True:
            try:
                results.put(pickle.load(proc.stdout))
            except (EOFError, OSError, ValueError, pickle.UnpicklingError):  # the end, or the parent closed it
                break
    finally:
        results.put((_DONE, proc))


def run_in_workers(function: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], workers: int
                   ) -> Iterator[Any]:
    """``function(*task)`` for every task, computed by ``workers`` fresh interpreters; yields the results in
    task order as they become available (so the caller can report progress).

    ``function`` must be a module-level function of an importable module; tasks and results must pickle.
    Raises:
        WorkerError: a worker exited with an error (its traceback's end in the message); the others are killed.
    """
    shares = [share for share in (list(enumerate(tasks))[i::workers] for i in range(workers)) if share]
    # stderr goes to a file, not a pipe: a chatty worker never blocks on it
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in shares]
        procs: list[subprocess.Popen[bytes]] = []
        results: Queue[Any] = Queue()
        try:
            for share, log_file in zip(shares, logs):
                proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=log_file, env=_worker_env())
                procs.append(proc)
                threading.Thread(target=_read, args=(proc, results), daemon=True).start()
                assert proc.stdin is not None
                pickle.dump((function.__module__, function.__name__, share), proc.stdin)
                proc.stdin.close()
            ready: dict[int, Any] = {}
            following, running = 0, len(procs)
            while following < len(tasks):
                if running == 0:
                    raise WorkerError("the worker processes ended before every task was done")
                index, value = results.get()
                if index == _FAILED:
                    error, trace = value
                    raise error from WorkerError(f"in a worker process:\n{trace[-2000:]}")
                if index is _DONE:
                    running -= 1
                    if value.wait() != 0:
                        log_file = logs[procs.index(value)]
                        log_file.seek(0)
                        tail = log_file.read().decode(errors="replace")[-2000:]
                        raise WorkerError(f"a worker process failed (exit {value.returncode}):\n{tail}")
                    continue
                ready[index] = value
                while following in ready:
                    yield ready.pop(following)
                    following += 1
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
