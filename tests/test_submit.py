"""`python -m workload submit` with the Databricks SDK faked: what a user sees, its exit status."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from databricks.sdk.errors.platform import (
    InvalidParameterValue,
    PermissionDenied,
    Unauthenticated,
)
from databricks.sdk.mixins.jobs import JobsExt
from databricks.sdk.service._internal import Wait
from databricks.sdk.service.jobs import (
    Run,
    RunLifeCycleState,
    RunNowResponse,
    RunOutput,
    RunResultState,
    RunState,
    RunTask,
)
from pytest_mock import MockerFixture

from workload import contract
from workload.cli import main
from workload.commands.submit import follow_run
from workload.errors import ServiceError

HOST = "https://adb-1234567890123456.16.azuredatabricks.net"
CHAT_JOB = 101
MONITOR_JOB = 202
EVAL_JOB = 303
RUN_ID = 7001
TASK_RUN_ID = 7002
URL = f"{HOST}/?o=1234567890123456#job/{CHAT_JOB}/run/{RUN_ID}"
REPLY = "Why don't cats play poker in the savanna? Too many cheetahs."


def _run(life_cycle: str, message: str = "", result: str | None = None) -> Run:
    return Run(
        run_id=RUN_ID,
        run_page_url=URL,
        state=RunState(
            life_cycle_state=RunLifeCycleState(life_cycle),
            state_message=message,
            result_state=RunResultState(result) if result else None,
        ),
        tasks=[RunTask(task_key="chat", run_id=TASK_RUN_ID)],
    )


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """A stack's outputs, as `pulumi stack output --json --show-secrets` writes them."""
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                contract.RESOURCE_GROUP_NAME: "rg-llmops-dev-abc123",
                contract.REGION: "swedencentral",
                contract.OPENAI_ACCOUNT_NAME: "oai-llmops-dev-abc123",
                contract.OPENAI_ENDPOINT: "https://oai-llmops-dev-abc123.openai.azure.com/",
                contract.OPENAI_API_KEY: "0123456789abcdef0123456789abcdef",
                contract.OPENAI_API_VERSION: "2024-05-01-preview",
                contract.OPENAI_DEPLOYMENT: "gpt-4o",
                contract.DATABRICKS_WORKSPACE_URL: HOST,
                contract.DATABRICKS_WORKSPACE_RESOURCE_ID: "/subscriptions/0/resourceGroups/rg",
                contract.DATABRICKS_CLUSTER_ID: "0101-123456-lab",
                contract.MLFLOW_EXPERIMENT_PATH: "/Shared/llmops-lab",
                contract.DATABRICKS_SECRET_SCOPE: "llmops",
                contract.DATABRICKS_CHAT_JOB_ID: str(CHAT_JOB),
                contract.DATABRICKS_MONITOR_JOB_ID: str(MONITOR_JOB),
                contract.DATABRICKS_EVAL_JOB_ID: str(EVAL_JOB),
            }
        )
    )
    return path


@pytest.fixture(autouse=True)
def reachable_workspace(mocker: MockerFixture) -> None:
    """The made-up workspace host counts as reachable (tests/test_reachability.py probes)."""
    mocker.patch("workload.commands.submit.check_workspace", autospec=True)


@pytest.fixture
def sdk(mocker: MockerFixture) -> MagicMock:
    """The SDK's WorkspaceClient class, faked; its jobs API keeps the real signatures."""
    mocker.patch("time.sleep", autospec=True)  # polling waits for nothing here
    client_class = mocker.patch("databricks.sdk.WorkspaceClient", autospec=True)
    jobs = mocker.create_autospec(JobsExt, instance=True)
    client_class.return_value.jobs = jobs
    jobs.run_now.return_value = Wait(
        jobs.wait_get_run_job_terminated_or_skipped,
        response=RunNowResponse(run_id=RUN_ID, number_in_job=RUN_ID),
        run_id=RUN_ID,
    )
    return client_class


def _jobs(sdk: MagicMock) -> Any:
    return sdk.return_value.jobs


def _submit(outputs: Path, *extra: str) -> int:
    return main(["submit", "--outputs", str(outputs), *extra])


