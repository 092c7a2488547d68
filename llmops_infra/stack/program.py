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
from llmops_infra.stack.azure_identity import AzureIdentity, deployer_principal_type
from llmops_infra.stack.azure_openai import AzureOpenAI, AzureOpenAIArgs, DeploymentArgs
from llmops_infra.stack.cluster import LabCluster, LabClusterArgs
from llmops_infra.stack.config import (
    NAMESPACE,
    LlmopsConfig,
    PrincipalType,
    parse_config,
    undeclared_keys,
)
from llmops_infra.stack.estate import (
    look_up_group,
    look_up_workspace,
    network_refusal,
    workspace_problem,
)
from llmops_infra.stack.gateway import (
    GatewayDeployment,
    LabGateway,
    LabGatewayArgs,
    endpoint_name,
    secret_reference,
)
from llmops_infra.stack.lab_credential import (
    ExistingCredential,
    LabCredential,
    LabCredentialArgs,
    after,
    unity_catalog_metastore,
)
from llmops_infra.stack.lab_environment import (
    KeyAccess,
    KeylessAccess,
    LabEnvironment,
    LabEnvironmentArgs,
    pinned_requirements,
)
from llmops_infra.stack.lab_jobs import ClusterCompute, LabJobs, LabJobsArgs, ServerlessCompute
from llmops_infra.stack.network import PrivateNetwork, PrivateNetworkArgs
from llmops_infra.stack.prompt_schema import PromptSchema, PromptSchemaArgs
from llmops_infra.stack.region_features import (
    draw_candidates,
    draw_problem,
    region_problem,
    region_warning,
)
from llmops_infra.stack.workload_wheel import WheelBuildError, build_wheel, dependency_names
from llmops_infra.stack.workspace import (
    DatabricksWorkspace,
    DatabricksWorkspaceArgs,
    ExistingWorkspaceArgs,
)
from workload import contract

__all__ = ["deploy", "load_config", "main", "name_base", "refuse_service_principal_credential"]


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


def _usable(config: LlmopsConfig, region: str) -> str:
    """The drawn region, or stop: every Azure and Databricks resource waits for this.

    A deployed stack keeps the region it drew even when the options or ``allowedRegions``
    changed since, so an option added later that the region lacks stops here, before
    anything changes.
    """
    problem = region_problem(config, region)
    if problem is not None:
        raise pulumi.RunError(f"the drawn {problem}")
    if region not in config.allowed_regions:
        pulumi.log.warn(
            f"the stack keeps the region it drew, {region}, which llmops:allowedRegions no "
            "longer lists: the draw is made once and never moves a deployed stack. To move "
            "it, set llmops:region (every region-bound resource is then replaced)"
        )
    if warning := region_warning(config, region):
        pulumi.log.warn(warning)
    return region


def refuse_service_principal_credential(config: LlmopsConfig, deployer: PrincipalType) -> None:
    """Stop a keyless deploy by a service principal that would have to create the credential.

    Only an account admin may create a Unity Catalog service credential, and CREATE
    SERVICE CREDENTIAL cannot be delegated to a service principal (Microsoft Learn,
    "Manage access to external cloud services using service credentials", read
    2026-12-05): ``up`` would fail at the credential, after the connector, both role
    assignments and the account's key access were already changed.
    """
    if config.auth_mode != "entra" or config.service_credential is not None:
        return
    if deployer == "ServicePrincipal":
        raise pulumi.RunError(
            "invalid stack configuration: a service principal deploys this keyless stack "
            "(llmops:authMode entra) and cannot create its Unity Catalog service credential "
            "(only a Databricks account admin can): have an account admin create an Access "
            "Connector and a service credential bound to it, then set llmops:serviceCredential "
            "to its name and llmops:accessConnectorId to the connector's resource id "
            "(docs/keyless.md)"
        )


