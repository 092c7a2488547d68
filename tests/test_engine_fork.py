"""The forked runs of the offline engine: a stuck child is ended and forked once more."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from llmops_infra.offline import engine


@pytest.mark.usefixtures("run")  # the SDKs preloaded: a healthy child answers in a second
def test_a_stuck_child_is_ended_and_the_run_forked_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_child = engine._child
    marker = tmp_path / "first-child"

    def stuck_once(conn: Any, config: Any, kwargs: Any) -> None:
        if not marker.exists():
            marker.touch()
            time.sleep(60)  # as a child whose lock never comes; the parent ends it
        real_child(conn, config, kwargs)

    monkeypatch.setattr(engine, "_child", stuck_once)
    monkeypatch.setattr(engine, "_CHILD_SECONDS", 4.0)
    started = time.monotonic()
    run = engine.run_program_isolated({})
    assert marker.exists(), "the first child ran and was ended"
    assert time.monotonic() - started < 30, "not the stuck child's 60 s"
    assert run.exports["openai_auth_mode"].value == "key"


def test_a_child_stuck_twice_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_child", lambda *_: time.sleep(60))
    monkeypatch.setattr(engine, "_CHILD_SECONDS", 0.5)
    with pytest.raises(RuntimeError, match="stuck twice"):
        engine.run_program_isolated({})
