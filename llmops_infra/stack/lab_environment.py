"""The lab's section "MLflow を使用して LLM をログする": its first cell, done for good.

The lab pastes the Azure OpenAI key into a notebook cell. Here one component,
created through the workspace's provider, holds what that cell set up: a
Databricks-backed secret scope with the key, the MLflow experiment the traces
land in, and what the cluster needs to run the lab's call without its first
cell (environment variables, the key only as a secret reference, and the
workload's pinned libraries), and the same settings for serverless jobs. The
cluster starts after it: a cluster whose secret does not exist yet fails to start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pulumi
import pulumi_databricks as databricks

from llmops_infra.stack.identity import formerly_under_databricks
from workload import contract

__all__ = [
    "REQUIREMENTS_FILE",
    "RUNTIME_PACKAGES",
    "KeyAccess",
    "KeylessAccess",
    "LabEnvironment",
    "LabEnvironmentArgs",
    "pinned_requirements",
    "serverless_settings",
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


def serverless_settings(
    cluster_env: Mapping[str, pulumi.Input[str]], key_secret: databricks.Secret | None
) -> dict[str, pulumi.Output[str]]:
    """What a serverless job must be told that the cluster's environment carries.

    The same variables (whatever mode built them), except the key: a serverless job
    has no Spark to resolve a secret reference, and the key itself must never sit in
    a job's definition, so in key mode the job names the secret
    (``LLMOPS_API_KEY_SECRET=<scope>/<key>``) and the workload reads it at run time.
    In gateway mode the job calls the serving endpoint with its own identity and is told
    of no secret at all: only the endpoint reads the key.
    """
    settings = {
        name: pulumi.Output.from_input(value)
        for name, value in cluster_env.items()
        if name != contract.ENV_API_KEY
    }
    if key_secret is not None and contract.ENV_GATEWAY_ENDPOINT not in cluster_env:
        settings[contract.ENV_API_KEY_SECRET] = pulumi.Output.concat(
            key_secret.scope, "/", key_secret.key
        )
    return settings


@dataclass(frozen=True)
class KeyAccess:
    """Key mode (the lab): the key in a Databricks-backed secret scope."""

    secret_scope: str
    """Name of the secret scope to create."""
    api_key: pulumi.Input[str]
    """The Azure OpenAI key (a Pulumi secret); stored only in the secret scope."""


@dataclass(frozen=True)
class KeylessAccess:
    """Entra mode: the cluster gets its token from a Unity Catalog service credential."""

    service_credential: pulumi.Input[str]
    """The credential's name (``LLMOPS_SERVICE_CREDENTIAL``)."""


@dataclass(frozen=True)
class LabEnvironmentArgs:
    """What the lab's first cell typed in, where its traces go, and the workload's budgets."""

    access: KeyAccess | KeylessAccess
    """How the cluster authenticates to Azure OpenAI."""
    endpoint: pulumi.Input[str]
    """``AZURE_OPENAI_ENDPOINT``."""
    api_version: pulumi.Input[str]
    """``AZURE_OPENAI_API_VERSION``."""
    deployment: pulumi.Input[str]
    """``AZURE_OPENAI_DEPLOYMENT``: the ``model=`` of the chat call."""
    experiment_path: str
    """Workspace path of the MLflow experiment (``/Shared/...`` or ``/Users/<user>/...``)."""
    tokens_per_minute: int
    """The chat deployment's rate limit, for ``workload eval``'s pacing."""
    judge_deployment: pulumi.Input[str] = ""
    """The judge deployment, "" when the judges use the chat deployment."""
    judge_tokens_per_minute: int = 0
    """The judge deployment's rate limit (0 without one)."""
    gateway_endpoint: str = ""
    """Gateway mode: the chat deployment's serving endpoint; "" = the cluster calls Azure."""
    gateway_judge_endpoint: str = ""
    """Gateway mode: the judge deployment's serving endpoint ("" without a judge)."""
    prompt_name: str = ""
    """The lab's prompt in Unity Catalog (``LLMOPS_PROMPT_NAME``); "" = no such variable."""


