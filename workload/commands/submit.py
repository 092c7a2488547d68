"""``python -m workload submit``: run one of the lab's jobs, follow it, show its result.

``pulumi up`` creates three jobs (``llmops_infra/stack/lab_jobs.py``), on the lab's
cluster or on serverless compute (``llmops:compute serverless``, the
``databricks_compute`` output): the same Jobs API follows both, states and all (a
serverless run queues for seconds rather than waiting minutes for a cluster, and may
retry its task: the output shown is the last attempt's):
``chat`` runs ``workload chat``, ``monitor`` runs ``workload monitor --fail-on-drift``,
``eval`` runs ``workload eval`` on the shipped prompt set.
This command starts one through the Databricks SDK for Python, reports each
state change on stderr while it runs, and prints the task's output and the
run's page URL. Authentication is the SDK's own: ``az login`` (Azure CLI) or
``DATABRICKS_*`` variables; the workspace's host comes from the stack outputs.

The exit statuses are in the command's help (``_DESCRIPTION``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from workload import contract
from workload.commands.arguments import bounded
from workload.config.context import add_source_arguments, resolve_context
from workload.config.reachability import check_workspace
from workload.errors import ServiceError, SettingsError, first_line

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import Run

__all__ = ["JOBS", "JobName", "JobRun", "add_parser", "follow_run", "job_id_for", "run"]

JobName = Literal["chat", "monitor", "eval"]

#: Each job this command can start, and the stack output that holds its id.
JOBS: Final[Mapping[str, str]] = {
    "chat": contract.DATABRICKS_CHAT_JOB_ID,
    "monitor": contract.DATABRICKS_MONITOR_JOB_ID,
    "eval": contract.DATABRICKS_EVAL_JOB_ID,
}

_DESCRIPTION = """\
Start one of the stack's Databricks jobs (on the lab's cluster, or on
serverless compute with llmops:compute serverless), follow it, print its
output and the run's page. Authentication is the Databricks SDK's own:
`az login` or DATABRICKS_* variables; the workspace comes from the outputs.

