"""The lab's workload as jobs: run, watch and evaluate without a notebook.

One component, created through the workspace's provider: the ``workload``
wheel uploaded as one workspace file, and three Python wheel tasks that
install it, on the lab's cluster or on serverless compute: a job that runs
``workload chat``, one that runs ``workload monitor --fail-on-drift`` on a
schedule (``llmops:monitorSchedule``, else paused), and one that runs
``workload eval`` on the prompt set shipped in the wheel.

The wheel sits in a folder named after its content's hash: a changed module
is a new path, which the jobs follow, so a running cluster (which keeps a
library it installed from one path until it restarts) installs the new wheel.
A workspace file rather than a Unity Catalog volume: workspace files work in
every workspace, and the cluster mode needs no Unity Catalog ("Python wheel
file: ... from workspace files, Unity Catalog volumes, cloud object storage",
Microsoft Learn, "Databricks Asset Bundles library dependencies", read 2026-12-05).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pulumi
import pulumi_databricks as databricks

from llmops_infra.stack.identity import formerly_under_databricks
from llmops_infra.stack.workload_wheel import WorkloadWheel
from workload import contract

__all__ = [
    "SERVERLESS_ENVIRONMENT_VERSION",
    "ClusterCompute",
    "LabJobs",
    "LabJobsArgs",
    "ServerlessCompute",
]

#: The serverless environment the jobs run in: version 5 (Python 3.12.3, released
#: 2026-02-25, supported until 2029-02-25), the newest in Microsoft Learn's "Serverless
#: environment versions" (read 2026-12-05).
SERVERLESS_ENVIRONMENT_VERSION: Final = "5"
#: The jobs' one environment (a task names it by this key).
_ENVIRONMENT_KEY: Final = "workload"

#: Daily at 06:00 UTC (Quartz syntax): the paused schedule of a stack without
#: ``llmops:monitorSchedule``.
_MONITOR_CRON: Final = "0 0 6 * * ?"
#: The time zone every schedule is read in. UTC, not a region's zone: the stack's region is
#: drawn at random (or is an existing workspace's), so a local zone would move the run with
#: the draw and with daylight saving time, and MLflow stamps the traces the monitor compares
#: in UTC, so the windows line up with the schedule.
_MONITOR_TIMEZONE: Final = "UTC"


def _source(path: Path) -> str:
    """The path the provider reads: relative to the project folder, where Pulumi starts it.

    Relative, so the same stack deployed from another checkout sends the same input.
    """
    try:
        return path.relative_to(contract.PROJECT_DIR).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class ClusterCompute:
    """The jobs run on the lab's cluster, which carries their settings in its environment."""

    cluster_id: pulumi.Input[str]
    """The lab's cluster."""


@dataclass(frozen=True)
class ServerlessCompute:
    """The jobs run on serverless compute: no cluster, settings given to each job."""

    settings: Mapping[str, pulumi.Input[str]]
    """What the cluster's environment would carry (no key: at most the secret's name)."""
    dependencies: Sequence[str] = field(default_factory=tuple)
    """Pinned requirement lines installed with the wheel (``name==version``)."""


@dataclass(frozen=True)
class LabJobsArgs:
    """The wheel, where it goes and what runs it."""

    compute: ClusterCompute | ServerlessCompute
    """The lab's cluster, or serverless compute."""
    folder: pulumi.Input[str]
    """Workspace folder for the wheel, e.g. ``/Users/<user>/llmops-workload``."""
    wheel: WorkloadWheel
    """The built wheel (``llmops_infra.stack.workload_wheel.build_wheel``)."""
    monitor_schedule: str | None = None
    """A Quartz cron expression (UTC) the monitor runs on, unpaused; None: paused."""