def test_success_follows_the_run_and_prints_its_output_and_page(
    sdk: MagicMock, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = _jobs(sdk)
    jobs.get_run.side_effect = [
        _run("PENDING", "Waiting for cluster"),
        _run("PENDING", "Waiting for cluster"),
        _run("RUNNING", "In run"),
        _run("TERMINATED", "", "SUCCESS"),
    ]
    jobs.get_run_output.return_value = RunOutput(logs=REPLY + "\n")

    assert _submit(outputs) == 0, "a successful run exits 0"

    sdk.assert_called_once_with(host=HOST)
    jobs.run_now.assert_called_once_with(job_id=CHAT_JOB)
    jobs.get_run_output.assert_called_once_with(TASK_RUN_ID)
    out, err = capsys.readouterr()
    assert REPLY in out, "the task's output (the chat's reply) is printed"
    assert out.rstrip().endswith(f"run {RUN_ID} SUCCESS: {URL}"), "then the result and the page"
    progress = [line for line in err.splitlines() if line.startswith(f"run {RUN_ID} ")]
    assert progress == [
        f"run {RUN_ID} PENDING: Waiting for cluster",
        f"run {RUN_ID} RUNNING: In run",
        f"run {RUN_ID} TERMINATED",
    ], "each state change once, on stderr"
    assert f"run {RUN_ID}: {URL}" in err, "the page is shown as soon as it is known"


def test_a_serverless_run_that_retried_shows_its_states_and_its_last_attempts_output(
    sdk: MagicMock, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = _jobs(sdk)
    retried = [
        RunTask(task_key="chat", run_id=TASK_RUN_ID, attempt_number=0),
        RunTask(task_key="chat", run_id=TASK_RUN_ID + 1, attempt_number=1),
    ]
    jobs.get_run.side_effect = [
        _run("QUEUED", "Waiting for serverless compute"),
        _run("RUNNING", "In run"),
        _run("WAITING_FOR_RETRY", "Task chat failed; retrying"),
        dataclasses.replace(_run("RUNNING", "In run"), tasks=retried),
        dataclasses.replace(_run("TERMINATED", "", "SUCCESS"), tasks=retried),
    ]
    jobs.get_run_output.return_value = RunOutput(logs=REPLY + "\n")

    assert _submit(outputs) == 0
    jobs.get_run_output.assert_called_once_with(TASK_RUN_ID + 1)
    err = capsys.readouterr().err
    progress = [line for line in err.splitlines() if line.startswith(f"run {RUN_ID} ")]
    assert progress == [
        f"run {RUN_ID} QUEUED: Waiting for serverless compute",
        f"run {RUN_ID} RUNNING: In run",
        f"run {RUN_ID} WAITING_FOR_RETRY: Task chat failed; retrying",
        f"run {RUN_ID} RUNNING: In run",
        f"run {RUN_ID} TERMINATED",
    ], "a serverless run's states, as a cluster's, each change once"


def test_monitor_job_is_started_by_its_own_id(sdk: MagicMock, outputs: Path) -> None:
    jobs = _jobs(sdk)
    jobs.get_run.return_value = _run("TERMINATED", "", "SUCCESS")
    jobs.get_run_output.return_value = RunOutput(logs="no drift")
    assert _submit(outputs, "--job", "monitor") == 0
    jobs.run_now.assert_called_once_with(job_id=MONITOR_JOB)


def test_eval_job_is_started_by_its_own_id(sdk: MagicMock, outputs: Path) -> None:
    jobs = _jobs(sdk)
    jobs.get_run.return_value = _run("TERMINATED", "", "SUCCESS")
    jobs.get_run_output.return_value = RunOutput(logs="expectations_guidelines  0.95  20")
    assert _submit(outputs, "--job", "eval") == 0
    jobs.run_now.assert_called_once_with(job_id=EVAL_JOB)


def test_failed_run_exits_1_with_the_tasks_error_and_page(
    sdk: MagicMock, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = _jobs(sdk)
    jobs.get_run.side_effect = [
        _run("RUNNING"),
        _run("TERMINATED", "Workload failed, see run output for details", "FAILED"),
    ]
    jobs.get_run_output.return_value = RunOutput(
        logs="error: the service refused the call: 401 Unauthorized\n",
        error="SystemExit: 1",
    )

    assert _submit(outputs) == 1, "a failed run exits 1"

    out, err = capsys.readouterr()
    assert f"run {RUN_ID} FAILED: {URL}" in out
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: run ") and "FAILED" in last and "SystemExit: 1" in last
    assert URL in last, "the message says where to look"
    assert "Traceback" not in err


def test_unknown_job_name_exits_2_in_one_line_before_any_request(
    sdk: MagicMock, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _submit(outputs, "--job", "train") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown job 'train'" in err and "chat, monitor, eval" in err
    sdk.assert_not_called()


def test_job_missing_from_the_workspace_exits_1(
    sdk: MagicMock, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _jobs(sdk).run_now.side_effect = InvalidParameterValue(f"Job {CHAT_JOB} does not exist.")
    assert _submit(outputs) == 1, "the workspace refused: the service's answer, exit 1"
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"error: job {CHAT_JOB} (chat) does not exist") and "pulumi up" in last


def test_stack_without_the_lab_jobs_exits_2(
    sdk: MagicMock, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(outputs.read_text())
    del data[contract.DATABRICKS_CHAT_JOB_ID]
    outputs.write_text(json.dumps(data))
    assert _submit(outputs) == 2
    err = capsys.readouterr().err
    assert contract.DATABRICKS_CHAT_JOB_ID in err and "pulumi up" in err
    sdk.assert_not_called()


def test_missing_authentication_exits_2_in_one_line(
    sdk: MagicMock, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sdk.side_effect = ValueError(
        "default auth: cannot configure default credentials, please check "
        "https://docs.databricks.com/en/dev-tools/auth.html to configure credentials.\n"
        "Config: host=" + HOST
    )
    assert _submit(outputs) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, f"one line: {err!r}"
    assert err.startswith(f"error: no Databricks authentication for {HOST}")
    assert "az login" in err and "DATABRICKS_TOKEN" in err, "says how to sign in"


@pytest.mark.parametrize("refusal", [Unauthenticated, PermissionDenied])
def test_refused_credentials_exit_1(
    sdk: MagicMock,
    outputs: Path,
    capsys: pytest.CaptureFixture[str],
    refusal: type[Exception],
) -> None:
    _jobs(sdk).run_now.side_effect = refusal("Invalid access token.")
    assert _submit(outputs) == 1, "401/403 at once: exit 1 (docs/reference.md)"
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == f"error: {HOST} refused the credentials: Invalid access token."


def test_waiting_stops_at_the_timeout_and_says_the_run_goes_on(sdk: MagicMock) -> None:
    jobs = _jobs(sdk)
    jobs.get_run.return_value = _run("PENDING", "Waiting for cluster")
    ticks = iter(range(0, 10_000, 60))
    with pytest.raises(ServiceError, match=r"still PENDING after 5 minutes.*goes on") as failure:
        follow_run(
            sdk.return_value,
            CHAT_JOB,
            on_change=lambda run: None,
            timeout_seconds=300,
            sleep=lambda seconds: None,
            clock=lambda: float(next(ticks)),
        )
    assert URL in str(failure.value)


def test_help_does_not_import_the_databricks_sdk() -> None:
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['workload', 'submit', '--help']\n"
        "try:\n    runpy.run_module('workload', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('databricks.sdk' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "--job {chat,monitor,eval}" in done.stdout and "--outputs FILE" in done.stdout
    statuses = done.stdout[done.stdout.index("Exit status:") :]
    assert all(f" {code} " in " ".join(statuses.split()) for code in (0, 1, 2)), (
        "the help lists each exit status, as the other commands' do"
    )
    assert done.stderr.strip() == "False", "--help stays quick: the SDK loads only to submit"


def test_stack_outputs_come_from_the_pulumi_cli(
    sdk: MagicMock, outputs: Path, mocker: MockerFixture
) -> None:
    pulumi = mocker.patch(
        "subprocess.run",
        autospec=True,
        return_value=subprocess.CompletedProcess([], 0, stdout=outputs.read_text(), stderr=""),
    )
    jobs = _jobs(sdk)
    jobs.get_run.return_value = _run("TERMINATED", "", "SUCCESS")
    jobs.get_run_output.return_value = RunOutput(logs=REPLY)
    assert main(["submit", "--stack", "dev"]) == 0
    command = pulumi.call_args.args[0]
    assert command[:4] == ["pulumi", "stack", "output", "--json"]
    assert command[-2:] == ["--stack", "dev"]
    sdk.assert_called_once_with(host=HOST)


@pytest.mark.parametrize("argv", [[], ["--outputs", "/nonexistent/outputs.json"]])
def test_missing_outputs_exit_2_in_one_line(
    sdk: MagicMock, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("--stack NAME" in err or "cannot read" in err)
    sdk.assert_not_called()


def test_a_timeout_of_no_minutes_is_refused_before_anything(
    sdk: MagicMock, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["submit", "--outputs", str(outputs), "--timeout", "-5"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "argument --timeout: must be a number of minutes above 0" in err
    sdk.assert_not_called()


def test_the_help_says_submit_runs_the_eval_job_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "submit" in line]
    assert "chat, monitor or eval job" in line
