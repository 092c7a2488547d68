"""The contract between the infrastructure and the workload, free of Pulumi.

``llmops_infra`` exports these stack outputs, sets these environment variables
on the cluster (or passes them to serverless jobs), stores the key under this
secret name and starts the jobs through this wheel entry point; ``workload``
reads every one of them by the same name. So each name lives here once, in a
module with no Pulumi dependency (the workload must run where Pulumi is not
installed). docs/reference.md lists the output names: add, never rename.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

__all__ = [
    "ALL_OUTPUTS",
    "DATABRICKS_CHAT_JOB_ID",
    "DATABRICKS_CLUSTER_ID",
    "DATABRICKS_COMPUTE",
    "DATABRICKS_EVAL_JOB_ID",
    "DATABRICKS_GATEWAY_TOKENS_PER_MINUTE",
    "DATABRICKS_JUDGE_SERVING_ENDPOINT",
    "DATABRICKS_MONITOR_JOB_ID",
    "DATABRICKS_SECRET_SCOPE",
    "DATABRICKS_SERVICE_CREDENTIAL",
    "DATABRICKS_SERVING_ENDPOINT",
    "DATABRICKS_WORKSPACE_RESOURCE_ID",
    "DATABRICKS_WORKSPACE_URL",
    "ENV_AD_TOKEN",
    "ENV_API_KEY",
    "ENV_API_KEY_SECRET",
    "ENV_API_VERSION",
    "ENV_AUTH_MODE",
    "ENV_DEPLOYMENT",
    "ENV_ENDPOINT",
    "ENV_EXPERIMENT",
    "ENV_GATEWAY_ENDPOINT",
    "ENV_GATEWAY_JUDGE_ENDPOINT",
    "ENV_JUDGE_DEPLOYMENT",
    "ENV_JUDGE_TOKENS_PER_MINUTE",
    "ENV_PROMPT_NAME",
    "ENV_SERVICE_CREDENTIAL",
    "ENV_TOKENS_PER_MINUTE",
    "ENV_VIA",
    "JOB_ENTRY_POINT",
    "KEY_MODE_OUTPUTS",
    "LAB_PROMPT",
    "MLFLOW_EXPERIMENT_PATH",
    "MLFLOW_PROMPT_NAME",
    "NETWORK",
    "OPENAI_ACCOUNT_NAME",
    "OPENAI_API_KEY",
    "OPENAI_API_VERSION",
    "OPENAI_AUTH_MODE",
    "OPENAI_DEPLOYMENT",
    "OPENAI_ENDPOINT",
    "OPENAI_JUDGE_DEPLOYMENT",
    "OPENAI_JUDGE_TOKENS_PER_MINUTE",
    "OPENAI_KEY_SECRET",
    "OPENAI_TOKENS_PER_MINUTE",
    "PROJECT_DIR",
    "REGION",
    "RESOURCE_GROUP_NAME",
    "SECRET_MASK",
    "SECRET_OUTPUTS",
    "VIRTUAL_NETWORK_ID",
    "WORKLOAD_DISTRIBUTION",
    "WORKLOAD_FOLDER",
    "job_parameters",
]

# --- stack outputs (docs/reference.md, "Stack outputs") -------------------------------------------
RESOURCE_GROUP_NAME: Final = "resource_group_name"
REGION: Final = "region"
OPENAI_ACCOUNT_NAME: Final = "openai_account_name"
OPENAI_ENDPOINT: Final = "openai_endpoint"
OPENAI_API_KEY: Final = "openai_api_key"
OPENAI_API_VERSION: Final = "openai_api_version"
OPENAI_DEPLOYMENT: Final = "openai_deployment"
OPENAI_AUTH_MODE: Final = "openai_auth_mode"
OPENAI_TOKENS_PER_MINUTE: Final = "openai_tokens_per_minute"
OPENAI_JUDGE_DEPLOYMENT: Final = "openai_judge_deployment"
OPENAI_JUDGE_TOKENS_PER_MINUTE: Final = "openai_judge_tokens_per_minute"
DATABRICKS_WORKSPACE_URL: Final = "databricks_workspace_url"
DATABRICKS_WORKSPACE_RESOURCE_ID: Final = "databricks_workspace_resource_id"
DATABRICKS_CLUSTER_ID: Final = "databricks_cluster_id"
MLFLOW_EXPERIMENT_PATH: Final = "mlflow_experiment_path"
DATABRICKS_SECRET_SCOPE: Final = "databricks_secret_scope"
DATABRICKS_SERVICE_CREDENTIAL: Final = "databricks_service_credential"
DATABRICKS_CHAT_JOB_ID: Final = "databricks_chat_job_id"
DATABRICKS_MONITOR_JOB_ID: Final = "databricks_monitor_job_id"
DATABRICKS_EVAL_JOB_ID: Final = "databricks_eval_job_id"
DATABRICKS_COMPUTE: Final = "databricks_compute"
DATABRICKS_SERVING_ENDPOINT: Final = "databricks_serving_endpoint"
DATABRICKS_JUDGE_SERVING_ENDPOINT: Final = "databricks_judge_serving_endpoint"
DATABRICKS_GATEWAY_TOKENS_PER_MINUTE: Final = "databricks_gateway_tokens_per_minute"
#: ``<catalog>.<schema>.lab_chat`` when ``llmops:catalog`` is set, else "".
MLFLOW_PROMPT_NAME: Final = "mlflow_prompt_name"
#: ``public`` or ``private`` (``llmops:network``).
NETWORK: Final = "network"
#: Private mode: the virtual network's resource id; "" in public mode.
VIRTUAL_NETWORK_ID: Final = "virtual_network_id"

#: Every output a stack can export, in docs/reference.md's order.
ALL_OUTPUTS: Final[tuple[str, ...]] = (
    RESOURCE_GROUP_NAME,
    REGION,
    OPENAI_ACCOUNT_NAME,
    OPENAI_ENDPOINT,
    OPENAI_API_KEY,
    OPENAI_API_VERSION,
    OPENAI_DEPLOYMENT,
    OPENAI_AUTH_MODE,
    OPENAI_TOKENS_PER_MINUTE,
    OPENAI_JUDGE_DEPLOYMENT,
    OPENAI_JUDGE_TOKENS_PER_MINUTE,
    DATABRICKS_WORKSPACE_URL,
    DATABRICKS_WORKSPACE_RESOURCE_ID,
    DATABRICKS_CLUSTER_ID,
    MLFLOW_EXPERIMENT_PATH,
    DATABRICKS_SECRET_SCOPE,
    DATABRICKS_SERVICE_CREDENTIAL,
    DATABRICKS_CHAT_JOB_ID,
    DATABRICKS_MONITOR_JOB_ID,
    DATABRICKS_EVAL_JOB_ID,
    DATABRICKS_COMPUTE,
    DATABRICKS_SERVING_ENDPOINT,
    DATABRICKS_JUDGE_SERVING_ENDPOINT,
    DATABRICKS_GATEWAY_TOKENS_PER_MINUTE,
    MLFLOW_PROMPT_NAME,
    NETWORK,
    VIRTUAL_NETWORK_ID,
)
#: Exported only in key mode (the lab's ``authMode``); an entra stack has no key and no scope.
KEY_MODE_OUTPUTS: Final[frozenset[str]] = frozenset({OPENAI_API_KEY, DATABRICKS_SECRET_SCOPE})
#: Outputs exported as Pulumi secrets (never printed in clear).
SECRET_OUTPUTS: Final[frozenset[str]] = frozenset({OPENAI_API_KEY})

# --- the cluster's environment (the lab's first cell, and what the workload adds) ----------
ENV_ENDPOINT: Final = "AZURE_OPENAI_ENDPOINT"
ENV_API_KEY: Final = "AZURE_OPENAI_API_KEY"
ENV_API_VERSION: Final = "AZURE_OPENAI_API_VERSION"
ENV_DEPLOYMENT: Final = "AZURE_OPENAI_DEPLOYMENT"
#: The OpenAI SDK's own variable for an Entra ID bearer token.
ENV_AD_TOKEN: Final = "AZURE_OPENAI_AD_TOKEN"
ENV_EXPERIMENT: Final = "MLFLOW_EXPERIMENT_NAME"
ENV_AUTH_MODE: Final = "LLMOPS_AUTH_MODE"
ENV_SERVICE_CREDENTIAL: Final = "LLMOPS_SERVICE_CREDENTIAL"
ENV_TOKENS_PER_MINUTE: Final = "LLMOPS_TOKENS_PER_MINUTE"
ENV_JUDGE_DEPLOYMENT: Final = "LLMOPS_JUDGE_DEPLOYMENT"
ENV_JUDGE_TOKENS_PER_MINUTE: Final = "LLMOPS_JUDGE_TOKENS_PER_MINUTE"
#: Gateway mode: the serving endpoints the cluster's jobs call (no key in their environment).
ENV_GATEWAY_ENDPOINT: Final = "LLMOPS_GATEWAY_ENDPOINT"
ENV_GATEWAY_JUDGE_ENDPOINT: Final = "LLMOPS_GATEWAY_JUDGE_ENDPOINT"
#: ``gateway`` or ``direct``: which way the workload reaches the model (``--via`` wins).
ENV_VIA: Final = "LLMOPS_VIA"
#: The lab's prompt in the Prompt Registry (``--prompt-name`` wins; else the output
#: ``mlflow_prompt_name``): the jobs' environment names the Unity Catalog prompt.
ENV_PROMPT_NAME: Final = "LLMOPS_PROMPT_NAME"

# --- inside the workspace ---------------------------------------------------------------------
#: The secret's key in the scope (key mode).
OPENAI_KEY_SECRET: Final = "azure-openai-api-key"
#: The workload's distribution (pyproject.toml's ``[project] name``): the jobs'
#: ``python_wheel_task.package_name``.
WORKLOAD_DISTRIBUTION: Final = "llmops-workload"
#: The wheel's entry point the jobs run (``python_wheel_task.entry_point``, a console script
#: in pyproject.toml): ``workload.job_entry:run``. Its arguments are :func:`job_parameters`.
JOB_ENTRY_POINT: Final = "llmops-workload-job"
#: Serverless jobs, key mode: ``<scope>/<key>`` of the secret holding the key, which the
#: workload reads at run time with ``dbutils.secrets`` (the value is never in a job).
ENV_API_KEY_SECRET: Final = "LLMOPS_API_KEY_SECRET"


def job_parameters(command: Sequence[str], settings: Mapping[str, str] | None = None) -> list[str]:
    """A job's arguments to :data:`JOB_ENTRY_POINT`: each setting as ``NAME=VALUE`` (sorted;
    serverless jobs have no cluster environment), then the command line
    (``["AZURE_OPENAI_ENDPOINT=https://...", "chat"]``); ``job_entry.main`` reads them so."""
    return [f"{name}={value}" for name, value in sorted((settings or {}).items())] + list(command)


#: The lab's prompt's own name in the Prompt Registry: the whole name on a local store, the
#: last of three in Unity Catalog (``<catalog>.<schema>.lab_chat``, the output
#: ``mlflow_prompt_name``).
LAB_PROMPT: Final = "lab_chat"


#: The workload's folder in the deploying user's home (the jobs run as that user).
WORKLOAD_FOLDER: Final = "llmops-workload"

# --- shared wording ---------------------------------------------------------------------------
#: What ``pulumi stack output --json`` (and every command here) shows instead of a secret.
SECRET_MASK: Final = "[secret]"
#: The project folder (``Pulumi.yaml``): the parent of this package.
PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