def deploy(config: LlmopsConfig) -> None:
    """Create the lab's resources and export the outputs of ``workload.contract``."""
    keyless = config.auth_mode == "entra"
    # Read once, before anything is registered: the deployer's role states it, and a
    # service principal may not be able to finish a keyless stack at all.
    deployer = deployer_principal_type(config.deployer_principal_type) if keyless else "User"
    refuse_service_principal_credential(config, deployer)
    base = name_base(pulumi.get_project(), pulumi.get_stack())
    # Into an existing estate: looked up first, so a group or workspace that is missing or
    # cannot hold the lab stops the program before anything is registered.
    if refusal := network_refusal(config.workspace_resource_id, config.network):
        raise pulumi.RunError(refusal)
    if config.resource_group_name is not None:
        look_up_group(config.resource_group_name)
    existing = (
        look_up_workspace(config.workspace_resource_id)
        if config.workspace_resource_id is not None
        else None
    )
    if existing is not None and (problem := workspace_problem(config, existing)):
        raise pulumi.RunError(problem)
    if existing is None and config.region is not None:
        if problem := region_problem(config, config.region):
            # A pinned region without a feature an option needs: stop before anything.
            raise pulumi.RunError(problem)
        if warning := region_warning(config, config.region):
            pulumi.log.warn(warning)
    if existing is not None and (
        warning := region_warning(config, existing.location) if existing.location else None
    ):
        pulumi.log.warn(warning)
    if existing is None and config.region is None and (problem := draw_problem(config)):
        # No allowed region offers what the options need: nothing to draw from.
        raise pulumi.RunError(problem)
    # Gateway mode: the endpoints' names come from the configured deployment names (checked
    # before anything is created), so the cluster need not wait for the endpoints.
    chat_endpoint = endpoint_name(config.deployment_name) if config.gateway else ""
    judge_endpoint = (
        endpoint_name(config.judge_model, "judgeModel")
        if config.gateway and config.judge_model
        else ""
    )

    # Globally unique names (the endpoint's subdomain) need a suffix that never changes.
    suffix = random.RandomString(
        "name-suffix", length=6, special=False, upper=False, numeric=True, lower=True
    ).result

    region: pulumi.Output[str]
    if existing is not None:
        # The workspace's region (the lab keeps the account beside it): no draw is made.
        # Unknown only where the lookup cannot say (the offline plan): known after up.
        region = existing.region()
    elif config.region is not None:
        region = pulumi.Output.from_input(config.region)
    else:
        # [リージョン]: drawn at random once, then kept in state for the stack's life, among
        # the allowed regions that offer what the options need when it is first made (the
        # lab's four, as before, when no option needs what one of them lacks). Its inputs'
        # later changes (options, allowedRegions) are ignored: a new list would redraw the
        # region and replace every resource of a deployed stack.
        draw = random.RandomShuffle(
            "region",
            inputs=list(draw_candidates(config)),
            result_count=1,
            opts=pulumi.ResourceOptions(ignore_changes=["inputs"]),
        )
        region = draw.results.apply(lambda results: _usable(config, results[0]))

    group_name: pulumi.Output[str]
    if config.resource_group_name is not None:
        # An existing group: never a resource of the stack, so `destroy` leaves it.
        group_name = pulumi.Output.from_input(config.resource_group_name)
    else:
        group_name = resources.ResourceGroup(
            "resource-group",
            resource_group_name=suffix.apply(lambda s: f"rg-{base}-{s}"),
            location=region,
            tags=dict(config.tags),
        ).name

    client = authorization.get_client_config_output()
    subscription_id = client.subscription_id
    identity = AzureIdentity.from_stack_config()
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
                    resource_group_name=group_name,
                    location=region,
                    account_name=account_name,
                ),
            ),
        )

    # Private mode: the network the workspace is injected into and the account is reached in.
    private = (
        PrivateNetwork(
            "network",
            PrivateNetworkArgs(
                resource_group_name=group_name,
                location=region,
                network_name=suffix.apply(lambda s: f"vnet-{base}-{s}"),
                security_group_name=suffix.apply(lambda s: f"nsg-{base}-{s}"),
                address_space=config.vnet_address_space,
                allowed_ip_ranges=config.allowed_ip_ranges,
                tags=config.tags,
            ),
        )
        if config.network == "private"
        else None
    )

    # [Azure Databricks ワークスペース], signed in to as the identity that deploys the stack.
    workspace_args: DatabricksWorkspaceArgs | ExistingWorkspaceArgs
    if existing is not None:
        workspace_args = ExistingWorkspaceArgs(
            resource_id=existing.resource_id,
            url=existing.workspace_url(),
            identity=identity,
        )
    else:
        workspace_args = DatabricksWorkspaceArgs(
            resource_group_name=group_name,
            location=region,
            workspace_name=suffix.apply(lambda s: f"dbw-{base}-{s}"),
            managed_resource_group_id=pulumi.Output.all(subscription_id, suffix).apply(
                lambda a: f"/subscriptions/{a[0]}/resourceGroups/rg-{base}-{a[1]}-dbw-managed"
            ),
            sku=config.workspace_sku,
            identity=identity,
            tags=config.tags,
            network=private,
        )
    workspace = DatabricksWorkspace("databricks", workspace_args)
    in_workspace = pulumi.ResourceOptions(provider=workspace.provider)
    # Keyless needs Unity Catalog: the workspace's metastore is asked first, and every
    # keyless resource (both role assignments, the connector, the credential) waits for it.
    metastore_id = unity_catalog_metastore(workspace.provider) if keyless else None

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
            resource_group_name=group_name,
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
            deployer_object_id=(
                after(metastore_id, client.object_id)
                if metastore_id is not None
                else client.object_id
            ),
            deployer_principal_type=deployer,
            tags=config.tags,
            depends_on=purge,
            network=private,
        ),
    )

    access: KeyAccess | KeylessAccess
    credential_name: pulumi.Output[str] = pulumi.Output.from_input("")
    if metastore_id is not None:
        # Keyless: the cluster reaches the model as a managed identity through Unity Catalog.
        credential = LabCredential(
            "databricks-credential",
            LabCredentialArgs(
                resource_group_name=group_name,
                location=region,
                connector_name=suffix.apply(lambda s: f"dbac-{base}-{s}"),
                # Unique across the region's metastore, which other workspaces share.
                credential_name=suffix.apply(lambda s: f"{base}-{s}-openai".replace("-", "_")),
                subscription_id=subscription_id,
                account_id=openai.account_id,
                provider=workspace.provider,
                metastore_id=metastore_id,
                existing=(
                    ExistingCredential(config.service_credential, config.access_connector_id)
                    if config.service_credential and config.access_connector_id
                    else None
                ),
                tags=config.tags,
            ),
        )
        credential_name = credential.credential_name
        access = KeylessAccess(service_credential=credential_name)
    else:
        assert openai.api_key is not None  # key mode lists the key
        access = KeyAccess(secret_scope=config.secret_scope, api_key=openai.api_key)

    chat_tpm = config.capacity * 1000
    judge_tpm = config.judge_capacity * 1000 if config.judge_model else 0
    # What one caller may use through the gateway: the per-user limit when set (config
    # keeps it within each deployment's), else the deployment's.
    gateway_tpm = (config.gateway_user_tokens_per_minute or chat_tpm) if config.gateway else 0
    gateway_judge_tpm = (config.gateway_user_tokens_per_minute or judge_tpm) if judge_tpm else 0

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
            # workload eval on the cluster paces by these: in gateway mode, the budget its
            # own identity has at the gateway.
            tokens_per_minute=gateway_tpm or chat_tpm,
            judge_deployment=config.judge_model or "",
            judge_tokens_per_minute=gateway_judge_tpm if config.gateway else judge_tpm,
            gateway_endpoint=chat_endpoint,
            gateway_judge_endpoint=judge_endpoint,
            prompt_name=_prompt_name(config),
        ),
        opts=in_workspace,
    )

    # The lab's prompt in Unity Catalog's Prompt Registry, when the stack names a catalog.
    prompt_name: pulumi.Input[str] = ""
    if config.catalog is not None:
        prompts = PromptSchema(
            "databricks-prompts",
            PromptSchemaArgs(catalog=config.catalog, schema=config.schema),
            opts=in_workspace,
        )
        prompt_name = prompts.prompt_name

    if config.gateway:
        assert lab.key_secret is not None  # the gateway is key mode only (config refuses entra)
        gateway = _gateway(config, openai.endpoint, lab.key_secret, in_workspace)
        chat_endpoint_output: pulumi.Input[str] = gateway.chat_endpoint
        judge_endpoint_output: pulumi.Input[str] = gateway.judge_endpoint
    else:
        chat_endpoint_output = judge_endpoint_output = ""

    # The workload as one wheel, built here from this folder (reproducibly: the same
    # sources give the same bytes, so a second `up` uploads nothing).
    try:
        wheel = build_wheel()
    except WheelBuildError as err:
        raise pulumi.RunError(str(err)) from None

    compute: ClusterCompute | ServerlessCompute
    cluster_id: pulumi.Input[str] = ""
    if config.compute == "cluster":
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
        cluster_id = cluster.cluster_id
        compute = ClusterCompute(cluster_id=cluster_id)
    else:
        # The lab as it runs today: serverless compute, no cluster. The jobs get the
        # cluster's settings as parameters and install the wheel with pinned versions.
        compute = ServerlessCompute(
            settings=lab.job_settings,
            dependencies=pinned_requirements(dependency_names()),
        )

    # The lab's call, its monitor and its evaluation as jobs.
    jobs = LabJobs(
        "databricks-jobs",
        LabJobsArgs(
            compute=compute,
            folder=workspace.home.apply(lambda home: f"{home}/{contract.WORKLOAD_FOLDER}"),
            wheel=wheel,
            monitor_schedule=config.monitor_schedule,
        ),
        opts=in_workspace,
    )

    exports: dict[str, pulumi.Input[str] | pulumi.Input[int] | None] = {
        contract.RESOURCE_GROUP_NAME: group_name,
        contract.REGION: region,
        contract.OPENAI_ACCOUNT_NAME: openai.account_name,
        contract.OPENAI_ENDPOINT: openai.endpoint,
        contract.OPENAI_API_KEY: openai.api_key,
        contract.OPENAI_API_VERSION: config.openai_api_version,
        contract.OPENAI_DEPLOYMENT: openai.deployment_name,
        contract.OPENAI_AUTH_MODE: config.auth_mode,
        contract.OPENAI_TOKENS_PER_MINUTE: chat_tpm,
        contract.OPENAI_JUDGE_DEPLOYMENT: openai.judge_deployment_name,
        contract.OPENAI_JUDGE_TOKENS_PER_MINUTE: judge_tpm,
        contract.DATABRICKS_WORKSPACE_URL: workspace.workspace_url,
        contract.DATABRICKS_WORKSPACE_RESOURCE_ID: workspace.workspace_resource_id,
        contract.DATABRICKS_CLUSTER_ID: cluster_id,
        contract.MLFLOW_EXPERIMENT_PATH: lab.experiment_path,
        contract.DATABRICKS_SECRET_SCOPE: lab.secret_scope,
        contract.DATABRICKS_SERVICE_CREDENTIAL: credential_name,
        contract.DATABRICKS_CHAT_JOB_ID: jobs.chat_job_id,
        contract.DATABRICKS_MONITOR_JOB_ID: jobs.monitor_job_id,
        contract.DATABRICKS_EVAL_JOB_ID: jobs.eval_job_id,
        contract.DATABRICKS_COMPUTE: config.compute,
        contract.DATABRICKS_SERVING_ENDPOINT: chat_endpoint_output,
        contract.DATABRICKS_JUDGE_SERVING_ENDPOINT: judge_endpoint_output,
        contract.DATABRICKS_GATEWAY_TOKENS_PER_MINUTE: gateway_tpm,
        contract.MLFLOW_PROMPT_NAME: prompt_name,
        contract.NETWORK: config.network,
        contract.VIRTUAL_NETWORK_ID: private.virtual_network_id if private is not None else "",
    }
    for name in contract.ALL_OUTPUTS:
        # Keyless stacks have no key and no secret scope: those outputs are not exported.
        if exports[name] is not None and not (keyless and name in contract.KEY_MODE_OUTPUTS):
            pulumi.export(name, exports[name])