Exit status: 0 the run succeeded, 1 the run failed or was still running at
--timeout (it goes on in the workspace), or the workspace could not be
reached or refused (401, 403, a job that does not exist there), 2 bad
settings: an unknown job name, missing outputs or no Databricks
authentication (one line, nothing sent).
"""

#: Life-cycle states after which a run changes no more.
_FINAL_STATES: Final = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
_POLL_SECONDS: Final = 5.0


@dataclass(frozen=True)
class JobRun:
    """How a run ended, as the Jobs API reports it."""

    run_id: int
    url: str
    """The run's page in the workspace."""
    life_cycle_state: str
    result_state: str | None
    """``SUCCESS``, ``FAILED``, ``TIMEDOUT``, ``CANCELED`` ...; None when it never ran."""
    message: str
    """The service's words on the final state (empty when it has none)."""
    logs: str
    """What the task printed (the chat's reply, the monitor's report)."""
    error: str
    """The task's error, when it failed."""

    @property
    def succeeded(self) -> bool:
        """Whether the run ended with ``SUCCESS``."""
        return self.result_state == "SUCCESS"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the sub-command."""
    parser = subparsers.add_parser(
        "submit",
        help="run the chat, monitor or eval job (on the cluster or serverless) and wait for it",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser, experiment=False)
    parser.add_argument(
        "--job",
        default="chat",
        metavar="{" + ",".join(JOBS) + "}",
        help="which job to run (default: chat)",
    )
    parser.add_argument(
        "--timeout",
        type=bounded(float, lambda m: m > 0, "a number of minutes above 0, e.g. 60"),
        default=60.0,
        metavar="MINUTES",
        help="stop waiting after this long; the run goes on (default: 60)",
    )
    parser.set_defaults(run=run)


def job_id_for(job: str, outputs: Mapping[str, Any]) -> int:
    """The id of the named job in the stack outputs, or a :class:`SettingsError` saying why not."""
    if job not in JOBS:
        raise SettingsError(f"unknown job {job!r}: choose one of {', '.join(JOBS)}")
    name = JOBS[job]
    value = outputs.get(name)
    if value in (None, ""):
        raise SettingsError(
            f"the stack outputs have no {name}: run `pulumi up` to create the lab's jobs"
        )
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} = {value!r} is not a job id (a whole number)") from None


def follow_run(
    client: WorkspaceClient,
    job_id: int,
    *,
    on_change: Callable[[Run], None],
    timeout_seconds: float,
    poll_seconds: float = _POLL_SECONDS,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> JobRun:
    """Start the job, call ``on_change`` at each new state, and return how the run ended.

    Polls ``jobs.get_run`` itself instead of the SDK's waiter, which reports
    nothing on the final state and gives up after twenty minutes. ``sleep`` and
    ``clock`` default to :func:`time.sleep` and :func:`time.monotonic`.
    """
    from databricks.sdk.errors.base import DatabricksError

    sleep = sleep or time.sleep
    clock = clock or time.monotonic

    started = client.jobs.run_now(job_id=job_id)
    run_id = started.response.run_id if started.response is not None else None
    if run_id is None:
        raise ServiceError(f"job {job_id} did not start a run")

    deadline = clock() + timeout_seconds
    seen: tuple[str, str] | None = None
    while True:
        current = client.jobs.get_run(run_id)
        state = _life_cycle(current)
        message = (current.state.state_message if current.state else None) or ""
        if (state, message) != seen:
            seen = (state, message)
            on_change(current)
        if state in _FINAL_STATES:
            break
        if clock() >= deadline:
            raise ServiceError(
                f"run {run_id} is still {state} after {timeout_seconds / 60:g} minutes; "
                f"it goes on in the workspace: {current.run_page_url or ''}"
            )
        sleep(poll_seconds)

    # A job run's output is its task's; this job has one task, which a serverless run may
    # have retried: each attempt is listed, and the last one is the result.
    attempts = [task for task in current.tasks or [] if task.run_id]
    last = max(attempts, key=lambda task: task.attempt_number or 0, default=None)
    task_run_id = last.run_id if last is not None and last.run_id else run_id
    try:
        output = client.jobs.get_run_output(task_run_id)
        logs, error = output.logs or "", output.error or ""
    except DatabricksError as err:
        logs, error = "", f"(no output: {err})"
    result = current.state.result_state if current.state else None
    return JobRun(
        run_id=run_id,
        url=current.run_page_url or "",
        life_cycle_state=state,
        result_state=result.value if result is not None else None,
        message=message,
        logs=logs,
        error=error,
    )


def run(args: argparse.Namespace) -> int:
    """Run the sub-command."""
    job = cast(str, args.job)
    if job not in JOBS:  # before reading any outputs: nothing to look up for a typo
        job_id_for(job, {})
    # The stack as every command resolves it; the jobs need one (their ids, the workspace).
    outputs = resolve_context(args, model=False, require_outputs=True).outputs
    job_id = job_id_for(job, outputs)
    host = outputs.get(contract.DATABRICKS_WORKSPACE_URL)
    if not host:
        raise SettingsError(
            f"the stack outputs have no {contract.DATABRICKS_WORKSPACE_URL}: run `pulumi up` first"
        )
    # The SDK would retry an unreachable workspace for minutes; one line in seconds instead.
    check_workspace(str(host))
    client = _client(str(host))

    from databricks.sdk.errors.base import DatabricksError
    from databricks.sdk.errors.platform import NotFound, PermissionDenied, Unauthenticated

    shown_url = False

    def progress(current: Run) -> None:
        nonlocal shown_url
        if not shown_url and current.run_page_url:
            # At once, so the run can be watched in the workspace while it goes on.
            print(f"run {current.run_id}: {current.run_page_url}", file=sys.stderr)
            shown_url = True
        message = current.state.state_message if current.state else None
        detail = f": {message}" if message else ""
        print(f"run {current.run_id} {_life_cycle(current)}{detail}", file=sys.stderr)

    print(f"starting job {job} ({job_id}) in {host}", file=sys.stderr)
    try:
        result = follow_run(
            client, job_id, on_change=progress, timeout_seconds=float(args.timeout) * 60
        )
    # The service's refusals (401/403/404) exit 1 at once (docs/reference.md).
    except (Unauthenticated, PermissionDenied) as err:
        raise ServiceError(f"{host} refused the credentials: {first_line(err)}") from None
    except NotFound as err:
        raise ServiceError(
            f"job {job_id} ({job}) does not exist in {host}: run `pulumi up` ({first_line(err)})"
        ) from None
    except DatabricksError as err:
        if _no_such_job(err):
            raise ServiceError(
                f"job {job_id} ({job}) does not exist in {host}: run `pulumi up`"
            ) from None
        raise ServiceError(f"Databricks refused to run job {job_id}: {first_line(err)}") from None

    if result.logs.strip():
        print(result.logs.rstrip())
    print(f"run {result.run_id} {result.result_state or result.life_cycle_state}: {result.url}")
    if result.succeeded:
        return 0
    reason = result.error or result.message or "no message"
    raise ServiceError(
        f"run {result.run_id} of job {job} ended {result.result_state or result.life_cycle_state}: "
        f"{first_line(reason)} ({result.url})"
    )


def _client(host: str) -> WorkspaceClient:
    """A client for the workspace, authenticated as the SDK finds (Azure CLI, DATABRICKS_*)."""
    from databricks.sdk import WorkspaceClient

    try:
        return WorkspaceClient(host=host)
    except ValueError as err:
        raise SettingsError(
            f"no Databricks authentication for {host}: sign in with `az login` or set "
            f"DATABRICKS_TOKEN (or another DATABRICKS_* method) ({first_line(err)})"
        ) from None


def _life_cycle(current: Run) -> str:
    state = current.state.life_cycle_state if current.state else None
    return state.value if state is not None else "UNKNOWN"


def _no_such_job(err: Exception) -> bool:
    """The Jobs API answers an unknown job id with 400 INVALID_PARAMETER_VALUE."""
    return "does not exist" in str(err).lower()
