"""`python -m workload monitor` on a real MLflow sqlite store of autolog-shaped traces.

The store (``monitor_store`` in conftest, built by ``tests/monitor_store.py``)
holds a drifting, a steady and an error-burst experiment and one with too few
traces. The drifting one is checked end to end, `python -m workload monitor` as
a process started before the first test (MLflow's start-up costs seconds);
the others through the same command line in this process, and reading and
paging with a client of the store handed in.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from monitor_store import EXPERIMENTS, HOUR_NS, START_NS
from pytest_mock import MockerFixture

from workload.cli import main
from workload.errors import InsufficientDataError, TrackingStoreError, WorkloadError
from workload.monitoring.drift import compare_windows
from workload.monitoring.traces import connect, load_windows, record_from_trace

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent.parent
HEAVY = ("mlflow", "scipy", "matplotlib", "openai")
GROWN = {"latency_ms", "completion_tokens", "total_tokens", "response_chars"}


@dataclass
class Run:
    """One `python -m workload monitor` process and what it printed."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    code: int = -1
    stdout: str = ""
    stderr: str = ""

    def wait(self) -> Run:
        """Collect the process's exit status and output (once)."""
        if self.process is not None and self.code == -1:
            self.stdout, self.stderr = self.process.communicate(timeout=300)
            self.code = self.process.returncode
        return self

    def json(self) -> Any:
        return json.loads(self.wait().stdout)


def _env(uri: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(PROJECT), **extra})
    return env


@pytest.fixture(scope="module")
def uri(monitor_store: Path) -> str:
    return f"sqlite:///{monitor_store}"


@pytest.fixture(scope="module")
def plot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plot") / "drift.png"


