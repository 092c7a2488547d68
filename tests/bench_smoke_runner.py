"""The benchmarks' smoke runs, started in the background when the test session starts.

Each ``bench/run.py --quick --only NAME`` is a chain of processes that mostly wait
for one core (seconds of SDK and MLflow imports). Run one after another in a thread
from the start of the session, they use the core the in-process tests leave idle,
instead of adding a minute at the end; ``tests/test_bench_smoke.py`` collects them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("plan", "up", "tracing", "monitor", "workload", "eval")
TIMEOUT = 300


@dataclass
class SmokeRun:
    """One benchmark's quick run: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


_results: dict[str, SmokeRun] = {}
_done: dict[str, threading.Event] = {name: threading.Event() for name in BENCHMARKS}
_started = threading.Lock()
_thread: threading.Thread | None = None
_current: subprocess.Popen[str] | None = None
_current_lock = threading.Lock()
_stopping = threading.Event()


def _run_one(name: str) -> SmokeRun:
    global _current
    with _current_lock:  # a stop() meanwhile either comes first or sees this process
        if _stopping.is_set():
            return SmokeRun(-1, "", "the session ended first")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", name],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # stop() ends the benchmark's own children with it
        )
        _current = process
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill(process)
        stdout, _ = process.communicate(timeout=60)
        return SmokeRun(-1, stdout, f"timed out after {TIMEOUT} s")
    finally:
        _current = None
    return SmokeRun(process.returncode, stdout, stderr)


def _kill(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _run_all(names: tuple[str, ...]) -> None:
    for name in names:
        if _stopping.is_set():
            break
        try:
            _results[name] = _run_one(name)
        except BaseException as err:  # reported by the test that waits for it
            _results[name] = SmokeRun(-1, "", f"{type(err).__name__}: {err}")
        finally:
            _done[name].set()


def start(names: tuple[str, ...] = BENCHMARKS) -> None:
    """Start the quick runs of ``names`` one after another in a daemon thread (once)."""
    global _thread
    with _started:
        if _thread is None:
            _thread = threading.Thread(target=_run_all, args=(names,), daemon=True)
            _thread.start()


def stop() -> None:
    """End the runs still going (the session ended without waiting for them)."""
    with _current_lock:
        _stopping.set()
        process = _current
    if process is not None and process.poll() is None:
        _kill(process)
    if _thread is not None:
        _thread.join(timeout=10)


def result(name: str) -> SmokeRun:
    """Wait for one benchmark's quick run (starting the runs if nobody did yet)."""
    start()
    if not _done[name].wait(timeout=TIMEOUT * len(BENCHMARKS)):
        raise TimeoutError(f"the {name} benchmark's smoke run did not finish")
    return _results[name]
