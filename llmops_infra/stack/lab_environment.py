"""The lab's section "MLflow を使用して LLM をログする": its first cell, done for good.

The lab pastes the Azure OpenAI key into a notebook cell. Here one component,
created through the workspace's provider, holds what that cell set up: a
Databricks-backed secret scope with the key, the MLflow experiment the traces
land in, and what the cluster needs to run the lab's call without its first
cell (environment variables, the key only as a secret reference, and the
workload's pinned libraries). The cluster starts after it: a cluster whose
secret does not exist yet fails to start.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pulumi
import pulumi_databricks as databricks

from llmops_infra.stack.identity import formerly_under_databricks
from workload import contract

__all__ = [
    "REQUIREMENTS_FILE",
    "RUNTIME_PACKAGES",
    "LabEnvironment",
    "LabEnvironmentArgs",
    "pinned_requirements",
]

#: The one place the workload's runtime versions are pinned.
REQUIREMENTS_FILE: Final = contract.PROJECT_DIR / "requirements.txt"
#: What the cluster installs to run the workload (the ML runtime has scipy and matplotlib).
RUNTIME_PACKAGES: Final[tuple[str, ...]] = ("openai", "mlflow")


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
        super().__init__(
            "llmops:databricks:LabEnvironment",
            name,
            None,
            # Until 2026-11 it sat under the `databricks` component; its children follow it.
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(aliases=[formerly_under_databricks()])
            ),
        )
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
            key=contract.OPENAI_KEY_SECRET,
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
            contract.ENV_API_KEY: secret.config_reference,
            contract.ENV_ENDPOINT: pulumi.Output.from_input(args.endpoint),
            contract.ENV_API_VERSION: pulumi.Output.from_input(args.api_version),
            contract.ENV_DEPLOYMENT: pulumi.Output.from_input(args.deployment),
            # The configured path, not the experiment's output: the cluster can start
            # while the experiment is still being created.
            contract.ENV_EXPERIMENT: pulumi.Output.from_input(args.experiment_path),
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
