"""The contract names (docs/reference.md), pinned as literals: renaming any of them fails here."""

from __future__ import annotations

from workload import contract

#: docs/reference.md, "Stack outputs", in its order. Add, never rename.
DESIGN_OUTPUTS = (
    "resource_group_name",
    "region",
    "openai_account_name",
    "openai_endpoint",
    "openai_api_key",
    "openai_api_version",
    "openai_deployment",
    "openai_auth_mode",
    "openai_tokens_per_minute",
    "openai_judge_deployment",
    "openai_judge_tokens_per_minute",
    "databricks_workspace_url",
    "databricks_workspace_resource_id",
    "databricks_cluster_id",
    "mlflow_experiment_path",
    "databricks_secret_scope",
    "databricks_service_credential",
    "databricks_chat_job_id",
    "databricks_monitor_job_id",
    "databricks_eval_job_id",
    "databricks_compute",
    "databricks_serving_endpoint",
    "databricks_judge_serving_endpoint",
    "databricks_gateway_tokens_per_minute",
    "mlflow_prompt_name",
    "network",
    "virtual_network_id",
)


def test_the_contract_holds_every_output_design_names_and_no_other() -> None:
    assert contract.ALL_OUTPUTS == DESIGN_OUTPUTS, "the documented output names, in their order"


def test_only_the_key_is_secret_and_only_key_mode_has_a_key_and_scope() -> None:
    assert {"openai_api_key"} == contract.SECRET_OUTPUTS
    assert {"openai_api_key", "databricks_secret_scope"} == contract.KEY_MODE_OUTPUTS


def test_the_cluster_environment_names_are_design_s() -> None:
    assert (
        contract.ENV_ENDPOINT,
        contract.ENV_API_KEY,
        contract.ENV_API_VERSION,
        contract.ENV_DEPLOYMENT,
        contract.ENV_AD_TOKEN,
        contract.ENV_EXPERIMENT,
        contract.ENV_AUTH_MODE,
        contract.ENV_SERVICE_CREDENTIAL,
        contract.ENV_TOKENS_PER_MINUTE,
        contract.ENV_JUDGE_DEPLOYMENT,
        contract.ENV_JUDGE_TOKENS_PER_MINUTE,
    ) == (
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_API_VERSION",
        "AZURE_OPENAI_DEPLOYMENT",
        "AZURE_OPENAI_AD_TOKEN",
        "MLFLOW_EXPERIMENT_NAME",
        "LLMOPS_AUTH_MODE",
        "LLMOPS_SERVICE_CREDENTIAL",
        "LLMOPS_TOKENS_PER_MINUTE",
        "LLMOPS_JUDGE_DEPLOYMENT",
        "LLMOPS_JUDGE_TOKENS_PER_MINUTE",
    )


def test_the_gateway_and_via_environment_names_are_design_s() -> None:
    assert (
        contract.ENV_GATEWAY_ENDPOINT,
        contract.ENV_GATEWAY_JUDGE_ENDPOINT,
        contract.ENV_VIA,
    ) == (
        "LLMOPS_GATEWAY_ENDPOINT",
        "LLMOPS_GATEWAY_JUDGE_ENDPOINT",
        "LLMOPS_VIA",
    )


def test_the_wheel_jobs_names_are_pinned() -> None:
    assert contract.WORKLOAD_DISTRIBUTION == "llmops-workload"
    assert contract.JOB_ENTRY_POINT == "llmops-workload-job"
    assert contract.ENV_API_KEY_SECRET == "LLMOPS_API_KEY_SECRET"
    assert contract.job_parameters(["chat"], {"B": "2", "A": "1"}) == ["A=1", "B=2", "chat"]


def test_the_prompt_name_variable_is_design_s() -> None:
    assert contract.ENV_PROMPT_NAME == "LLMOPS_PROMPT_NAME"
