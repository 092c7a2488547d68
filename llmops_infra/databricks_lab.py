"""The lab's section "MLflow を使用して LLM をログする", done inside the workspace.

The lab pastes the Azure OpenAI key into a notebook cell and runs the traced
call by hand. Here two components do it for good, through the workspace's
provider:

- :class:`LabEnvironment`: a Databricks-backed secret scope holding the key,
  the MLflow experiment the traces land in, and what the cluster needs to run
  the lab's cell without its first step (environment variables, with the key
  only as a secret reference, and the workload's pinned libraries). It is
  created before the cluster: a cluster whose secret does not exist yet
  fails to start.
- :class:`LabJobs`: the ``workload`` package uploaded as workspace files, a
  job that runs ``workload chat`` on the cluster, and a job that runs
  ``workload monitor --fail-on-drift`` on a schedule that starts paused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pulumi
import pulumi_databricks as databricks

__all__ = [
    "JOB_ENTRY_MODULE",
    "OPENAI_KEY_SECRET",
    "PACKAGE_DIR",
    "REQUIREMENTS_FILE",
    "RUNTIME_PACKAGES",
    "LabEnvironment",
    "LabEnvironmentArgs",
    "LabJobs",
    "LabJobsArgs",
    "pinned_requirements",
]

_PROJECT_DIR: Final = Path(__file__).resolve().parent.parent

#: The workload package, uploaded file by file.
PACKAGE_DIR: Final = _PROJECT_DIR / "workload"
#: The one place the workload's runtime versions are pinned.
REQUIREMENTS_FILE: Final = _PROJECT_DIR / "requirements.txt"
#: What the cluster installs to run the workload (the ML runtime has scipy and matplotlib).
RUNTIME_PACKAGES: Final[tuple[str, ...]] = ("openai", "mlflow")
#: The secret's key in the scope.
OPENAI_KEY_SECRET: Final = "azure-openai-api-key"
#: The uploaded module a job runs as a file (the Jobs API has no ``python -m``).
JOB_ENTRY_MODULE: Final = "job_entry"

#: Daily at 06:00 UTC (Quartz syntax); the schedule is created paused.
_MONITOR_CRON: Final = "0 0 6 * * ?"
_MONITOR_TIMEZONE: Final = "UTC"


def pinned_requirements(
    names: Sequence[str] = RUNTIME_PACKAGES, requirements: Path = REQUIREMENTS_FILE
) -> list[str]:
    """``name==version`` for each name, as ``requirements.txt`` pins it.

    The cluster then runs the same openai and mlflow as the laptop and the tests.
    """
    pins: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;#]+).*", line)
        if match:
            pins[match[1].lower()] = f"{match[1]}=={match[2]}"
    missing = [name for name in names if name.lower() not in pins]
    if missing:
        raise pulumi.RunError(
            f"{requirements.name} must pin {', '.join(missing)} as name==version "
            "(the cluster installs exactly those versions)"
        )
    return [pins[name.lower()] for name in names]


def _source(path: Path) -> str:
    """The path the provider reads: relative to the project folder, where Pulumi starts it.

    Relative, so the same stack deployed from another checkout sends the same input.
    """
    try:
        return path.relative_to(_PROJECT_DIR).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class LabEnvironmentArgs:
    """What the lab's first cell typed in, and where its traces go."""

    secret_scope: str
    """Name of the Databricks-backed secret scope to create."""
    api_key: pulumi.Input[str]
    """The Azure OpenAI key (a Pulumi secret); stored only in the secret scope."""
    endpoint: pulumi.Input[str]
    """``AZURE_OPENAI_ENDPOINT``."""
    api_version: pulumi.Input[str]
    """``AZURE_OPENAI_API_VERSION``."""
    deployment: pulumi.Input[str]
    """``AZURE_OPENAI_DEPLOYMENT``: the ``model=`` of the chat call."""
    experiment_path: str
    """Workspace path of the MLflow experiment (``/Shared/...`` or ``/Users/<user>/...``)."""
    libraries: tuple[str, ...] = field(default_factory=lambda: tuple(pinned_requirements()))
    """PyPI requirements the cluster installs, ``name==version``."""


