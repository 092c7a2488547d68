"""The stack outputs: the one contract between the infrastructure and the workload.

``llmops_infra`` exports exactly these names and ``workload`` reads them, so the
names live here, in a module with no Pulumi dependency (the workload must run
where Pulumi is not installed). DESIGN.md fixes them: add, never rename.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CORE_OUTPUTS",
    "DATABRICKS_CHAT_JOB_ID",
    "DATABRICKS_CLUSTER_ID",
    "DATABRICKS_MONITOR_JOB_ID",
    "DATABRICKS_SECRET_SCOPE",
    "DATABRICKS_WORKSPACE_RESOURCE_ID",
    "DATABRICKS_WORKSPACE_URL",
    "LAB_OUTPUTS",
    "MLFLOW_EXPERIMENT_PATH",
    "OPENAI_ACCOUNT_NAME",
    "OPENAI_API_KEY",
    "OPENAI_API_VERSION",
    "OPENAI_DEPLOYMENT",
    "OPENAI_ENDPOINT",
    "REGION",
    "RESOURCE_GROUP_NAME",
    "SECRET_OUTPUTS",
    "STACK_OUTPUTS",
]

RESOURCE_GROUP_NAME: Final = "resource_group_name"
REGION: Final = "region"
OPENAI_ACCOUNT_NAME: Final = "openai_account_name"
OPENAI_ENDPOINT: Final = "openai_endpoint"
OPENAI_API_KEY: Final = "openai_api_key"
OPENAI_API_VERSION: Final = "openai_api_version"
OPENAI_DEPLOYMENT: Final = "openai_deployment"
DATABRICKS_WORKSPACE_URL: Final = "databricks_workspace_url"
DATABRICKS_WORKSPACE_RESOURCE_ID: Final = "databricks_workspace_resource_id"
DATABRICKS_CLUSTER_ID: Final = "databricks_cluster_id"
# Issue 6: the lab inside the workspace.
MLFLOW_EXPERIMENT_PATH: Final = "mlflow_experiment_path"
DATABRICKS_SECRET_SCOPE: Final = "databricks_secret_scope"
DATABRICKS_CHAT_JOB_ID: Final = "databricks_chat_job_id"
DATABRICKS_MONITOR_JOB_ID: Final = "databricks_monitor_job_id"

#: The ten outputs DESIGN.md fixes, in its order.
CORE_OUTPUTS: Final[tuple[str, ...]] = (
    RESOURCE_GROUP_NAME,
    REGION,
    OPENAI_ACCOUNT_NAME,
    OPENAI_ENDPOINT,
    OPENAI_API_KEY,
    OPENAI_API_VERSION,
    OPENAI_DEPLOYMENT,
    DATABRICKS_WORKSPACE_URL,
    DATABRICKS_WORKSPACE_RESOURCE_ID,
    DATABRICKS_CLUSTER_ID,
)

#: What the workspace holds for the lab (issue 6): experiment, secret scope, jobs.
LAB_OUTPUTS: Final[tuple[str, ...]] = (
    MLFLOW_EXPERIMENT_PATH,
    DATABRICKS_SECRET_SCOPE,
    DATABRICKS_CHAT_JOB_ID,
    DATABRICKS_MONITOR_JOB_ID,
)

#: Every output the program exports, in this order: DESIGN.md's, then the lab's.
STACK_OUTPUTS: Final[tuple[str, ...]] = CORE_OUTPUTS + LAB_OUTPUTS

#: Outputs exported as Pulumi secrets (never printed in clear).
SECRET_OUTPUTS: Final[frozenset[str]] = frozenset({OPENAI_API_KEY})
