"""The monitor reads what `python -m workload chat` writes: the two commands agree on a trace.

The chat command runs a dozen times against the local fake Azure OpenAI, into a
copy of the monitor's store (its schema is already made). The fake answers the
first six calls at once with the usual joke and the last six after 0.3 s with a
story eight times as long, so the monitor must find drift in latency and in the
reply's length and tokens, and none in the prompt or the error rate; and each
trace's numbers, as the monitor reads them, must be the ones the chat command
printed for that call.

The calls share one process (``workload.cli.main`` in a loop, exactly what
``python -m workload chat`` runs) and the monitor runs in this one, through
the same ``main``, because MLflow's start-up costs seconds a process. The
chat command ends MLflow's background trace export once its call is done
(``flush_trace_async_logging(terminate=True)``, right for a process that makes
one call), so here traces are written synchronously
(``MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=false``) or every call after the first
would lose its trace.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_azure_openai import JOKE, FakeAzureOpenAI, Reply

from workload.cli import main
from workload.monitoring.traces import TraceRecord, connect, load_windows

PROJECT = Path(__file__).resolve().parent.parent
CALLS = 12
EXPERIMENT = "chat-agreement"
STORY = " ".join([JOKE] * 8)

_LOOP = f"""
import sys
from workload.cli import main
sys.exit(max(main(["chat", "--json", "--experiment", {EXPERIMENT!r}]) for _ in range({CALLS})))
"""


@dataclass(frozen=True)
class Agreement:
    """What the chat calls printed, and what the monitor made of their traces."""

    tracking_uri: str
    replies: list[dict[str, Any]]
    monitor: dict[str, Any]
    monitor_code: int
    records: dict[str, TraceRecord]


def _env(tracking_uri: str, fake: FakeAzureOpenAI) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "AZURE_OPENAI_", "OPENAI_"))
    }
    env.update(
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "AZURE_OPENAI_ENDPOINT": fake.endpoint,
            "AZURE_OPENAI_API_KEY": fake.api_key,
            "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
            "AZURE_OPENAI_DEPLOYMENT": fake.deployment,
            "PYTHONPATH": str(PROJECT),
        }
    )
    return env


def _monitor(tracking_uri: str) -> tuple[int, str]:
    """``python -m workload monitor --json`` in this process, on the store; status and output."""
    import mlflow

    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("MLFLOW_")]:
            patch.delenv(name)
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        assert mlflow.get_tracking_uri() == tracking_uri, "no test may set MLflow's URI for good"
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["monitor", "--experiment", EXPERIMENT, "--json"])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def agreement(monitor_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agreement]:
    db = tmp_path_factory.mktemp("agreement") / "mlflow.db"
    shutil.copyfile(monitor_store, db)
    tracking_uri = f"sqlite:///{db}"
    with FakeAzureOpenAI() as fake:
        half = CALLS // 2
        fake.reply_text = lambda messages: JOKE if len(fake.requests) <= half else STORY
        fake.script(*[Reply()] * half, *[Reply.slow(0.3)] * half)
        env = {**_env(tracking_uri, fake), "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false"}
        chat = subprocess.Popen(
            [sys.executable, "-c", _LOOP],
            cwd=db.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        import scipy.stats  # noqa: F401 (the monitor's imports load while the calls run)

        stdout, stderr = chat.communicate(timeout=600)
        assert chat.returncode == 0, f"every chat call succeeded\n{stderr}"
        assert len(fake.requests) == CALLS, "one request per call, none retried"
    code, report = _monitor(tracking_uri)
    windows = load_windows(connect(tracking_uri), EXPERIMENT)
    yield Agreement(
        tracking_uri=tracking_uri,
        replies=[json.loads(line) for line in stdout.splitlines()],
        monitor=json.loads(report),
        monitor_code=code,
        records={r.trace_id: r for r in (*windows.baseline, *windows.recent)},
    )


def test_every_call_left_a_trace_the_monitor_reads(agreement: Agreement) -> None:
    assert len(agreement.replies) == CALLS
    assert {reply["trace_id"] for reply in agreement.replies} == set(agreement.records), (
        "the monitor reads exactly the traces the chat command reported"
    )
    assert agreement.monitor["baseline"]["traces"] == agreement.monitor["recent"]["traces"] == 6


def test_each_trace_holds_the_numbers_the_chat_command_printed(agreement: Agreement) -> None:
    for reply in agreement.replies:
        record = agreement.records[reply["trace_id"]]
        assert record.error is False
        assert record.prompt_tokens == reply["prompt_tokens"]
        assert record.completion_tokens == reply["completion_tokens"]
        assert record.total_tokens == reply["total_tokens"]
        assert record.response_chars == len(reply["reply"]), "the reply the user saw"
        assert record.latency_ms is not None and record.latency_ms > 0


def test_longer_slower_answers_from_the_service_are_drift(agreement: Agreement) -> None:
    monitor = agreement.monitor
    assert agreement.monitor_code == 0, "drift, but no --fail-on-drift"
    assert set(monitor["drifted"]) == {
        "latency_ms",
        "completion_tokens",
        "total_tokens",
        "response_chars",
    }, "the same prompts, slower and longer answers"
    latency = next(m for m in monitor["metrics"] if m["name"] == "latency_ms")
    assert latency["recent"] >= 300, "the fake's 0.3 s delay is in the traced latency"
