"""The forked runs of the offline engine: a stuck child is ended and forked once more."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from llmops_infra.offline import engine


def test_a_stuck_child_is_ended_and_the_run_forked_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The first child never answers; the second answers at once (a busy machine's program
    run could outlast the short limit set here, so it stands in for one)."""
    marker = tmp_path / "stuck-child"
    answer = engine.ProgramRun(stack="second-fork", preview=False, config={"a": "b"})

    def stuck_once(conn: Any, config: Any, kwargs: Any) -> None:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            conn.send(("ok", answer))
            conn.close()
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(60)  # as a child whose lock never comes; the parent ends it
        marker.write_text("waited out")

    monkeypatch.setattr(engine, "_child", stuck_once)
    monkeypatch.setattr(engine, "_CHILD_SECONDS", 4.0)
    run = engine.run_program_isolated({})
    assert run == answer, "the run is the second child's"
    stuck = marker.read_text()
    assert stuck.isdigit(), "the stuck child was ended, not waited out"
    with pytest.raises(ProcessLookupError):
        os.kill(int(stuck), 0)  # and it is gone


def test_a_child_stuck_twice_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_child", lambda *_: time.sleep(60))
    monkeypatch.setattr(engine, "_CHILD_SECONDS", 0.5)
    with pytest.raises(RuntimeError, match="stuck twice"):
        engine.run_program_isolated({})


def test_a_slow_child_that_keeps_working_is_not_taken_for_stuck(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A run on a busy machine takes longer than the limit and uses CPU all along: it is
    waited for, not ended (a limit on the wall time failed such runs twice in a row)."""
    forks = tmp_path / "forks"
    answer = engine.ProgramRun(stack="slow", preview=False, config={})

    def slow(conn: Any, config: Any, kwargs: Any) -> None:
        with forks.open("a") as log:
            log.write("fork\n")
        while time.process_time() < 1.5:  # three limits' worth of work
            pass
        conn.send(("ok", answer))
        conn.close()

    monkeypatch.setattr(engine, "_child", slow)
    monkeypatch.setattr(engine, "_CHILD_SECONDS", 0.5)
    assert engine.run_program_isolated({}) == answer
    assert forks.read_text() == "fork\n", "forked once: the working child was not ended"


_IN_PROCESS_THEN_FORKED = """
import threading
from llmops_infra.offline import engine
engine.preload_program()
first = engine.run_program({})
assert threading.active_count() == 1, [t.name for t in threading.enumerate()]
second = engine.run_program_isolated({})
assert sorted(r.type for r in second.resources) == sorted(r.type for r in first.resources)
assert "openai_api_key" in first.exports
keyless = engine.run_program_isolated({"authMode": "entra"})
assert "openai_api_key" not in keyless.exports, sorted(keyless.exports)
print("forked run answered")
"""


def test_a_fork_after_a_run_in_this_process_does_not_inherit_its_idle_thread_pool() -> None:
    """Seen in CI: a run in the xdist worker itself left its event loop's thread pool waiting
    idle, and every later forked run waited forever on its first invoke (the pool, copied
    without its threads, started none). A run now leaves no thread behind, and the fork
    after it answers. And each run's stack is its own: a forked keyless run after an
    in-process run with a key exports no key (the root stack resource, left over, kept the
    first run's outputs). In a process of its own: the mock runtime is process-global."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    done = subprocess.run(
        [sys.executable, "-c", _IN_PROCESS_THEN_FORKED],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # only a bound: a stuck fork fails by itself after two 30 s waits
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "forked run answered" in done.stdout