def _prompt_name(config: LlmopsConfig) -> str:
    """The configured ``<catalog>.<schema>.lab_chat`` for the jobs' environment ("" without a
    catalog): the configured name, so the cluster need not wait for the schema."""
    if config.catalog is None:
        return ""
    return f"{config.catalog}.{config.schema}.{contract.LAB_PROMPT}"


def _gateway(
    config: LlmopsConfig,
    openai_endpoint: pulumi.Input[str],
    key_secret: pulumi.Resource,
    opts: pulumi.ResourceOptions,
) -> LabGateway:
    """The serving endpoints with AI Gateway, each limited by its own deployment."""
    judge = (
        GatewayDeployment(
            deployment=config.judge_model,
            model=config.judge_model,
            tokens_per_minute=config.judge_capacity * 1000,
            user_tokens_per_minute=config.gateway_user_tokens_per_minute,
        )
        if config.judge_model is not None
        else None
    )
    catalog, _, schema = config.inference_table.partition(".")
    return LabGateway(
        "databricks-gateway",
        LabGatewayArgs(
            openai_endpoint=openai_endpoint,
            api_version=config.openai_api_version,
            key_reference=secret_reference(config.secret_scope, contract.OPENAI_KEY_SECRET),
            key_secret=key_secret,
            chat=GatewayDeployment(
                deployment=config.deployment_name,
                model=config.model_name,
                tokens_per_minute=config.capacity * 1000,
                user_tokens_per_minute=config.gateway_user_tokens_per_minute,
            ),
            judge=judge,
            guardrails=config.gateway_guardrails,
            inference_table=(catalog, schema) if config.inference_table else None,
        ),
        opts=opts,
    )


def main() -> None:
    """The program ``pulumi up`` runs."""
    deploy(load_config())
