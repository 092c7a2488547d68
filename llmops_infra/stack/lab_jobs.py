"""The lab's workload as jobs on the cluster: run, watch and evaluate without a notebook.

One component, created through the workspace's provider: the ``workload``
package uploaded as workspace files, a job that runs ``workload chat`` on the
lab's cluster, and a job that runs ``workload monitor --fail-on-drift`` on a
schedule that starts paused, and a job that runs ``workload eval`` on the
prompt set shipped in the package.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pulumi
import pulumi_databricks as databricks

from llmops_infra.stack.identity import formerly_under_databricks
from workload import contract

__all__ = ["PACKAGE_DIR", "LabJobs", "LabJobsArgs"]

#: The workload package, uploaded file by file.
PACKAGE_DIR: Final = contract.PROJECT_DIR / "workload"

#: Daily at 06:00 UTC (Quartz syntax); the schedule is created paused.
_MONITOR_CRON: Final = "0 0 6 * * ?"
_MONITOR_TIMEZONE: Final = "UTC"


#: Data files uploaded with the package (the eval job's prompt set).
_DATA_SUFFIXES: Final = frozenset({".jsonl"})


def _resource_suffix(path: Path, package_dir: Path) -> str:
    """``chat`` for ``chat.py`` (as stacks deployed before know it), ``datasets-x.jsonl``
    for a data file."""
    if path.suffix == ".py" and path.parent == package_dir:
        return path.stem
    return path.relative_to(package_dir).as_posix().replace("/", "-")


def _source(path: Path) -> str:
    """The path the provider reads: relative to the project folder, where Pulumi starts it.

    Relative, so the same stack deployed from another checkout sends the same input.
    """
    try:
        return path.relative_to(contract.PROJECT_DIR).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class LabJobsArgs:
    """Where the workload goes and which cluster runs it."""

    cluster_id: pulumi.Input[str]
    """The lab's cluster: both jobs run on it (its environment and libraries)."""
    folder: pulumi.Input[str]
    """Workspace folder for the package, e.g. ``/Users/<user>/llmops-workload``."""
    package_dir: Path = PACKAGE_DIR
    """The local ``workload`` package; each ``*.py`` in it and its folders is uploaded."""


class LabJobs(pulumi.ComponentResource):
    """The workload uploaded to the workspace and the two jobs that run it on the cluster.

    Create it with the workspace's provider; its children inherit it.
    """

    chat_job_id: pulumi.Output[str]
    """Id of the job that runs ``workload chat``."""
    monitor_job_id: pulumi.Output[str]
    """Id of the job that runs ``workload monitor --fail-on-drift`` (schedule paused)."""
    eval_job_id: pulumi.Output[str]
    """Id of the job that runs ``workload eval`` on the shipped prompt set."""
    package_path: pulumi.Output[str]
    """Workspace path of the uploaded package folder."""

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
        child = pulumi.ResourceOptions(parent=self)
        folder = pulumi.Output.from_input(args.folder)
        package = args.package_dir.name
        package_path = pulumi.Output.concat(folder, "/", package)

        sources = sorted(p for p in args.package_dir.rglob("*.py") if "__pycache__" not in p.parts)
        if not any(path.stem == contract.JOB_ENTRY_MODULE for path in sources):
            raise pulumi.RunError(
                f"{args.package_dir} has no {contract.JOB_ENTRY_MODULE}.py for the jobs"
            )
        # The package's data (the eval job's prompt set) goes along, in its own folders.
        data = sorted(p for p in args.package_dir.rglob("*") if p.suffix in _DATA_SUFFIXES)
        files = [
            databricks.WorkspaceFile(
                # Modules keep the names deployed stacks know them by; data files are
                # named by their path in the package.
                f"{name}-{package}-{_resource_suffix(path, args.package_dir)}",
                path=pulumi.Output.concat(
                    package_path, "/", path.relative_to(args.package_dir).as_posix()
                ),
                source=_source(path),
                # The file's own hash: an edited module shows as a diff and is uploaded again.
                md5=hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest(),
                opts=child,
            )
            for path in [*sources, *data]
        ]

        entry = pulumi.Output.concat(package_path, "/", contract.JOB_ENTRY_MODULE, ".py")
        # Runs read the files through the workspace filesystem, mounted at /Workspace.
        root = folder.apply(lambda f: f"/Workspace{f}")
        after_upload = pulumi.ResourceOptions(parent=self, depends_on=files)

        def task(key: str, command: Sequence[str], timeout: int) -> databricks.JobTaskArgs:
            return databricks.JobTaskArgs(
                task_key=key,
                existing_cluster_id=args.cluster_id,
                spark_python_task=databricks.JobTaskSparkPythonTaskArgs(
                    python_file=entry,
                    source="WORKSPACE",
                    # job_entry's arguments: where the package is, then the command line.
                    parameters=root.apply(lambda r: contract.job_parameters(r, command)),
                ),
                timeout_seconds=timeout,
            )

        chat = databricks.Job(
            f"{name}-chat",
            name="LLMOps lab: traced chat call (python -m workload chat)",
            description="The lab's MLflow-traced Azure OpenAI call, on the lab's cluster.",
            tasks=[task("chat", ["chat"], 30 * 60)],
            max_concurrent_runs=1,
            opts=after_upload,
        )
        monitor = databricks.Job(
            f"{name}-monitor",
            name="LLMOps lab: drift monitor (python -m workload monitor)",
            description="Compares the experiment's trace windows; fails when a metric drifted.",
            tasks=[task("monitor", ["monitor", "--fail-on-drift"], 60 * 60)],
            schedule=databricks.JobScheduleArgs(
                quartz_cron_expression=_MONITOR_CRON,
                timezone_id=_MONITOR_TIMEZONE,
                # Created paused: resume it in the Jobs UI once the experiment has traces.
                pause_status="PAUSED",
            ),
            max_concurrent_runs=1,
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
            opts=after_upload,
        )

        self.chat_job_id = chat.id
        self.monitor_job_id = monitor.id
        self.eval_job_id = evaluate.id
        self.package_path = package_path
        self.register_outputs(
            {
                "chat_job_id": self.chat_job_id,
                "monitor_job_id": self.monitor_job_id,
                "eval_job_id": self.eval_job_id,
                "package_path": self.package_path,
            }
        )