class LabEnvironment(pulumi.ComponentResource):
    """The secret scope with the key (key mode), the experiment, and the cluster's settings.

    Create it with the workspace's provider (``ResourceOptions(provider=...)``);
    its children inherit it.
    """

    secret_scope: pulumi.Output[str] | None
    """The scope's name; None in entra mode (no scope is created)."""
    experiment_path: pulumi.Output[str]
    """The experiment's workspace path, also its name for MLflow."""
    experiment_id: pulumi.Output[str]
    """The experiment's id."""
    key_secret: databricks.Secret | None
    """The secret holding the key: a cluster that uses it must be created after it."""
    spark_env_vars: dict[str, pulumi.Output[str]]
    """The cluster's environment: the lab's variables, the key only as a reference."""
    libraries: list[databricks.ClusterLibraryArgs]
    """The cluster's libraries: the workload's pinned runtime packages."""
    job_settings: dict[str, pulumi.Output[str]]
    """The same settings for a serverless job: the key's secret named, never its value."""

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

        experiment = databricks.MlflowExperiment(
            f"{name}-experiment",
            name=args.experiment_path,
            description="Traces of the LLMOps lab's Azure OpenAI chat call (python -m workload).",
            opts=child,
        )
        # The lab's first cell, as the cluster's environment: a notebook on the cluster
        # starts at the client cell.
        env: dict[str, pulumi.Input[str]] = {
            contract.ENV_ENDPOINT: args.endpoint,
            contract.ENV_API_VERSION: args.api_version,
            contract.ENV_DEPLOYMENT: args.deployment,
            # The configured path, not the experiment's output: the cluster can start
            # while the experiment is still being created.
            contract.ENV_EXPERIMENT: args.experiment_path,
            # workload eval paces its requests within the deployments' limits.
            contract.ENV_TOKENS_PER_MINUTE: str(args.tokens_per_minute),
            contract.ENV_JUDGE_DEPLOYMENT: args.judge_deployment,
            contract.ENV_JUDGE_TOKENS_PER_MINUTE: str(args.judge_tokens_per_minute),
        }
        if args.prompt_name:
            # Only with a catalog: a stack without one keeps its cluster's environment.
            env[contract.ENV_PROMPT_NAME] = args.prompt_name
        packages = list(RUNTIME_PACKAGES)
        self.secret_scope = None
        self.key_secret = None
        if isinstance(args.access, KeyAccess):
            scope = databricks.SecretScope(
                f"{name}-scope",
                name=args.access.secret_scope,
                # Databricks-backed: no Key Vault to create or grant access to.
                backend_type="DATABRICKS",
                opts=child,
            )
            self.key_secret = databricks.Secret(
                f"{name}-openai-key",
                scope=scope.name,
                key=contract.OPENAI_KEY_SECRET,
                string_value=pulumi.Output.secret(args.access.api_key),
                opts=child,
            )
            self.secret_scope = scope.name
            if args.gateway_endpoint:
                # Gateway mode: the secret is the endpoint's alone; the cluster calls the
                # endpoints with its own Databricks identity and holds no key, not even a
                # reference to one.
                env[contract.ENV_GATEWAY_ENDPOINT] = args.gateway_endpoint
                if args.gateway_judge_endpoint:
                    env[contract.ENV_GATEWAY_JUDGE_ENDPOINT] = args.gateway_judge_endpoint
            else:
                # Spark resolves the reference when the cluster starts; the key is never in
                # clear.
                env[contract.ENV_API_KEY] = self.key_secret.config_reference
        else:
            env[contract.ENV_AUTH_MODE] = "entra"
            env[contract.ENV_SERVICE_CREDENTIAL] = args.access.service_credential
            # The service credential's provider is an azure-identity credential.
            packages.append("azure-identity")

        self.experiment_path = experiment.name
        self.experiment_id = experiment.id
        self.spark_env_vars = {key: pulumi.Output.from_input(v) for key, v in env.items()}
        self.job_settings = serverless_settings(env, self.key_secret)
        self.libraries = [
            databricks.ClusterLibraryArgs(pypi=databricks.ClusterLibraryPypiArgs(package=package))
            for package in pinned_requirements(packages)
        ]
        self.register_outputs(
            {
                "secret_scope": self.secret_scope,
                "experiment_path": self.experiment_path,
                "experiment_id": self.experiment_id,
            }
        )