class LabJobs(pulumi.ComponentResource):
    """The workload's wheel uploaded to the workspace and the three jobs that run it.

    Create it with the workspace's provider; its children inherit it.
    """

    chat_job_id: pulumi.Output[str]
    """Id of the job that runs ``workload chat``."""
    monitor_job_id: pulumi.Output[str]
    """Id of the job that runs ``workload monitor --fail-on-drift`` on its schedule."""
    eval_job_id: pulumi.Output[str]
    """Id of the job that runs ``workload eval`` on the shipped prompt set."""
    wheel_path: pulumi.Output[str]
    """Workspace path of the uploaded wheel (its folder named after its content's hash)."""

    def __init__(
        self, name: str, args: LabJobsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "llmops:databricks:LabJobs",
            name,
            None,
            # Until 2026-11 it sat under the `databricks` component; its children follow it.
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(aliases=[formerly_under_databricks()])
            ),
        )
        folder = pulumi.Output.from_input(args.folder)
        # The content's hash in the folder: pip needs the wheel's own file name.
        wheel_path = pulumi.Output.concat(
            folder, f"/wheel-{args.wheel.sha256[:16]}/{args.wheel.filename}"
        )
        wheel = databricks.WorkspaceFile(
            f"{name}-wheel",
            path=wheel_path,
            source=_source(args.wheel.path),
            # The wheel's own hash: a rebuilt wheel with other bytes is uploaded again.
            md5=args.wheel.md5,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Runs read workspace files through the filesystem mounted at /Workspace.
        installed = wheel_path.apply(lambda path: f"/Workspace{path}")
        after_upload = pulumi.ResourceOptions(parent=self, depends_on=[wheel])
        compute = args.compute
        environments: list[databricks.JobEnvironmentArgs] | None = None
        if isinstance(compute, ServerlessCompute):
            environments = [
                databricks.JobEnvironmentArgs(
                    environment_key=_ENVIRONMENT_KEY,
                    spec=databricks.JobEnvironmentSpecArgs(
                        environment_version=SERVERLESS_ENVIRONMENT_VERSION,
                        # The wheel (its path pinned by its hash) and the exact versions of
                        # what it needs, as requirements.txt pins them for the laptop.
                        dependencies=pulumi.Output.all(installed, *compute.dependencies).apply(
                            list
                        ),
                    ),
                )
            ]
            settings = pulumi.Output.all(
                **{k: pulumi.Output.from_input(v) for k, v in compute.settings.items()}
            )
        else:
            settings = pulumi.Output.from_input({})

        def task(key: str, command: Sequence[str], timeout: int) -> databricks.JobTaskArgs:
            wheel_task = databricks.JobTaskPythonWheelTaskArgs(
                package_name=contract.WORKLOAD_DISTRIBUTION,
                entry_point=contract.JOB_ENTRY_POINT,
                parameters=settings.apply(lambda s: contract.job_parameters(command, s)),
            )
            if isinstance(compute, ServerlessCompute):
                return databricks.JobTaskArgs(
                    task_key=key,
                    environment_key=_ENVIRONMENT_KEY,
                    python_wheel_task=wheel_task,
                    timeout_seconds=timeout,
                )
            return databricks.JobTaskArgs(
                task_key=key,
                existing_cluster_id=compute.cluster_id,
                # Installed on the cluster for this run; its dependencies are the cluster's
                # pinned libraries (lab_environment.py).
                libraries=[databricks.JobTaskLibraryArgs(whl=installed)],
                python_wheel_task=wheel_task,
                timeout_seconds=timeout,
            )

        chat = databricks.Job(
            f"{name}-chat",
            name="LLMOps lab: traced chat call (python -m workload chat)",
            description="The lab's MLflow-traced Azure OpenAI call.",
            tasks=[task("chat", ["chat"], 30 * 60)],
            max_concurrent_runs=1,
            environments=environments,
            opts=after_upload,
        )
        monitor = databricks.Job(
            f"{name}-monitor",
            name="LLMOps lab: drift monitor (python -m workload monitor)",
            description="Compares the experiment's trace windows; fails when a metric drifted.",
            tasks=[task("monitor", ["monitor", "--fail-on-drift"], 60 * 60)],
            # Every field sent, always: the provider reads the block back, and one left out
            # would keep whatever the job had.
            schedule=databricks.JobScheduleArgs(
                quartz_cron_expression=args.monitor_schedule or _MONITOR_CRON,
                timezone_id=_MONITOR_TIMEZONE,
                # Without llmops:monitorSchedule it stays paused: resume it in the Jobs UI
                # once the experiment has traces.
                pause_status="UNPAUSED" if args.monitor_schedule else "PAUSED",
            ),
            max_concurrent_runs=1,
            environments=environments,
            opts=after_upload,
        )

        evaluate = databricks.Job(
            f"{name}-eval",
            name="LLMOps lab: evaluation (python -m workload eval)",
            description=(
                "Runs the shipped prompt set through the traced call and scores it with "
                "MLflow's judges, paced within the deployments' rate limits."
            ),
            tasks=[task("eval", ["eval"], 2 * 60 * 60)],
            max_concurrent_runs=1,
            environments=environments,
            opts=after_upload,
        )

        self.chat_job_id = chat.id
        self.monitor_job_id = monitor.id
        self.eval_job_id = evaluate.id
        self.wheel_path = wheel_path
        self.register_outputs(
            {
                "chat_job_id": self.chat_job_id,
                "monitor_job_id": self.monitor_job_id,
                "eval_job_id": self.eval_job_id,
                "wheel_path": self.wheel_path,
            }
        )