class LabEnvironment(pulumi.ComponentResource):
    """The secret scope with the key, the experiment, and the cluster settings that use them.

    Create it with the workspace's provider (``ResourceOptions(provider=...)``);
    its children inherit it.
    """

    secret_scope: pulumi.Output[str]
    """The scope's name."""
    secret_reference: pulumi.Output[str]
    """``{{secrets/<scope>/<key>}}``: how Spark configuration refers to the key."""
    experiment_path: pulumi.Output[str]
    """The experiment's workspace path, also its name for MLflow."""
    experiment_id: pulumi.Output[str]
    """The experiment's id."""
    key_secret: databricks.Secret
    """The secret holding the key: a cluster that uses it must be created after it."""
    spark_env_vars: dict[str, pulumi.Output[str]]
    """The cluster's environment: the lab's variables, the key only as a reference."""
    libraries: list[databricks.ClusterLibraryArgs]
    """The cluster's libraries: the workload's pinned runtime packages."""

    def __init__(
        self, name: str, args: LabEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:databricks:LabEnvironment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        scope = databricks.SecretScope(
            f"{name}-scope",
            name=args.secret_scope,
            # Databricks-backed: no Key Vault to create or grant access to.
            backend_type="DATABRICKS",
            opts=child,
        )
        secret = databricks.Secret(
            f"{name}-openai-key",
            scope=scope.name,
            key=OPENAI_KEY_SECRET,
            string_value=pulumi.Output.secret(args.api_key),
            opts=child,
        )
        experiment = databricks.MlflowExperiment(
            f"{name}-experiment",
            name=args.experiment_path,
            description="Traces of the LLMOps lab's Azure OpenAI chat call (python -m workload).",
            opts=child,
        )

        self.secret_scope = scope.name
        self.secret_reference = secret.config_reference
        self.experiment_path = experiment.name
        self.experiment_id = experiment.id
        self.key_secret = secret
        # The lab's first cell, as the cluster's environment: a notebook on the cluster
        # starts at the client cell. Spark resolves the reference when the cluster starts.
        self.spark_env_vars = {
            "AZURE_OPENAI_API_KEY": secret.config_reference,
            "AZURE_OPENAI_ENDPOINT": pulumi.Output.from_input(args.endpoint),
            "AZURE_OPENAI_API_VERSION": pulumi.Output.from_input(args.api_version),
            "AZURE_OPENAI_DEPLOYMENT": pulumi.Output.from_input(args.deployment),
            # The configured path, not the experiment's output: the cluster can start
            # while the experiment is still being created.
            "MLFLOW_EXPERIMENT_NAME": pulumi.Output.from_input(args.experiment_path),
        }
        self.libraries = [
            databricks.ClusterLibraryArgs(pypi=databricks.ClusterLibraryPypiArgs(package=package))
            for package in args.libraries
        ]
        self.register_outputs(
            {
                "secret_scope": self.secret_scope,
                "secret_reference": self.secret_reference,
                "experiment_path": self.experiment_path,
                "experiment_id": self.experiment_id,
            }
        )


@dataclass(frozen=True)
class LabJobsArgs:
    """Where the workload goes and which cluster runs it."""

    cluster_id: pulumi.Input[str]
    """The lab's cluster: both jobs run on it (its environment and libraries)."""
    folder: pulumi.Input[str]
    """Workspace folder for the package, e.g. ``/Users/<user>/llmops-workload``."""
    package_dir: Path = PACKAGE_DIR
    """The local ``workload`` package; each ``*.py`` in it is uploaded."""


class LabJobs(pulumi.ComponentResource):
    """The workload uploaded to the workspace and the two jobs that run it on the cluster.

    Create it with the workspace's provider; its children inherit it.
    """

    chat_job_id: pulumi.Output[str]
    """Id of the job that runs ``workload chat``."""
    monitor_job_id: pulumi.Output[str]
    """Id of the job that runs ``workload monitor --fail-on-drift`` (schedule paused)."""
    package_path: pulumi.Output[str]
    """Workspace path of the uploaded package folder."""

    def __init__(
        self, name: str, args: LabJobsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:databricks:LabJobs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        folder = pulumi.Output.from_input(args.folder)
        package = args.package_dir.name
        package_path = pulumi.Output.concat(folder, "/", package)

        sources = sorted(args.package_dir.glob("*.py"))
        if not any(path.stem == JOB_ENTRY_MODULE for path in sources):
            raise pulumi.RunError(f"{args.package_dir} has no {JOB_ENTRY_MODULE}.py for the jobs")
        files = [
            databricks.WorkspaceFile(
                f"{name}-{package}-{path.stem}",
                path=pulumi.Output.concat(package_path, "/", path.name),
                source=_source(path),
                # The file's own hash: an edited module shows as a diff and is uploaded again.
                md5=hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest(),
                opts=child,
            )
            for path in sources
        ]

        entry = pulumi.Output.concat(package_path, "/", JOB_ENTRY_MODULE, ".py")
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
                    parameters=root.apply(lambda r: [r, *command]),
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

        self.chat_job_id = chat.id
        self.monitor_job_id = monitor.id
        self.package_path = package_path
        self.register_outputs(
            {
                "chat_job_id": self.chat_job_id,
                "monitor_job_id": self.monitor_job_id,
                "package_path": self.package_path,
            }
        )
