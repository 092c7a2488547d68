"""The Pulumi program under mocks that act like the providers: what `pulumi up` would create."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from test_contract import DESIGN_OUTPUTS

from llmops_infra.errors import ConfigError
from llmops_infra.offline.engine import (
    FAKE_SUBSCRIPTION_ID,
    FAKE_USER,
    PROJECT_DIR,
    ProgramFailed,
    ProgramRun,
)
from llmops_infra.offline.stack_files import read_stack_config
from llmops_infra.stack.config import RULES, default_config, parse_config
from workload import contract

ACCOUNT = "azure-native:cognitiveservices:Account"
DEPLOYMENT = "azure-native:cognitiveservices:Deployment"
GROUP = "azure-native:resources:ResourceGroup"
WORKSPACE = "azure-native:databricks:Workspace"
CLUSTER = "databricks:index/cluster:Cluster"
PROVIDER = "pulumi:providers:databricks"
SHUFFLE = "random:index/randomShuffle:RandomShuffle"

Run = Callable[..., ProgramRun]


#: The lab's four regions (lab, "リージョン"), the default of llmops:allowedRegions.
LAB_REGIONS = ("eastus2", "northcentralus", "swedencentral", "switzerlandwest")


def test_creates_exactly_the_lab_resources(dev: ProgramRun) -> None:
    custom = sorted(r.type for r in dev.resources if r.custom)
    assert custom == sorted(
        [
            "random:index/randomString:RandomString",
            SHUFFLE,
            GROUP,
            ACCOUNT,
            DEPLOYMENT,
            WORKSPACE,
            PROVIDER,
            CLUSTER,
            # Issue 6: the lab inside the workspace (tests/test_workspace_lab.py).
            "databricks:index/secretScope:SecretScope",
            "databricks:index/secret:Secret",
            "databricks:index/mlflowExperiment:MlflowExperiment",
            "databricks:index/job:Job",
            "databricks:index/job:Job",
            "databricks:index/job:Job",
            # Issue 7: purges the soft-deleted account on destroy (tests/test_purge.py).
            "pulumi-python:dynamic/llmops:DeletedAccountPurge",
            # The workload, uploaded as one wheel for the jobs.
            "databricks:index/workspaceFile:WorkspaceFile",
        ]
    ), "one of each resource the lab creates by hand, plus the random draws and the lab's jobs"
    components = sorted(r.type for r in dev.resources if not r.custom)
    assert components == [
        "llmops:databricks:LabCluster",
        "llmops:databricks:LabEnvironment",
        "llmops:databricks:LabJobs",
        "llmops:databricks:Workspace",
        "llmops:openai:AzureOpenAI",
    ], "one component per lab step"


def test_openai_account_is_the_labs_s0_resource(dev: ProgramRun) -> None:
    account = dev.one(ACCOUNT).inputs
    group = dev.one(GROUP).outputs
    assert account["kind"] == "OpenAI"
    assert account["sku"] == {"name": "S0"}, "価格レベル: Standard S0"
    assert account["resourceGroupName"] == group["name"]
    assert account["location"] == dev.exports[contract.REGION].value
    assert account["properties"]["customSubDomainName"] == account["accountName"], (
        "the custom subdomain (the endpoint's host) is the account's unique name"
    )
    assert account["properties"]["publicNetworkAccess"] == "Enabled"
    assert "dynamicThrottlingEnabled" not in account["properties"], "dynamic quota never enabled"
    assert account["tags"] == {"purpose": "llmops-lab", "stack": "dev"}


def test_gpt4o_deployment_matches_the_lab(dev: ProgramRun) -> None:
    deployment = dev.one(DEPLOYMENT)
    account = dev.one(ACCOUNT)
    inputs = deployment.inputs
    assert inputs["deploymentName"] == "gpt-4o", "デプロイ名: gpt-4o"
    assert inputs["sku"] == {"name": "Standard", "capacity": 10}, "Standard, 10K TPM"
    model = inputs["properties"]["model"]
    assert model == {"format": "OpenAI", "name": "gpt-4o"}, "no version: Azure's default"
    assert inputs["properties"]["versionUpgradeOption"] == "OnceNewDefaultVersionAvailable"
    assert inputs["properties"]["raiPolicyName"] == "Microsoft.DefaultV2", "default content filter"
    assert "dynamicThrottlingEnabled" not in inputs["properties"]
    assert inputs["accountName"] == account.outputs["name"], "deployed into the account"
    assert account.urn in deployment.dependencies, "created after the account"
    assert deployment.parent == account.parent, "both belong to the OpenAI component"


def test_workspace_shares_group_and_region_with_its_own_managed_group(dev: ProgramRun) -> None:
    workspace = dev.one(WORKSPACE).inputs
    group = dev.one(GROUP).outputs
    assert workspace["sku"] == {"name": "premium"}
    assert workspace["computeMode"] == "Hybrid"
    assert workspace["resourceGroupName"] == group["name"]
    assert workspace["location"] == dev.one(ACCOUNT).inputs["location"] == group["location"]
    managed = workspace["managedResourceGroupId"]
    assert managed.startswith(f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/")
    assert managed.rsplit("/", 1)[1] != group["name"], "the managed group is a new, separate one"
    assert workspace["tags"] == {"purpose": "llmops-lab", "stack": "dev"}


def test_provider_is_bound_to_the_new_workspace(dev: ProgramRun) -> None:
    provider = dev.one(PROVIDER)
    workspace = dev.one(WORKSPACE)
    assert provider.inputs["host"] == "https://" + workspace.outputs["workspaceUrl"]
    assert provider.inputs["azureWorkspaceResourceId"] == workspace.id
    assert "token" not in provider.inputs, "Azure auth, never a personal access token"


def test_cluster_is_the_labs_single_node_ml_cluster(dev: ProgramRun) -> None:
    cluster = dev.one(CLUSTER)
    provider = dev.one(PROVIDER)
    inputs = cluster.inputs
    assert cluster.provider.startswith(provider.urn + "::"), "created in the new workspace"
    assert inputs["sparkVersion"] == "16.4.x-cpu-ml-scala2.12", "16.4 LTS ML, pinned"
    assert inputs["nodeTypeId"] == "Standard_D4ds_v5"
    assert inputs["runtimeEngine"] == "STANDARD", "Photon off"
    assert inputs["numWorkers"] == 0
    assert inputs["sparkConf"] == {
        "spark.databricks.cluster.profile": "singleNode",
        "spark.master": "local[*]",
    }
    assert inputs["customTags"]["ResourceClass"] == "SingleNode"
    assert inputs["customTags"]["purpose"] == "llmops-lab", "stack tags reach the cluster's VMs"
    assert inputs["dataSecurityMode"] == "SINGLE_USER"
    assert inputs["singleUserName"] == FAKE_USER
    assert inputs["clusterName"] == f"{FAKE_USER}'s cluster"
    assert inputs["autoterminationMinutes"] == 30
    assert inputs["noWait"] is False, "pulumi up waits for RUNNING unless llmops:clusterNoWait"
    assert "policyId" not in inputs, "ポリシー: Unrestricted"


def test_children_are_parented_to_their_components(dev: ProgramRun) -> None:
    components = {r.name: r.urn for r in dev.resources if not r.custom}
    for resource in dev.resources:
        if resource.type in (ACCOUNT, DEPLOYMENT):
            assert resource.parent == components["openai"], resource.name
        if resource.type in (WORKSPACE, PROVIDER):
            assert resource.parent == components["databricks"], resource.name
        if resource.type == CLUSTER:
            assert resource.parent == components["databricks-cluster"], resource.name


def test_exports_exactly_the_contract_and_only_the_key_is_secret(dev: ProgramRun) -> None:
    assert tuple(dev.exports) == DESIGN_OUTPUTS, (
        "a key-mode stack exports the documented outputs by these names, in this order"
    )
    secret = {name for name, export in dev.exports.items() if export.secret}
    assert secret == {contract.OPENAI_API_KEY}
    values = {name: export.value for name, export in dev.exports.items()}
    account = dev.one(ACCOUNT).outputs
    workspace = dev.one(WORKSPACE)
    assert values[contract.RESOURCE_GROUP_NAME] == dev.one(GROUP).outputs["name"]
    assert values[contract.REGION] in LAB_REGIONS, "one of the lab's four"
    assert values[contract.OPENAI_ACCOUNT_NAME] == account["name"]
    # The account's own endpoint property (what Azure reports), not a URL the program builds.
    assert values[contract.OPENAI_ENDPOINT] == account["properties"]["endpoint"]
    assert dev.one(ACCOUNT).inputs["properties"]["customSubDomainName"] == account["name"], (
        "a custom subdomain: the endpoint is <name>.openai.azure.com, which Entra ID needs"
    )
    assert isinstance(values[contract.OPENAI_API_KEY], str) and values[contract.OPENAI_API_KEY]
    assert values[contract.OPENAI_API_VERSION] == "2024-05-01-preview"
    assert values[contract.OPENAI_DEPLOYMENT] == "gpt-4o"
    assert (
        values[contract.DATABRICKS_WORKSPACE_URL] == "https://" + workspace.outputs["workspaceUrl"]
    )
    assert values[contract.DATABRICKS_WORKSPACE_RESOURCE_ID] == workspace.id
    assert values[contract.DATABRICKS_CLUSTER_ID] == dev.one(CLUSTER).outputs["clusterId"]


def test_key_comes_from_the_created_account(dev: ProgramRun) -> None:
    calls = [i for i in dev.invokes if i.token == "azure-native:cognitiveservices:listAccountKeys"]
    assert len(calls) == 1
    assert calls[0].args == {
        "accountName": dev.one(ACCOUNT).outputs["name"],
        "resourceGroupName": dev.one(GROUP).outputs["name"],
    }


def test_the_region_is_pulumi_randoms_one_draw_from_the_allowed_regions(dev: ProgramRun) -> None:
    shuffle = dev.one(SHUFFLE)
    assert shuffle.inputs == {"inputs": list(LAB_REGIONS), "resultCount": 1}, (
        "one draw from the lab's four regions, by pulumi-random (kept in state)"
    )
    drawn = shuffle.outputs["results"][0]
    assert dev.exports[contract.REGION].value == drawn
    for type_ in (GROUP, ACCOUNT, WORKSPACE):
        assert dev.one(type_).inputs["location"] == drawn, f"{type_} is in the drawn region"


def test_pinned_region_moves_everything_and_draws_nothing(run: Run) -> None:
    pinned = run({"region": "swedencentral"})
    assert not pinned.by_type(SHUFFLE), "no random draw when the region is pinned"
    assert pinned.exports[contract.REGION].value == "swedencentral"
    for type_ in (GROUP, ACCOUNT, WORKSPACE):
        assert pinned.one(type_).inputs["location"] == "swedencentral", type_


def test_configured_values_reach_the_resources(run: Run) -> None:
    result = run(
        {
            "capacity": "25",
            "modelVersion": "2024-08-06",
            "deploymentName": "chat",
            "workspaceSku": "trial",
            "autoterminationMinutes": "120",
            "allowedRegions": '["eastus2"]',
            "tags": '{"owner": "ml-team"}',
            "clusterNoWait": "true",
        }
    )
    deployment = result.one(DEPLOYMENT).inputs
    assert deployment["sku"]["capacity"] == 25
    assert deployment["properties"]["model"]["version"] == "2024-08-06"
    assert deployment["properties"]["versionUpgradeOption"] == "NoAutoUpgrade"
    assert result.exports[contract.OPENAI_DEPLOYMENT].value == "chat"
    assert result.one(WORKSPACE).inputs["sku"] == {"name": "trial"}
    assert result.one(CLUSTER).inputs["autoterminationMinutes"] == 120
    assert result.one(CLUSTER).inputs["noWait"] is True
    assert result.exports[contract.REGION].value == "eastus2"
    for type_ in (GROUP, ACCOUNT, DEPLOYMENT, WORKSPACE):
        assert result.one(type_).inputs["tags"] == {"owner": "ml-team"}, type_


@pytest.mark.parametrize(
    ("config", "key", "bad"),
    [
        ({"region": "westeurope"}, "llmops:region", "'westeurope'"),
        ({"region": "narnia"}, "llmops:region", "'narnia'"),
        ({"allowedRegions": '["eastus2", "atlantis"]'}, "llmops:allowedRegions", "atlantis"),
        ({"allowedRegions": "eastus2"}, "llmops:allowedRegions", "'eastus2'"),
        ({"allowedRegions": "[]"}, "llmops:allowedRegions", "'[]'"),
        ({"capacity": "0"}, "llmops:capacity", "'0'"),
        ({"capacity": "ten"}, "llmops:capacity", "'ten'"),
        ({"capacity": "2.5"}, "llmops:capacity", "'2.5'"),
        ({"workspaceSku": "standard"}, "llmops:workspaceSku", "'standard'"),
        ({"autoterminationMinutes": "5"}, "llmops:autoterminationMinutes", "'5'"),
        ({"autoterminationMinutes": "10001"}, "llmops:autoterminationMinutes", "'10001'"),
        ({"tags": '["a"]'}, "llmops:tags", "'[\"a\"]'"),
        ({"tags": '{"n": 1}'}, "llmops:tags", "'{\"n\": 1}'"),
        ({"clusterNoWait": "yes"}, "llmops:clusterNoWait", "'yes'"),
        ({"purgeOnDestroy": "1"}, "llmops:purgeOnDestroy", "'1'"),
        ({"gateway": "on"}, "llmops:gateway", "'on'"),
        ({"gateway": "true", "authMode": "entra"}, "llmops:gateway", "'true'"),
        ({"gatewayUserTokensPerMinute": "-1"}, "llmops:gatewayUserTokensPerMinute", "'-1'"),
        ({"gatewayGuardrails": "true"}, "llmops:gatewayGuardrails", "'true'"),
        ({"inferenceTable": "main"}, "llmops:inferenceTable", "'main'"),
        ({"compute": "gpu"}, "llmops:compute", "'gpu'"),
    ],
)
def test_bad_configuration_stops_before_any_resource(
    run: Run, config: dict[str, str], key: str, bad: str
) -> None:
    with pytest.raises(ProgramFailed) as failure:
        run(config)
    message = str(failure.value)
    assert key in message and bad in message, f"the message names the key and value: {message}"
    assert "valid" in message or "must" in message, "the message says what is allowed"
    assert failure.value.registered == 0, "nothing is registered before validation"
    assert "\n" not in message, "one message, no traceback"


def test_all_errors_are_reported_together() -> None:
    with pytest.raises(ConfigError, match=r"llmops:capacity.*llmops:workspaceSku"):
        parse_config({"capacity": "0", "workspaceSku": "gold"}.get)


def test_dev_stack_file_loads_and_validates() -> None:
    raw = read_stack_config(PROJECT_DIR, "dev")
    config = parse_config(lambda key: raw.get(f"llmops:{key}"))
    assert config.region is None and config.capacity == 10
    assert config.tags == {"purpose": "llmops-lab", "stack": "dev"}


def test_a_stack_that_sets_nothing_gets_the_labs_settings_from_pulumi_yaml() -> None:
    defaults = default_config()
    assert (
        defaults.allowed_regions,
        defaults.region,
        defaults.deployment_name,
        defaults.model_name,
        defaults.model_version,
        defaults.capacity,
        defaults.openai_api_version,
        defaults.workspace_sku,
        defaults.spark_version,
        defaults.node_type,
        defaults.autotermination_minutes,
        defaults.secret_scope,
        defaults.experiment_path,
        defaults.purge_on_destroy,
        defaults.cluster_no_wait,
        defaults.tags,
        defaults.auth_mode,
        defaults.deployer_principal_type,
        defaults.service_credential,
        defaults.access_connector_id,
        defaults.judge_model,
        defaults.judge_model_version,
        defaults.judge_capacity,
        defaults.gateway,
        defaults.gateway_user_tokens_per_minute,
        defaults.gateway_guardrails,
        defaults.inference_table,
        defaults.compute,
        defaults.network,
        defaults.vnet_address_space,
        defaults.allowed_ip_ranges,
    ) == (
        ("eastus2", "northcentralus", "swedencentral", "switzerlandwest"),
        None,
        "gpt-4o",
        "gpt-4o",
        None,
        10,
        "2024-05-01-preview",
        "premium",
        "16.4.x-cpu-ml-scala2.12",
        "Standard_D4ds_v5",
        30,
        "llmops",
        "/Shared/llmops-lab",
        True,
        False,
        {},
        "key",
        None,
        None,
        None,
        None,
        None,
        10,
        False,
        0,
        False,
        "",
        "cluster",
        "public",
        "10.28.0.0/22",
        (),
    ), "the documented defaults, as Pulumi.yaml declares them and the program applies them"


def test_pulumi_yaml_declares_every_key_the_program_reads_typed_and_described() -> None:
    declared = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"]
    assert list(declared) == list(RULES), "every key declared once, none the program ignores"
    types = {key: d["type"] for key, d in declared.items()}
    assert types == {
        "allowedRegions": "array",
        "region": "string",
        "deploymentName": "string",
        "modelName": "string",
        "modelVersion": "string",
        "capacity": "integer",
        "openaiApiVersion": "string",
        "workspaceSku": "string",
        "sparkVersion": "string",
        "nodeType": "string",
        "autoterminationMinutes": "integer",
        "secretScope": "string",
        "experimentPath": "string",
        "purgeOnDestroy": "boolean",
        "clusterNoWait": "boolean",
        "tags": "object",
        "authMode": "string",
        "deployerPrincipalType": "string",
        "serviceCredential": "string",
        "accessConnectorId": "string",
        "judgeModel": "string",
        "judgeModelVersion": "string",
        "judgeCapacity": "integer",
        "gateway": "boolean",
        "gatewayUserTokensPerMinute": "integer",
        "gatewayGuardrails": "boolean",
        "inferenceTable": "string",
        "compute": "string",
        "catalog": "string",
        "schema": "string",
        "resourceGroupName": "string",
        "workspaceResourceId": "string",
        "monitorSchedule": "string",
        "network": "string",
        "vnetAddressSpace": "string",
        "allowedIpRanges": "array",
    }, "the documented types"
    for key, declaration in declared.items():
        assert declaration.get("description"), f"{key} is described"
        assert "default" in declaration, f"{key} has a default"


def test_program_uses_no_randomness_or_clock() -> None:
    forbidden = {"random", "time", "datetime", "uuid", "secrets"}
    program = [
        PROJECT_DIR / "__main__.py",
        PROJECT_DIR / "llmops_infra" / "purge.py",
        *sorted((PROJECT_DIR / "llmops_infra" / "stack").glob("*.py")),
    ]
    assert len(program) > 8, "the program's modules were found"
    for path in program:
        tree = ast.parse(Path(path).read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
