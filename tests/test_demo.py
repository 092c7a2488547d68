"""``python -m llmops_infra demo`` (``python3 tasks.py demo``): the whole loop without Azure.

The demo runs as a user starts it, a process in its own session, so every process it
starts can be found afterwards by its process group; its MLflow store is read back
with MLflow's own client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmops_infra.demo import LABEL

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DEMO = [sys.executable, "-m", "llmops_infra", "demo"]


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (Linux's /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _start(folder: Path) -> subprocess.Popen[str]:
    """The demo, its stderr into a file: a pipe would wait for every process that holds it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZURE_"))}
    # A key of the user's own must not reach the fake: the demo drops it.
    env["AZURE_OPENAI_API_KEY"] = "a-real-looking-key-of-the-user"
    with (folder / "stderr.txt").open("w") as stderr:
        return subprocess.Popen(
            # One chat process, not four (each pays MLflow's start-up): the suite stays quick.
            [*DEMO, "--dir", str(folder), "--chats", "1", "--rows", "9"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc")
def test_demo_leaves_traces_judged_eval_and_plot_and_no_process(tmp_path: Path) -> None:
    demo = _start(tmp_path)
    out, _ = demo.communicate(timeout=420)
    err = (tmp_path / "stderr.txt").read_text()
    assert demo.returncode == 0, err[-3000:]
    assert _group_members(demo.pid) == [], "every process the demo started is gone"

    assert out.startswith(LABEL), "the fake is named first, before anything it answered"
    assert f"{LABEL} replied:" in out
    assert f"ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}" in out
    assert "a-real-looking-key" not in out + err
    assert "Run ID: " in err, "MLflow's evaluation summary reaches stderr"
    assert "\x1b[" not in err, "without a terminal's colour codes: stderr is a file here"

    plot = tmp_path / "drift.png"
    assert plot.read_bytes().startswith(b"\x89PNG"), "monitor --plot drew the comparison"

    from mlflow import MlflowClient
    from mlflow.entities import AssessmentSourceType, Feedback

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("llmops-lab")
    assert experiment is not None
    traces = client.search_traces(locations=[experiment.experiment_id], max_results=100)
    assert len(traces) == 1 + 9 + 9, "a chat call and two evals of nine rows, each one trace"
    runs = client.search_runs([experiment.experiment_id])
    evals = {
        r.data.tags["llmops.prompt_version"]: r.info.run_id
        for r in runs
        if r.info.run_name == "workload-eval"
    }
    assert set(evals) == {"lab_chat/1", "lab_chat/2"}, "production's eval and the candidate's"

    def verdicts(run_id: str) -> list[str]:
        return [
            a.value
            for t in traces
            if t.info.request_metadata.get("mlflow.sourceRun") == run_id
            for a in t.info.assessments
            if isinstance(a, Feedback) and a.source.source_type == AssessmentSourceType.LLM_JUDGE
        ]

    first = verdicts(evals["lab_chat/1"])
    assert len(first) == 9, "each eval row carries its judge's verdict"
    assert set(first) == {"yes", "no"}, "the canned judge refuses the joke about dogs"
    assert verdicts(evals["lab_chat/2"]).count("no") > first.count("no"), "version 2 is worse"

    assert "refused: production stays at version 1 (not 2)" in out, "promote said no"
    assert "expectations_guidelines regressed" in out, "and why"
    production = client.get_prompt_version_by_alias("lab_chat", "production")
    assert int(production.version) == 1, "production did not move"
    assert "the windows ran different prompt versions" in out, "the monitor says so"


def _command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""  # gone meanwhile


def _wait_for_command(pgid: int, words: str, timeout: float = 180.0) -> None:
    """Until a process of group ``pgid`` runs ``words`` (bounded: fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(words in _command_line(pid) for pid in _group_members(pgid)):
            return
        if not _group_members(pgid):
            pytest.fail(f"the demo ended before `{words}` started")
        time.sleep(0.1)
    pytest.fail(f"`{words}` did not start within {timeout:.0f} s")


def _start_in_background(folder: Path, command: list[str]) -> subprocess.Popen[bytes]:
    """``command`` in its own session (its group found afterwards), its output into files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZURE_"))}
    with (folder / "stdout.txt").open("wb") as out, (folder / "stderr.txt").open("wb") as err:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
            # As from a terminal: a test run started in the background (no job control)
            # ignores SIGINT, and a child inherits that, so Ctrl-C would never reach it.
            preexec_fn=_sigint_as_in_a_terminal,
        )


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Python then installs KeyboardInterrupt


def _signalled(started: subprocess.Popen[bytes], sent: signal.Signals) -> int:
    """Once the first command runs, ``sent`` to ``started`` alone (not to its group, as
    ``kill PID`` and a CI's cancel send it): its exit status, once it and every process it
    started have ended."""
    try:
        _wait_for_command(started.pid, "-m workload prompt push")
        started.send_signal(sent)
        code = started.wait(timeout=120)
        left = [_command_line(pid) for pid in _group_members(started.pid)]
        assert left == [], f"every process it started has ended: {left}"
        return code
    finally:
        if _group_members(started.pid):
            os.killpg(started.pid, signal.SIGKILL)
        started.wait(timeout=60)


_DEMO_ARGS = ["--chats", "1", "--rows", "9"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc")
@pytest.mark.parametrize(
    ("sent", "status", "said"),
    [
        (signal.SIGINT, 130, "interrupted"),  # Ctrl-C
        (signal.SIGTERM, 143, "terminated: the demo and its commands have ended"),
    ],
)
def test_a_demo_interrupted_or_terminated_ends_its_command(
    tmp_path: Path, sent: signal.Signals, status: int, said: str
) -> None:
    demo = _start_in_background(tmp_path, [*DEMO, "--dir", str(tmp_path), *_DEMO_ARGS])
    assert _signalled(demo, sent) == status
    assert (tmp_path / "stderr.txt").read_text().splitlines()[-1] == said


#: ``python3 tasks.py ARGS`` with its install left out: this test's environment is installed.
_TASKS = [
    sys.executable,
    "-c",
    "import sys, tasks; tasks._install = lambda requirements: None; "
    "sys.exit(tasks.main(sys.argv[1:]))",
]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc")
def test_a_terminated_tasks_py_demo_ends_the_demo_and_its_command(tmp_path: Path) -> None:
    tasks = _start_in_background(tmp_path, [*_TASKS, "demo", "--dir", str(tmp_path), *_DEMO_ARGS])
    assert _signalled(tasks, signal.SIGTERM) == 143, "the demo's status: it ended on SIGTERM"


def test_too_few_traces_for_the_monitor_is_refused_before_anything_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [*DEMO, "--dir", str(tmp_path), "--chats", "1", "--rows", "6"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(
        "--chats 1 and --rows 6 make 7 traces; the monitor compares two windows of at least "
        "5: make them 10 or more"
    )
    assert list(tmp_path.iterdir()) == [], "nothing started, nothing written"


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C as in a terminal, even when the test run was started in the background (no
    job control: SIGINT ignored, so Python installed no KeyboardInterrupt handler)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc")
@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_while_a_command_is_being_started_still_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C can arrive while ``subprocess.Popen`` has forked the command but not returned it
    (seen: the interrupted demo left `workload prompt push` running). The real Popen starts
    the command; the signal is sent to this process the moment it has."""
    from llmops_infra import demo

    started: list[subprocess.Popen[str]] = []

    class InterruptedWhileStarting(subprocess.Popen[str]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)
            os.kill(os.getpid(), signal.SIGINT)  # still inside Popen(): Ctrl-C now
            time.sleep(1)  # the handler runs here, as it would in Popen's own code

    monkeypatch.setattr(demo.subprocess, "Popen", InterruptedWhileStarting)
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(KeyboardInterrupt), demo._child(command, tmp_path, dict(os.environ)):
        pytest.fail("the interruption comes before the command's output is read")
    (child,) = started
    try:
        assert child.poll() is not None, "the command was ended on the way out"
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
