"""The whole lab as one Pulumi program: configuration -> components -> exports.

The region and a name suffix are drawn once by pulumi-random and kept in the
stack's state, so a second ``pulumi up`` changes nothing; the program itself
uses no randomness and no clock.
"""

from __future__ import annotations

import re

import pulumi
import pulumi_random as random
from pulumi_azure_native import authorization, resources

from llmops_infra.errors import ConfigError
from llmops_infra.purge import DeletedAccountPurge, DeletedAccountPurgeArgs
from llmops_infra.stack.azure_identity import AzureIdentity
from llmops_infra.stack.azure_openai import AzureOpenAI, AzureOpenAIArgs, DeploymentArgs
from llmops_infra.stack.cluster import LabCluster, LabClusterArgs
from llmops_infra.stack.config import NAMESPACE, LlmopsConfig, parse_config, undeclared_keys
from llmops_infra.stack.lab_credential import LabCredential, LabCredentialArgs
from llmops_infra.stack.lab_environment import (
    KeyAccess,
    KeylessAccess,
    LabEnvironment,
    LabEnvironmentArgs,
)
from llmops_infra.stack.lab_jobs import LabJobs, LabJobsArgs
from llmops_infra.stack.workspace import DatabricksWorkspace, DatabricksWorkspaceArgs
from workload import contract

__all__ = ["deploy", "load_config", "main", "name_base"]


def load_config() -> LlmopsConfig:
    """The stack's validated settings; bad values stop the program with one message, and a
    key ``Pulumi.yaml`` does not declare (a typo, most often) is a warning naming the
    closest declared key."""
    from pulumi.runtime.config import CONFIG, get_config_env

    for line in undeclared_keys([*CONFIG.get(), *get_config_env()]):
        pulumi.log.warn(line)
    try:
        return parse_config(pulumi.Config(NAMESPACE).get)
    except ConfigError as err:
        # RunError: Pulumi prints the message alone, without a Python traceback.
        raise pulumi.RunError(f"invalid stack configuration: {err}") from None


def name_base(project: str, stack: str) -> str:
    """``<project>-<stack>`` reduced to what every Azure name here accepts."""
    base = re.sub(r"[^a-z0-9]+", "-", f"{project}-{stack}".lower()).strip("-")
    return base[:36].rstrip("-") or "llmops"


