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
from pathlib import Path

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
    out, _ = demo.communicate(timeout=240)
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

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("llmops-lab")
    assert experiment is not None
    traces = client.search_traces(locations=[experiment.experiment_id], max_results=100)
    assert len(traces) == 1 + 9, "a chat call and nine eval rows, each one trace"
    runs = client.search_runs([experiment.experiment_id])
    evals = [r for r in runs if r.info.run_name == "workload-eval"]
    assert len(evals) == 1
    judged = [
        a
        for t in traces
        if t.info.request_metadata.get("mlflow.sourceRun") == evals[0].info.run_id
        for a in t.info.assessments
        if isinstance(a, Feedback) and a.source.source_type == AssessmentSourceType.LLM_JUDGE
    ]
    assert len(judged) == 9, "each eval row carries its judge's verdict"
    verdicts = {a.value for a in judged}
    assert verdicts == {"yes", "no"}, "the canned judge refuses the joke about dogs"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc")
def test_interrupted_demo_leaves_no_process(tmp_path: Path) -> None:
    demo = _start(tmp_path)
    assert demo.stdout is not None
    # Its first command (chat) has started once the demo's group has a second process; the
    # deadline only bounds the wait (a busy machine takes a while to import the demo).
    deadline = time.monotonic() + 300
    while len(_group_members(demo.pid)) < 2 and demo.poll() is None:
        assert time.monotonic() < deadline, "the demo started no command in 300 s"
        time.sleep(0.05)
    assert len(_group_members(demo.pid)) >= 2, "the demo and its command"
    demo.send_signal(signal.SIGINT)  # the demo alone, not its command: it must end it
    assert demo.wait(timeout=60) != 0
    demo.stdout.close()
    assert _group_members(demo.pid) == [], "the interrupted demo ended its command too"


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