@pytest.fixture(scope="module", autouse=True)
def runs(uri: str, plot: Path) -> Iterator[dict[str, Run]]:
    """The command as a process, started before the first test; a test waits for its result."""
    scenarios = {
        "drifting": Run(
            ["--experiment", "drifting", "--json", "--fail-on-drift", "--plot", str(plot)],
            _env(uri),
        ),
        "one": Run(["--experiment", "one", "--json"], _env(uri)),
    }
    for run in scenarios.values():
        run.process = subprocess.Popen(
            [sys.executable, "-m", "workload", "monitor", *run.args],
            cwd=plot.parent,
            env=run.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    yield scenarios
    for run in scenarios.values():
        run.wait()


@pytest.fixture
def tracking(uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """This process's MLflow pointed at the store the way the command's user does it."""
    import mlflow

    for name in [name for name in os.environ if name.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert mlflow.get_tracking_uri() == uri, (
        "MLFLOW_TRACKING_URI decides; a test that called mlflow.set_tracking_uri leaked it"
    )
    return uri


# In this process, while the commands run: a client of the store is handed in.


def test_only_the_two_windows_are_read(uri: str, mocker: MockerFixture) -> None:
    client = connect(uri)
    search = mocker.spy(client, "search_traces")
    windows = load_windows(client, "steady", baseline=5, recent=6, page_size=4)
    assert len(windows.baseline) == 5 and len(windows.recent) == 6
    read = sum(len(call) for call in search.spy_return_list)
    assert read == 11, "never more traces than the two windows hold"
    assert any(c.kwargs["page_token"] for c in search.call_args_list), "paged in fours"
    hours = [(r.timestamp_ms * 1_000_000 - START_NS) // HOUR_NS for r in windows.baseline]
    assert hours == [0, 1, 2, 3, 4], "the oldest traces, oldest first"
    hours = [(r.timestamp_ms * 1_000_000 - START_NS) // HOUR_NS for r in windows.recent]
    assert hours == [18, 19, 20, 21, 22, 23], "the newest traces, oldest first"


def test_default_windows_are_the_halves_read_page_by_page(uri: str) -> None:
    windows = load_windows(connect(uri), "errors", page_size=5)
    assert len(windows.baseline) == len(windows.recent) == 16
    assert windows.baseline[-1].timestamp_ms < windows.recent[0].timestamp_ms


def test_a_trace_becomes_the_numbers_autolog_recorded(uri: str) -> None:
    windows = load_windows(connect(uri), "drifting", baseline=5, recent=5)
    spec, record = EXPERIMENTS["drifting"][0], windows.baseline[0]
    assert record.latency_ms == spec.latency_ms, "the span's own start and end times"
    assert record.completion_tokens == spec.reply_words
    assert record.prompt_tokens is not None
    assert record.total_tokens == record.prompt_tokens + spec.reply_words
    reply = " ".join(["Why"] + ["elephant"] * (spec.reply_words - 1))
    assert record.response_chars == len(reply), "choices[0].message.content"
    assert record.error is False


def test_failed_calls_count_as_errors_with_their_numbers_missing(uri: str) -> None:
    windows = load_windows(connect(uri), "errors")
    failed = [r for r in windows.recent if r.error]
    assert len(failed) == 8
    for record in failed:
        assert record.latency_ms is None and record.response_chars is None
        assert record.prompt_tokens is None and record.completion_tokens is None, "not zero"


def test_a_burst_of_errors_is_drift_in_the_error_rate_only(uri: str) -> None:
    windows = load_windows(connect(uri), "errors")
    report = compare_windows(windows.baseline, windows.recent)
    assert report.drifted == ("error_rate",), "the successful calls look as before"
    rate = next(m for m in report.metrics if m.name == "error_rate")
    assert (rate.baseline, rate.recent) == (0.0, 0.5)
    assert rate.test == "fisher" and rate.p_value is not None and rate.p_value < 0.01
    latency = next(m for m in report.metrics if m.name == "latency_ms")
    assert latency.recent_count == 8, "failed calls have no latency"


def test_token_counts_fall_back_to_the_chat_span(uri: str) -> None:
    client = connect(uri)
    experiment = client.get_experiment_by_name("drifting")
    assert experiment is not None
    (trace,) = client.search_traces(locations=[experiment.experiment_id], max_results=1)
    assert "mlflow.trace.tokenUsage" in trace.info.trace_metadata
    metadata = {
        k: v for k, v in trace.info.trace_metadata.items() if k != "mlflow.trace.tokenUsage"
    }
    bare = type(trace)(replace(trace.info, trace_metadata=metadata), trace.data)
    assert bare.info.token_usage is None
    assert record_from_trace(bare) == record_from_trace(trace), "mlflow.chat.tokenUsage instead"


def test_an_unknown_experiment_is_a_store_error(uri: str) -> None:
    with pytest.raises(TrackingStoreError, match="no MLflow experiment named 'nope'"):
        load_windows(connect(uri), "nope")


def test_windows_that_would_overlap_are_refused(uri: str) -> None:
    with pytest.raises(InsufficientDataError, match=r"has 6 finished traces.*need 10"):
        load_windows(connect(uri), "few", baseline=5, recent=5)


def test_a_store_that_cannot_be_reached_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with pytest.raises(
        TrackingStoreError, match="cannot read traces from the MLflow tracking"
    ) as err:
        load_windows(connect(f"http://monitor:s3cret@127.0.0.1:{port}"), "llmops-lab")
    assert f"http://***@127.0.0.1:{port}" in str(err.value), "the store is named"
    assert "s3cret" not in str(err.value), "never the password in the store's URI"


# The command itself, as a user or a scheduled job runs it.


def _metrics(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {metric["name"]: metric for metric in document["metrics"]}


def test_longer_slower_replies_are_drift_and_fail_the_check(runs: dict[str, Run]) -> None:
    run = runs["drifting"].wait()
    assert run.code == 3, f"--fail-on-drift exits 3 on drift\n{run.stderr}"
    document = run.json()
    assert document["drift"] is True
    assert set(document["drifted"]) == GROWN, "the replies and the calls grew; the prompts did not"
    metrics = _metrics(document)
    assert metrics["prompt_tokens"]["drift"] is False
    assert metrics["error_rate"]["drift"] is False
    latency = metrics["latency_ms"]
    assert latency["p_value"] < 0.01 and latency["effect"] >= 0.2
    assert latency["recent"] > 3 * latency["baseline"], "about four times slower"


def test_json_has_the_documented_shape(runs: dict[str, Run]) -> None:
    document = runs["drifting"].json()
    assert isinstance(document["drift"], bool)
    assert [m["name"] for m in document["metrics"]] == [
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "response_chars",
        "error_rate",
    ]
    for metric in document["metrics"]:
        assert isinstance(metric["name"], str) and isinstance(metric["drift"], bool)
        assert {"baseline", "recent", "change", "statistic", "p_value", "effect"} <= set(metric)
    assert document["experiment"] == "drifting"
    assert document["baseline"]["traces"] == document["recent"]["traces"] == 12, "halves of 24"
    assert document["baseline"]["first_ms"] == START_NS // 1_000_000, "the oldest trace first"
    assert document["recent"]["last_ms"] == (START_NS + 23 * HOUR_NS) // 1_000_000
    assert (document["alpha"], document["min_effect"]) == (0.01, 0.2)


def test_the_plot_is_a_png_with_a_panel_per_metric(runs: dict[str, Run], plot: Path) -> None:
    assert runs["drifting"].wait().code == 3
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG signature"
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND", "a complete PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width > height > 300, "a landscape figure large enough for six panels"
    assert runs["drifting"].json()["plot"] == str(plot)


def test_a_steady_experiment_is_not_drift(
    tracking: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The experiment from the environment, as on the lab's cluster; the table for people.
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "steady")
    code = main(["monitor", "--fail-on-drift"])
    out = capsys.readouterr().out
    assert code == 0, "no drift: exit 0 even with --fail-on-drift"
    lines = out.splitlines()
    assert "experiment 'steady'" in lines[0], "the experiment came from MLFLOW_EXPERIMENT_NAME"
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == [
        "metric",
        "baseline",
        "recent",
        "change",
        "effect",
        "statistic",
        "p-value",
        "drift",
    ]
    rows = {line.split()[0]: line.split() for line in lines[lines.index(header) + 1 :] if line}
    assert list(rows)[:6] == [
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "response_chars",
        "error_rate",
    ]
    for name, row in list(rows.items())[:6]:
        assert row[-1] == "no", f"{name} did not drift"
    assert "no drift" in out


def test_too_few_traces_exit_2_with_one_line(
    tracking: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["monitor", "--experiment", "few", "--fail-on-drift"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: too few traces to compare in experiment 'few'"), line


def test_one_trace_says_how_many_it_found_and_how_many_it_needs(runs: dict[str, Run]) -> None:
    one = runs["one"].wait()
    assert (one.code, one.stdout) == (2, ""), one.stderr
    assert one.stderr.splitlines() == [
        "error: too few traces to compare in experiment 'one': it has 1 finished trace, and "
        "the windows need 10 (at least 5 in each; let the chat command record more traces first)"
    ], "what it found and what it needs, not 'baseline 0, recent 0'"


def test_help_imports_no_heavy_library() -> None:
    script = (
        "import contextlib, io, sys\n"
        "from workload.cli import main\n"
        "for argv in (['--help'], ['monitor', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "[]", f"--help stays quick: {done.stdout}{done.stderr}"


def test_help_says_how_the_decision_is_made(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["monitor", "--help"])
    text = capsys.readouterr().out
    for phrase in ("Kolmogorov-Smirnov", "Fisher", "--alpha", "--min-effect", "Wasserstein"):
        assert phrase in text, f"--help explains the decision: {phrase}"


def test_a_window_smaller_than_five_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["monitor", "--baseline", "2"])
    assert exited.value.code == 2
    assert "--baseline: must be a whole number of at least 5" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        ("PERMISSION_DENIED", 1),
        ("UNAUTHENTICATED", 1),
        ("TEMPORARILY_UNAVAILABLE", 1),
        ("RESOURCE_DOES_NOT_EXIST", 2),
        ("INVALID_PARAMETER_VALUE", 2),
    ],
)
def test_a_store_that_refuses_is_the_service_failing_and_a_bad_one_the_settings(
    mocker: MockerFixture, code: str, exit_code: int
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    client = mocker.create_autospec(MlflowClient, instance=True)
    client.tracking_uri = "databricks"
    client.get_experiment_by_name.side_effect = MlflowException(
        "no", error_code=getattr(databricks_pb2, code)
    )
    with pytest.raises(WorkloadError) as failure:
        load_windows(client, "llmops-lab", baseline=5, recent=5)
    assert failure.value.exit_code == exit_code, code


@pytest.mark.parametrize(
    ("name", "signature"),
    [("drift.jpg", b"\xff\xd8\xff"), ("drift.svg", b"<?xml"), ("drift.pdf", b"%PDF")],
)
def test_the_plot_is_written_in_the_format_its_suffix_names(
    tracking: str, tmp_path: Path, name: str, signature: bytes
) -> None:
    assert main(["monitor", "--experiment", "steady", "--plot", str(tmp_path / name)]) == 0
    assert (tmp_path / name).read_bytes().startswith(signature)


def test_a_plot_suffix_that_names_no_format_exits_2_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # never asked
    assert main(["monitor", "--plot", str(tmp_path / "drift.gif")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(
        "its suffix .gif names no format the plot is written in (.png, .jpg, .jpeg, .svg, .pdf)"
    ), line
    assert not (tmp_path / "drift.gif").exists()


def test_a_mistyped_sqlite_store_exits_2_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "mlfow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    assert main(["monitor"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: no MLflow store at {missing} "), line
    assert list(tmp_path.iterdir()) == [], "no empty store was made for the typo"