def deploy(config: LlmopsConfig) -> None:
    """Create the lab's resources and export the outputs of ``workload.contract``."""
    base = name_base(pulumi.get_project(), pulumi.get_stack())

    # Globally unique names (the endpoint's subdomain) need a suffix that never changes.
    suffix = random.RandomString(
        "name-suffix", length=6, special=False, upper=False, numeric=True, lower=True
    ).result

    if config.region is not None:
        region: pulumi.Output[str] = pulumi.Output.from_input(config.region)
    else:
        # [リージョン]: drawn at random once, then kept in state for the stack's life.
        draw = random.RandomShuffle("region", inputs=list(config.allowed_regions), result_count=1)
        region = draw.results.apply(lambda results: results[0])

    group = resources.ResourceGroup(
        "resource-group",
        resource_group_name=suffix.apply(lambda s: f"rg-{base}-{s}"),
        location=region,
        tags=dict(config.tags),
    )

    client = authorization.get_client_config_output()
    subscription_id = client.subscription_id
    identity = AzureIdentity.from_stack_config()
    keyless = config.auth_mode == "entra"
    account_name = suffix.apply(lambda s: f"oai-{base}-{s}")
    # The account depends on the purge, so `pulumi destroy` deletes the account first
    # and then purges it from the soft-deleted accounts, freeing its name and quota.
    purge: tuple[pulumi.Resource, ...] = ()
    if config.purge_on_destroy:
        purge = (
            DeletedAccountPurge(
                "openai-account-purge",
                DeletedAccountPurgeArgs(
                    subscription_id=subscription_id,
                    resource_group_name=group.name,
                    location=region,
                    account_name=account_name,
                ),
            ),
        )

    # [Azure OpenAI リソース] and [必要なモデルをデプロイする]
    judge = (
        DeploymentArgs(
            name=config.judge_model,
            model_name=config.judge_model,
            model_version=config.judge_model_version,
            capacity=config.judge_capacity,
        )
        if config.judge_model is not None
        else None
    )
    openai = AzureOpenAI(
        "openai",
        AzureOpenAIArgs(
            resource_group_name=group.name,
            location=region,
            account_name=account_name,
            chat=DeploymentArgs(
                name=config.deployment_name,
                model_name=config.model_name,
                model_version=config.model_version,
                capacity=config.capacity,
            ),
            judge=judge,
            auth_mode=config.auth_mode,
            subscription_id=subscription_id,
            deployer_object_id=client.object_id,
            deployer_principal_type=(
                config.deployer_principal_type or identity.principal_type(client.client_id)
            ),
            tags=config.tags,
            depends_on=purge,
        ),
    )

    # [Azure Databricks ワークスペース], signed in to as the identity that deploys the stack.
    workspace = DatabricksWorkspace(
        "databricks",
        DatabricksWorkspaceArgs(
            resource_group_name=group.name,
            location=region,
            workspace_name=suffix.apply(lambda s: f"dbw-{base}-{s}"),
            managed_resource_group_id=pulumi.Output.all(subscription_id, suffix).apply(
                lambda a: f"/subscriptions/{a[0]}/resourceGroups/rg-{base}-{a[1]}-dbw-managed"
            ),
            sku=config.workspace_sku,
            identity=identity,
            tags=config.tags,
        ),
    )
    in_workspace = pulumi.ResourceOptions(provider=workspace.provider)

    access: KeyAccess | KeylessAccess
    credential_name: pulumi.Output[str] = pulumi.Output.from_input("")
    if keyless:
        # Keyless: the cluster reaches the model as a managed identity through Unity Catalog.
        credential = LabCredential(
            "databricks-credential",
            LabCredentialArgs(
                resource_group_name=group.name,
                location=region,
                connector_name=suffix.apply(lambda s: f"dbac-{base}-{s}"),
                # Unique across the region's metastore, which other workspaces share.
                credential_name=suffix.apply(lambda s: f"{base}-{s}-openai".replace("-", "_")),
                subscription_id=subscription_id,
                account_id=openai.account_id,
                provider=workspace.provider,
                tags=config.tags,
            ),
        )
        credential_name = credential.credential_name
        access = KeylessAccess(service_credential=credential_name)
    else:
        assert openai.api_key is not None  # key mode lists the key
        access = KeyAccess(secret_scope=config.secret_scope, api_key=openai.api_key)

    # [MLflow を使用して LLM をログする]: the lab's first cell, done once for good.
    lab = LabEnvironment(
        "databricks-lab",
        LabEnvironmentArgs(
            access=access,
            endpoint=openai.endpoint,
            api_version=config.openai_api_version,
            # The configured names, not the Deployments' outputs: the cluster need not
            # wait for the model deployments.
            deployment=config.deployment_name,
            experiment_path=config.experiment_path,
            tokens_per_minute=config.capacity * 1000,
            judge_deployment=config.judge_model or "",
            judge_tokens_per_minute=config.judge_capacity * 1000 if config.judge_model else 0,
        ),
        opts=in_workspace,
    )

    # [クラスターの作成]
    cluster = LabCluster(
        "databricks-cluster",
        LabClusterArgs(
            user_name=workspace.user_name,
            spark_version=config.spark_version,
            node_type=config.node_type,
            autotermination_minutes=config.autotermination_minutes,
            spark_env_vars=lab.spark_env_vars,
            libraries=lab.libraries,
            tags=config.tags,
            no_wait=config.cluster_no_wait,
            # A cluster whose secret does not exist yet fails to start.
            starts_after=[lab.key_secret] if lab.key_secret is not None else [],
        ),
        opts=in_workspace,
    )

    # The lab's call, its monitor and its evaluation as jobs on the cluster.
    jobs = LabJobs(
        "databricks-jobs",
        LabJobsArgs(
            cluster_id=cluster.cluster_id,
            folder=workspace.home.apply(lambda home: f"{home}/{contract.WORKLOAD_FOLDER}"),
        ),
        opts=in_workspace,
    )

    exports: dict[str, pulumi.Input[str] | pulumi.Input[int] | None] = {
        contract.RESOURCE_GROUP_NAME: group.name,
        contract.REGION: region,
        contract.OPENAI_ACCOUNT_NAME: openai.account_name,
        contract.OPENAI_ENDPOINT: openai.endpoint,
        contract.OPENAI_API_KEY: openai.api_key,
        contract.OPENAI_API_VERSION: config.openai_api_version,
        contract.OPENAI_DEPLOYMENT: openai.deployment_name,
        contract.OPENAI_AUTH_MODE: config.auth_mode,
        contract.OPENAI_TOKENS_PER_MINUTE: config.capacity * 1000,
        contract.OPENAI_JUDGE_DEPLOYMENT: openai.judge_deployment_name,
        contract.OPENAI_JUDGE_TOKENS_PER_MINUTE: (
            config.judge_capacity * 1000 if config.judge_model else 0
        ),
        contract.DATABRICKS_WORKSPACE_URL: workspace.workspace_url,
        contract.DATABRICKS_WORKSPACE_RESOURCE_ID: workspace.workspace_resource_id,
        contract.DATABRICKS_CLUSTER_ID: cluster.cluster_id,
        contract.MLFLOW_EXPERIMENT_PATH: lab.experiment_path,
        contract.DATABRICKS_SECRET_SCOPE: lab.secret_scope,
        contract.DATABRICKS_SERVICE_CREDENTIAL: credential_name,
        contract.DATABRICKS_CHAT_JOB_ID: jobs.chat_job_id,
        contract.DATABRICKS_MONITOR_JOB_ID: jobs.monitor_job_id,
        contract.DATABRICKS_EVAL_JOB_ID: jobs.eval_job_id,
        contract.DATABRICKS_COMPUTE: "cluster",
        contract.DATABRICKS_SERVING_ENDPOINT: "",
        contract.DATABRICKS_JUDGE_SERVING_ENDPOINT: "",
        contract.DATABRICKS_GATEWAY_TOKENS_PER_MINUTE: 0,
    }
    for name in contract.ALL_OUTPUTS:
        # Keyless stacks have no key and no secret scope: those outputs are not exported.
        if exports[name] is not None and not (keyless and name in contract.KEY_MODE_OUTPUTS):
            pulumi.export(name, exports[name])


def main() -> None:
    """The program ``pulumi up`` runs."""
    deploy(load_config())
