"""Every resource type and provider function the stack uses, described once.

Each :class:`ResourceType` says how the offline plan shows a resource of the
type (its settings, in the lab's words), how the offline engine answers for it
as the real provider would (the id and the output-only properties, unknown in a
preview where only the cloud knows them), and how long Azure or Databricks takes
to create one (the ``up`` benchmark's delays). The plan lists resources in
:data:`RESOURCE_TYPES` order, which follows the lab's sections. Adding a type to
the stack means one entry here plus the component code.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from llmops_infra.azure_api.clients import deleted_account_path
from llmops_infra.offline.replay import ReadBack
from llmops_infra.stack.address_space import carve
from llmops_infra.stack.config import declarations

__all__ = [
    "FAKE_SUBSCRIPTION_ID",
    "FAKE_TENANT_ID",
    "FAKE_USER",
    "FUNCTIONS",
    "NOT_SHOWN",
    "RESOURCE_TYPES",
    "VSCODE_CLIENT_ID",
    "Cloud",
    "FunctionType",
    "HeldWorkspace",
    "ProviderError",
    "ResourceType",
    "World",
    "field",
]

FAKE_SUBSCRIPTION_ID: Final = "00000000-0000-0000-0000-000000000000"
FAKE_TENANT_ID: Final = "11111111-1111-1111-1111-111111111111"
FAKE_USER: Final = "lab.user@example.com"
#: The deploying identity's object id as the client configuration reports it.
FAKE_OBJECT_ID: Final = "22222222-2222-2222-2222-222222222222"
#: The Azure CLI's well-known application id: a client configuration after `az login`.
AZURE_CLI_CLIENT_ID: Final = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
#: Visual Studio Code's application id: a user signed in another way than `az login`.
VSCODE_CLIENT_ID: Final = "aebc6443-996d-45c2-90f0-388ff96faa56"


@dataclass(frozen=True)
class HeldWorkspace:
    """An Azure Databricks workspace the tenant holds already (``llmops:workspaceResourceId``)."""

    location: str = "swedencentral"
    """Its region, as ARM answers it."""
    sku: str = "premium"
    """Its pricing tier: ``premium``, ``trial`` or ``standard``."""
    compute_mode: str = "Hybrid"
    """``Hybrid`` or ``Serverless``."""


class ProviderError(Exception):
    """A provider function's failure, in the provider's own words (an ARM error's text)."""


@dataclass(frozen=True)
class World:
    """What the engine's tenant holds that the program neither sends nor creates."""

    user_client_id: str = AZURE_CLI_CLIENT_ID
    """The app a signed-in user's token was issued to (the Azure CLI's after ``az login``).
    Used when the stack's ``azure-native:`` configuration and ``ARM_*`` name no application."""
    metastore_assigned: bool = True
    """Whether the new workspace has a Unity Catalog metastore (Azure's default for new
    workspaces in a region with one)."""
    resource_groups: Mapping[str, str] | None = None
    """The subscription's resource groups beyond the stack's: name -> region. None: the
    engine cannot know (the offline plan, which cannot reach Azure), and a lookup of a
    group answers the empty result: what it would say is known after ``up``."""
    workspaces: Mapping[str, HeldWorkspace] | None = None
    """The subscription's Databricks workspaces: resource id -> workspace (their groups
    exist with them). None: as for ``resource_groups``."""


class Cloud(Protocol):
    """What an answer may ask of the offline engine."""

    preview: bool
    world: World
    config: Mapping[str, str]
    """The stack's configuration, as the providers read theirs from it."""

    def rng(self, name: str) -> random.Random:
        """Randomness stable for one stack and resource, different across stacks."""
        ...

    def later(self, value: Any) -> Any:
        """``value`` after ``up``; unknown in a preview (only the cloud knows it then)."""
        ...

    def is_unknown(self, value: Any) -> bool:
        """Whether an input is not known yet (or missing)."""
        ...


Answer = Callable[[Cloud, str, dict[str, Any]], tuple[str, dict[str, Any]]]
"""``answer(cloud, name, inputs) -> (id, output-only properties)``."""
Reader = Callable[[Mapping[str, Any]], Any]
"""Reads one setting from a resource's inputs, for the plan."""


#: What a reader returns for a setting the resource does not have in this stack: the plan
#: leaves the line out (the public lab's account has no network rules to show).
NOT_SHOWN: Final = object()


def field(path: str) -> Reader:
    """A reader of ``a.b.c`` in the inputs (None where a part is missing)."""

    def read(inputs: Mapping[str, Any]) -> Any:
        value: Any = inputs
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value

    return read


@dataclass(frozen=True)
class ResourceType:
    """One resource type of the stack: how it is shown, answered for and timed."""

    token: str
    """The Pulumi type token."""
    shows: tuple[tuple[str, Reader], ...] = ()
    """The settings the plan shows, as (label, reader of the inputs)."""
    answer: Answer | None = None
    """How the provider answers a create; None for a component (nothing to answer)."""
    provisioning_seconds: float = 0.0
    """Typical time to create one (BENCHMARKS.md, "Provisioning figures", has sources)."""
    reads_back: ReadBack | None = None
    """For a provider that diffs what the program sends against what it reads back (the
    Terraform-based ones), what it holds after an update: ``(held, sent) -> held``. None:
    a replay compares with the earlier inputs and lays the sent ones over what was held
    (azure-native's way; :mod:`.replay`)."""
    computed: frozenset[str] = frozenset()
    """With ``reads_back``: the paths the provider fills in itself (Terraform's ``Computed``),
    which the program may leave out without a diff."""
    replaced_by: tuple[str, ...] = ()
    """The inputs whose change the provider makes a replacement (Terraform's ``ForceNew``)."""


@dataclass(frozen=True)
class FunctionType:
    """A provider function (invoke) the program calls."""

    token: str
    answer: Callable[[Cloud, dict[str, Any]], dict[str, Any]]


def _arm(group: str, provider_path: str) -> str:
    return f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/{group}/providers/{provider_path}"


# --- answers: what each provider fills in ------------------------------------------------------


def _random_string(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    alphabet = ""
    for flag, chars in (
        ("lower", "abcdefghijklmnopqrstuvwxyz"),
        ("numeric", "0123456789"),
        ("upper", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        ("special", "!@#$%&*()-_=+[]{}<>:?"),
    ):
        if inputs.get(flag, True):
            alphabet += chars
    rng = cloud.rng(name)
    result = "".join(rng.choice(alphabet) for _ in range(int(inputs["length"])))
    return result, {"result": cloud.later(result)}


def _random_shuffle(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    items = list(inputs.get("inputs") or [])
    cloud.rng(name).shuffle(items)
    count = int(inputs.get("resultCount") or len(items))
    return "-", {"results": cloud.later(items[:count])}


def _resource_group(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    group = inputs.get("resourceGroupName") or f"{name}{cloud.rng(name).randrange(16**8):08x}"
    return f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/{group}", {
        "name": group,
        "azureApiVersion": "2024-03-01",
    }


def _openai_account(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    account = inputs["accountName"]
    subdomain = (inputs.get("properties") or {}).get("customSubDomainName")
    # Without a custom subdomain Azure serves the regional endpoint, which Entra ID rejects.
    if cloud.is_unknown(subdomain):
        endpoint = f"https://{inputs['location']}.api.cognitive.microsoft.com/"
    else:
        endpoint = f"https://{subdomain}.openai.azure.com/"
    properties = {
        **(inputs.get("properties") or {}),
        "endpoint": cloud.later(endpoint),
        "provisioningState": cloud.later("Succeeded"),
    }
    arm_id = _arm(inputs["resourceGroupName"], f"Microsoft.CognitiveServices/accounts/{account}")
    return arm_id, {"name": account, "properties": properties}


def _openai_deployment(
    cloud: Cloud, name: str, inputs: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    deployment = inputs["deploymentName"]
    model = dict((inputs.get("properties") or {}).get("model") or {})
    if not model.get("version"):
        model["version"] = cloud.later("2024-11-20")  # Azure fills in the default version.
    properties = {**(inputs.get("properties") or {}), "model": model}
    arm_id = _arm(
        inputs["resourceGroupName"],
        f"Microsoft.CognitiveServices/accounts/{inputs['accountName']}/deployments/{deployment}",
    )
    return arm_id, {"name": deployment, "properties": properties}


def _workspace(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    workspace = inputs["workspaceName"]
    numeric_id = str(cloud.rng(name).randrange(10**15, 10**16))
    arm_id = _arm(inputs["resourceGroupName"], f"Microsoft.Databricks/workspaces/{workspace}")
    return arm_id, {
        "name": workspace,
        "workspaceId": cloud.later(numeric_id),
        "workspaceUrl": cloud.later(f"adb-{numeric_id}.{numeric_id[-2:]}.azuredatabricks.net"),
        "provisioningState": cloud.later("Succeeded"),
    }


def _provider(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return f"{name}-provider-id", {}


def _cluster(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rng = cloud.rng(name)
    cluster_id = f"{rng.randrange(10**3, 10**4)}-{rng.randrange(10**5, 10**6)}-lab{name[:3]}"
    return cluster_id, {
        "clusterId": cloud.later(cluster_id),
        "state": cloud.later("RUNNING"),
        "url": cloud.later(f"#setting/clusters/{cluster_id}/configuration"),
    }


def _secret_scope(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # The scope's id is its name; without a backend Databricks picks its own.
    return inputs["name"], {"backendType": inputs.get("backendType") or "DATABRICKS"}


def _secret(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    scope, key = inputs["scope"], inputs["key"]
    return f"{scope}|||{key}", {
        "configReference": cloud.later(f"{{{{secrets/{scope}/{key}}}}}"),
        "lastUpdatedTimestamp": cloud.later(1_767_225_600_000),
    }


def _experiment(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    experiment_id = str(cloud.rng(name).randrange(10**15, 10**16))
    return experiment_id, {
        "experimentId": cloud.later(experiment_id),
        "artifactLocation": cloud.later(f"dbfs:/databricks/mlflow-tracking/{experiment_id}"),
        "lifecycleStage": cloud.later("active"),
    }


def _workspace_file(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    path = inputs["path"]
    return path, {
        # The id is the path; the URL is relative to the workspace's host, as for clusters.
        "url": cloud.later(f"#workspace{path}"),
        "workspacePath": cloud.later(f"/Workspace{path}"),
        "objectId": cloud.later(cloud.rng(name).randrange(10**15, 10**16)),
    }


def _first_task(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    tasks = inputs.get("tasks") or [{}]
    return tasks[0] if isinstance(tasks[0], Mapping) else {}


def _job_runs(inputs: Mapping[str, Any]) -> Any:
    wheel = _first_task(inputs).get("pythonWheelTask")
    if not isinstance(wheel, Mapping):
        return None
    return f"{wheel.get('packageName')} {wheel.get('entryPoint')} {wheel.get('parameters')}"


def _job_compute(inputs: Mapping[str, Any]) -> Any:
    task = _first_task(inputs)
    if task.get("environmentKey"):
        versions = [
            field("spec.environmentVersion")(env) for env in inputs.get("environments") or []
        ]
        return f"serverless (environment version {', '.join(map(str, versions))})"
    return f"cluster {task.get('existingClusterId')}"


def _job_installs(inputs: Mapping[str, Any]) -> Any:
    task = _first_task(inputs)
    if task.get("environmentKey"):
        envs = inputs.get("environments") or [{}]
        return field("spec.dependencies")(envs[0])
    return [library.get("whl") for library in task.get("libraries") or []]


def _job_schedule(inputs: Mapping[str, Any]) -> str:
    schedule = inputs.get("schedule")
    if not isinstance(schedule, Mapping):
        return "none (run on demand)"
    return (
        f"{schedule.get('pauseStatus')}, {schedule.get('quartzCronExpression')} "
        f"(Quartz cron, {schedule.get('timezoneId')})"
    )


def _job(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    job_id = str(cloud.rng(name).randrange(10**14, 10**15))
    return job_id, {"url": cloud.later(f"#job/{job_id}")}


def _served_entities(config: Mapping[str, Any]) -> dict[str, Any]:
    """The endpoint's ``config`` as Databricks returns it: what was sent, plus what it fills in.

    A served entity without a name is named after its external model ('.' and ':' as '-'),
    and an endpoint without a traffic configuration routes all traffic to its one entity
    (pulumi_databricks 1.118, ``ModelServingConfigServedEntityArgs.name``).
    """
    entities = []
    for entity in config.get("servedEntities") or []:
        entity = dict(entity)
        if not entity.get("name"):
            model = str((entity.get("externalModel") or {}).get("name", ""))
            entity["name"] = model.replace(".", "-").replace(":", "-")
        entities.append(entity)
    echoed = {**config, "servedEntities": entities}
    if not config.get("trafficConfig") and len(entities) == 1:
        echoed["trafficConfig"] = {
            "routes": [{"servedEntityName": entities[0]["name"], "trafficPercentage": 100}]
        }
    return echoed


def _serving_settings(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The endpoint's ``config`` and ``aiGateway`` as Databricks returns them."""
    held: dict[str, Any] = {}
    gateway = dict(inputs.get("aiGateway") or {})
    if gateway.get("rateLimits"):
        # A limit without a key is the endpoint's (the provider's documented default).
        gateway["rateLimits"] = [{"key": "endpoint", **limit} for limit in gateway["rateLimits"]]
    if inputs.get("config"):
        held["config"] = _served_entities(inputs["config"])
    if gateway:
        held["aiGateway"] = gateway
    return held


def _serving_endpoint(
    cloud: Cloud, name: str, inputs: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    endpoint = inputs["name"]
    outputs: dict[str, Any] = {
        "servingEndpointId": cloud.later(f"{cloud.rng(name).randrange(16**32):032x}"),
        # Relative to the workspace's host, as for clusters and jobs.
        "endpointUrl": cloud.later(f"/serving-endpoints/{endpoint}/invocations"),
        **_serving_settings(inputs),
    }
    # The resource's id is the endpoint's name.
    return endpoint, outputs


_TABLE: Final = "aiGateway.inferenceTableConfig"


def _serving_updated(held: Mapping[str, Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """What an endpoint holds after the provider's update.

    terraform-provider-databricks, ``serving/resource_model_serving.go`` (read 2026-12-07):
    an update calls the config, tags and AI Gateway APIs only, so the ``description`` stays
    as created. It builds the AI Gateway request with ``GetOk`` (``common/reflect_resource.go``),
    which skips a false ``enabled``, and sets no ``ForceSendFields``: an inference table the
    endpoint has is never turned off, whether the block is left out or sent disabled
    (issue #5504), and the provider reads it back.
    """
    after: dict[str, Any] = {
        **sent,
        **{key: held[key] for key in ("servingEndpointId", "endpointUrl") if key in held},
        **_serving_settings(sent),
    }
    after.pop("description", None)
    if "description" in held:
        after["description"] = held["description"]
    table = field(_TABLE)(held)
    if table and not (field(_TABLE)(after) or {}).get("enabled"):
        after["aiGateway"] = {**(after.get("aiGateway") or {}), "inferenceTableConfig": table}
    return after


def _permissions(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    endpoint_id = inputs.get("servingEndpointId")
    if cloud.is_unknown(endpoint_id):
        return f"{name}-id", {"objectType": cloud.later("serving-endpoint")}
    return f"/serving-endpoints/{endpoint_id}", {"objectType": "serving-endpoint"}


def _schema(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # Unity Catalog names a schema by its full name; the provider's id is that name.
    full_name = f"{inputs['catalogName']}.{inputs['name']}"
    return full_name, {"schemaId": cloud.later(full_name)}


def _uc_grants(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    schema = inputs.get("schema")
    if cloud.is_unknown(schema):
        return f"{name}-id", {}
    return f"schema/{schema}", {}


def _purge(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # The dynamic provider's create records its inputs, with no Azure call.
    fields = ("subscription_id", "resource_group_name", "location", "account_name")
    values = [inputs.get(key) for key in fields]
    if any(cloud.is_unknown(v) for v in values):
        return f"{name}-id", {}
    return deleted_account_path(*(str(v) for v in values)), {}


def _role_assignment(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # Azure names an assignment with a GUID of its own when none is given.
    rng = cloud.rng(name)
    guid = "-".join(
        "".join(rng.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12)
    )
    assignment = inputs.get("roleAssignmentName") or guid
    scope = inputs.get("scope")
    arm_id = (
        cloud.later(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{assignment}")
        if not cloud.is_unknown(scope)
        else f"{name}-id"
    )
    return arm_id, {
        "name": cloud.later(assignment),
        # azure-native's default when the program states none: a user.
        "principalType": inputs.get("principalType") or "User",
    }


def _access_connector(
    cloud: Cloud, name: str, inputs: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    connector = inputs["connectorName"]
    principal = str(uuid_from(cloud.rng(name)))
    identity = {**(inputs.get("identity") or {}), "principalId": cloud.later(principal)}
    identity["tenantId"] = cloud.later(FAKE_TENANT_ID)
    arm_id = _arm(inputs["resourceGroupName"], f"Microsoft.Databricks/accessConnectors/{connector}")
    return arm_id, {"name": connector, "identity": identity}


def _credential(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    credential_id = str(uuid_from(cloud.rng(name)))
    return inputs["name"], {
        "credentialId": cloud.later(credential_id),
        "metastoreId": cloud.later(str(uuid_from(cloud.rng("metastore")))),
        "owner": cloud.later(FAKE_USER),
    }


#: What Azure grants a service a subnet is delegated to (Databricks' VNet injection).
_DATABRICKS_DELEGATION_ACTIONS: Final = (
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/virtualNetworks/subnets/prepareNetworkPolicies/action",
    "Microsoft.Network/virtualNetworks/subnets/unprepareNetworkPolicies/action",
)


def _network_state(cloud: Cloud, name: str) -> dict[str, Any]:
    """What Azure adds to every network resource: its state, GUID and etag."""
    guid = str(uuid_from(cloud.rng(name)))
    return {
        "provisioningState": cloud.later("Succeeded"),
        "resourceGuid": cloud.later(guid),
        "etag": cloud.later(f'W/"{uuid_from(cloud.rng(f"{name}/etag"))}"'),
    }


def _security_group(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    group = inputs["networkSecurityGroupName"]
    arm_id = _arm(inputs["resourceGroupName"], f"Microsoft.Network/networkSecurityGroups/{group}")
    # Azure's six default rules (allow inside the network and from its load balancer, deny
    # the rest; allow out to the network and the internet, deny the rest).
    defaults = [
        {"name": rule, "id": cloud.later(f"{arm_id}/defaultSecurityRules/{rule}")}
        for rule in (
            "AllowVnetInBound",
            "AllowAzureLoadBalancerInBound",
            "DenyAllInBound",
            "AllowVnetOutBound",
            "AllowInternetOutBound",
            "DenyAllOutBound",
        )
    ]
    return arm_id, {
        "name": group,
        "defaultSecurityRules": defaults,
        "securityRules": [],
        **_network_state(cloud, name),
    }


def _virtual_network(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    vnet = inputs["virtualNetworkName"]
    arm_id = _arm(inputs["resourceGroupName"], f"Microsoft.Network/virtualNetworks/{vnet}")
    subnets = []
    for subnet in inputs.get("subnets") or []:
        delegations = [
            {
                **delegation,
                "actions": list(_DATABRICKS_DELEGATION_ACTIONS),
                "provisioningState": cloud.later("Succeeded"),
            }
            for delegation in subnet.get("delegations") or []
        ]
        subnets.append(
            {
                **subnet,
                "id": cloud.later(f"{arm_id}/subnets/{subnet['name']}"),
                "delegations": delegations,
                "privateLinkServiceNetworkPolicies": "Enabled",
                "provisioningState": cloud.later("Succeeded"),
            }
        )
    return arm_id, {"name": vnet, "subnets": subnets, **_network_state(cloud, name)}


def _private_zone(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    zone = inputs["privateZoneName"]
    arm_id = _arm(inputs["resourceGroupName"], f"Microsoft.Network/privateDnsZones/{zone}")
    return arm_id, {
        "name": zone,
        "maxNumberOfRecordSets": cloud.later(25000),
        "numberOfRecordSets": cloud.later(1),  # the zone's SOA record
        "maxNumberOfVirtualNetworkLinks": cloud.later(1000),
        "numberOfVirtualNetworkLinks": cloud.later(0),
        "provisioningState": cloud.later("Succeeded"),
        "etag": cloud.later(str(uuid_from(cloud.rng(name)))),
    }


def _zone_link(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    link = inputs["virtualNetworkLinkName"]
    arm_id = _arm(
        inputs["resourceGroupName"],
        f"Microsoft.Network/privateDnsZones/{inputs['privateZoneName']}/virtualNetworkLinks/{link}",
    )
    return arm_id, {
        "name": link,
        "virtualNetworkLinkState": cloud.later("Completed"),
        "provisioningState": cloud.later("Succeeded"),
        "etag": cloud.later(str(uuid_from(cloud.rng(name)))),
    }


def _private_address(cloud: Cloud) -> str:
    """The endpoint's address in its subnet: the first Azure leaves (it keeps four)."""
    space = (
        cloud.config.get("llmops:vnetAddressSpace") or declarations()["vnetAddressSpace"].default
    )
    subnet = ipaddress.IPv4Network(carve(space).private_endpoints)
    return str(subnet.network_address + 4)


def _private_endpoint(
    cloud: Cloud, name: str, inputs: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    endpoint = inputs["privateEndpointName"]
    group = inputs["resourceGroupName"]
    arm_id = _arm(group, f"Microsoft.Network/privateEndpoints/{endpoint}")
    connections = [
        {
            **connection,
            "privateLinkServiceConnectionState": {
                "status": cloud.later("Approved"),
                "description": cloud.later("Auto-Approved"),
                "actionsRequired": cloud.later("None"),
            },
            "provisioningState": cloud.later("Succeeded"),
        }
        for connection in inputs.get("privateLinkServiceConnections") or []
    ]
    account = str(endpoint).removeprefix("pe-")
    nic = _arm(
        group, f"Microsoft.Network/networkInterfaces/{endpoint}.nic.{uuid_from(cloud.rng(name))}"
    )
    return arm_id, {
        "name": endpoint,
        "privateLinkServiceConnections": connections,
        "networkInterfaces": [{"id": cloud.later(nic)}],
        "customDnsConfigs": [
            {
                "fqdn": cloud.later(f"{account}.openai.azure.com"),
                "ipAddresses": [cloud.later(_private_address(cloud))],
            }
        ],
        **_network_state(cloud, name),
    }


def _dns_zone_group(cloud: Cloud, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    zone_group = inputs["privateDnsZoneGroupName"]
    endpoint = inputs["privateEndpointName"]
    arm_id = _arm(
        inputs["resourceGroupName"],
        f"Microsoft.Network/privateEndpoints/{endpoint}/privateDnsZoneGroups/{zone_group}",
    )
    account = str(endpoint).removeprefix("pe-")
    configs = [
        {
            **config,
            "recordSets": [
                {
                    "recordType": "A",
                    "recordSetName": cloud.later(account),
                    "fqdn": cloud.later(f"{account}.privatelink.openai.azure.com"),
                    "ttl": 10,
                    "ipAddresses": [cloud.later(_private_address(cloud))],
                    "provisioningState": cloud.later("Succeeded"),
                }
            ],
        }
        for config in inputs.get("privateDnsZoneConfigs") or []
    ]
    return arm_id, {
        "name": zone_group,
        "privateDnsZoneConfigs": configs,
        "provisioningState": cloud.later("Succeeded"),
        "etag": cloud.later(f'W/"{uuid_from(cloud.rng(f"{name}/etag"))}"'),
    }


def uuid_from(rng: random.Random) -> str:
    """A GUID drawn from ``rng`` (stable for one stack and resource)."""
    digits = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _application(cloud: Cloud) -> str | None:
    """The application azure-native signs in as (its client id), or None for a user.

    As the provider decides: its stack configuration, then the ``ARM_*`` variables;
    a managed identity or OIDC without a client id is an application too.
    """
    config, environment = cloud.config, os.environ
    client_id = config.get("azure-native:clientId") or environment.get("ARM_CLIENT_ID")
    as_app = any(
        (config.get(f"azure-native:{key}") or environment.get(variable, "")).lower() == "true"
        for key, variable in (("useMsi", "ARM_USE_MSI"), ("useOidc", "ARM_USE_OIDC"))
    )
    if client_id:
        return client_id
    return "33333333-3333-3333-3333-333333333333" if as_app else None


def _client_config(cloud: Cloud, args: dict[str, Any]) -> dict[str, Any]:
    # Known in preview: the provider reads it from the Azure CLI or ARM_* variables.
    return {
        "subscriptionId": FAKE_SUBSCRIPTION_ID,
        "tenantId": FAKE_TENANT_ID,
        "clientId": _application(cloud) or cloud.world.user_client_id,
        "objectId": FAKE_OBJECT_ID,
    }


def _client_token(cloud: Cloud, args: dict[str, Any]) -> dict[str, Any]:
    """An access token shaped as Entra ID issues it: a user's carries ``scp``, an app's not.

    Unsigned (the signature part is empty): nothing may verify it, nor need to.
    """
    app = _application(cloud)
    claims: dict[str, Any] = {
        "aud": args.get("endpoint") or "https://management.azure.com/",
        "tid": FAKE_TENANT_ID,
        "oid": FAKE_OBJECT_ID,
        "appid": app or cloud.world.user_client_id,
    }
    if app is None:
        claims.update(scp="user_impersonation", idtyp="user", upn=FAKE_USER)
    else:
        claims.update(idtyp="app")

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return {"token": f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."}


def _access_connector_lookup(cloud: Cloud, args: dict[str, Any]) -> dict[str, Any]:
    # An existing connector (an account admin's), with its system-assigned identity.
    group, connector = args["resourceGroupName"], args["connectorName"]
    principal = str(uuid_from(cloud.rng(f"existing-connector/{connector}")))
    return {
        "id": _arm(group, f"Microsoft.Databricks/accessConnectors/{connector}"),
        "name": connector,
        "type": "Microsoft.Databricks/accessConnectors",
        "location": "swedencentral",
        "identity": {
            "type": "SystemAssigned",
            "principalId": principal,
            "tenantId": FAKE_TENANT_ID,
        },
        "properties": {"provisioningState": "Succeeded"},
    }


def _arm_not_found(path: str, code: str, message: str) -> ProviderError:
    """A 404 as azure-native reports it (azcore's ``ResponseError`` text)."""
    rule = "-" * 80
    body = json.dumps({"error": {"code": code, "message": message}}, indent=2)
    return ProviderError(
        f"GET https://management.azure.com{path}\n{rule}\nRESPONSE 404: 404 Not Found\n"
        f"ERROR CODE: {code}\n{rule}\n{body}\n{rule}"
    )


def _group_not_found(group: str) -> ProviderError:
    return _arm_not_found(
        f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourcegroups/{group}",
        "ResourceGroupNotFound",
        f"Resource group '{group}' could not be found.",
    )


#: A lookup the offline engine cannot make (the tenant's estate is not in its world): the
#: empty result, as the engine answers an invoke it cannot serve in a preview; the program
#: shows what it would have read as known after ``up``.
_NOT_LOOKED_UP: Final[dict[str, Any]] = {}


def _resource_group_lookup(cloud: Cloud, args: dict[str, Any]) -> dict[str, Any]:
    held = cloud.world.resource_groups
    if held is None:
        return dict(_NOT_LOOKED_UP)
    name = args["resourceGroupName"]
    # Azure's group names are case-insensitive; it answers with the name as created.
    found = next((group for group in held if group.lower() == name.lower()), None)
    if found is None:
        raise _group_not_found(name)
    return {
        "id": f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/{found}",
        "name": found,
        "type": "Microsoft.Resources/resourceGroups",
        "location": held[found],
        "properties": {"provisioningState": "Succeeded"},
        "azureApiVersion": "2024-03-01",
    }


def _workspace_lookup(cloud: Cloud, args: dict[str, Any]) -> dict[str, Any]:
    held = cloud.world.workspaces
    if held is None:
        return dict(_NOT_LOOKED_UP)
    group, name = args["resourceGroupName"], args["workspaceName"]
    arm_id = _arm(group, f"Microsoft.Databricks/workspaces/{name}")
    found = next((key for key in held if key.lower() == arm_id.lower()), None)
    if found is None:
        groups = {key.split("/")[4].lower() for key in held} | {
            g.lower() for g in cloud.world.resource_groups or {}
        }
        if group.lower() not in groups:
            raise _group_not_found(group)
        raise _arm_not_found(
            arm_id,
            "ResourceNotFound",
            f"The Resource 'Microsoft.Databricks/workspaces/{name}' under resource group "
            f"'{group}' was not found. For more details please go to "
            "https://aka.ms/ARMResourceNotFoundFix",
        )
    workspace = held[found]
    # The workspace's own, made when it was created: the same on every `up`, whoever asks.
    digest = hashlib.sha256(f"workspace/{found.lower()}".encode()).digest()
    numeric_id = str(random.Random(int.from_bytes(digest[:8], "big")).randrange(10**15, 10**16))
    return {
        "id": found,
        "name": found.rsplit("/", 1)[-1],
        "type": "Microsoft.Databricks/workspaces",
        "location": workspace.location,
        "sku": {"name": workspace.sku},
        "computeMode": workspace.compute_mode,
        "workspaceId": numeric_id,
        "workspaceUrl": f"adb-{numeric_id}.{numeric_id[-2:]}.azuredatabricks.net",
        "managedResourceGroupId": (
            f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/databricks-rg-{name}"
        ),
        "provisioningState": "Succeeded",
        "azureApiVersion": "2026-01-01",
    }


def _current_metastore(cloud: Cloud, args: dict[str, Any]) -> dict[str, Any]:
    # The provider's answer for a workspace with no metastore is this id, not an error.
    if not cloud.world.metastore_assigned:
        return {"id": "no_metastore"}
    metastore = str(uuid_from(cloud.rng("metastore")))
    return {"id": metastore, "metastoreInfo": {"metastoreId": metastore, "name": "metastore"}}


def _account_keys(cloud: Cloud, args: dict[str, Any]) -> dict[str, Any]:
    # The keys belong to the account, made when it was created: the same account lists the
    # same keys on every `up`, whoever asks.
    digest = hashlib.sha256(f"keys/{args['accountName']}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return {
        key: "".join(rng.choice("0123456789abcdef") for _ in range(32)) for key in ("key1", "key2")
    }


def _current_user(cloud: Cloud, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "1234567890123456",
        "userName": FAKE_USER,
        "alphanumeric": "lab_user",
        "home": f"/Users/{FAKE_USER}",
        "aclPrincipalId": f"users/{FAKE_USER}",
    }


# --- how the plan shows them -------------------------------------------------------------------


def _single_node(inputs: Mapping[str, Any]) -> str:
    profile = inputs.get("sparkConf") or {}
    single = inputs.get("numWorkers") == 0 and (
        isinstance(profile, Mapping)
        and profile.get("spark.databricks.cluster.profile") == "singleNode"
    )
    return "yes" if single else "no"


def _deployer(inputs: Mapping[str, Any]) -> bool:
    """The offline engine's own stand-in for the deploying identity: not a real one."""
    return inputs.get("principalId") == FAKE_OBJECT_ID


def _principal(inputs: Mapping[str, Any]) -> Any:
    if _deployer(inputs):
        return "(the deploying identity's object id, known at up)"
    return inputs.get("principalId")


def _principal_type(inputs: Mapping[str, Any]) -> Any:
    if _deployer(inputs):
        return (
            f"{inputs.get('principalType')} (what the deployer's access token says: User for "
            "a person signed in, ServicePrincipal for an application; "
            "llmops:deployerPrincipalType overrides)"
        )
    return inputs.get("principalType")


def _subnets(inputs: Mapping[str, Any]) -> list[str]:
    shown = []
    for subnet in inputs.get("subnets") or []:
        notes = [str(subnet.get("addressPrefix"))]
        notes += [f"delegated to {d.get('serviceName')}" for d in subnet.get("delegations") or []]
        if subnet.get("networkSecurityGroup"):
            notes.append("network security group")
        shown.append(f"{subnet.get('name')} ({', '.join(notes)})")
    return shown


def _account_rules(inputs: Mapping[str, Any]) -> Any:
    rules = field("properties.networkAcls")(inputs)
    if rules is None:
        return NOT_SHOWN
    allowed = [rule.get("value") for rule in rules.get("ipRules") or []]
    reached = "reached through its private endpoint"
    if not allowed:
        return f"default {rules.get('defaultAction')}, {reached} only"
    return (
        f"default {rules.get('defaultAction')}, {reached} and from {', '.join(map(str, allowed))}"
    )


def _injection(inputs: Mapping[str, Any]) -> Any:
    parameters = inputs.get("parameters")
    if not parameters:
        return NOT_SHOWN
    vnet = field("customVirtualNetworkId.value")(parameters)
    host = field("customPublicSubnetName.value")(parameters)
    container = field("customPrivateSubnetName.value")(parameters)
    no_public_ip = field("enableNoPublicIp.value")(parameters)
    page = "open" if inputs.get("publicNetworkAccess") == "Enabled" else "private"
    return (
        f"injected into {vnet} ({host}, {container}); cluster VMs "
        f"{'without' if no_public_ip else 'with'} public IPs; web page {page}"
    )


def _endpoint_connection(inputs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    connections = inputs.get("privateLinkServiceConnections") or []
    return connections[0] if connections else None


def _endpoint_target(inputs: Mapping[str, Any]) -> Any:
    return (_endpoint_connection(inputs) or {}).get("privateLinkServiceId")


def _tpm(inputs: Mapping[str, Any]) -> str:
    capacity = field("sku.capacity")(inputs)
    return f"{int(capacity)}K" if isinstance(capacity, int | float) else str(capacity)


def _external_model(inputs: Mapping[str, Any]) -> str:
    entities = field("config.servedEntities")(inputs) or [{}]
    model = entities[0].get("externalModel") or {}
    azure = model.get("openaiConfig") or {}
    return (
        f"{model.get('provider')} {model.get('name')} ({model.get('task')}): Azure deployment "
        f"{azure.get('openaiDeploymentName')} at {azure.get('openaiApiBase')}, "
        f"api {azure.get('openaiApiType')} {azure.get('openaiApiVersion')}"
    )


def _key_reference(inputs: Mapping[str, Any]) -> Any:
    entities = field("config.servedEntities")(inputs) or [{}]
    return field("externalModel.openaiConfig.openaiApiKey")(entities[0])


def _limits(inputs: Mapping[str, Any]) -> list[str]:
    shown = []
    for limit in field("aiGateway.rateLimits")(inputs) or []:
        amount = (
            f"{_count(limit['tokens'])} tokens"
            if limit.get("tokens") is not None
            else f"{_count(limit.get('calls'))} calls"
        )
        shown.append(f"{limit.get('key') or 'endpoint'}: {amount}/{limit.get('renewalPeriod')}")
    return shown


def _count(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def _inference_table(inputs: Mapping[str, Any]) -> str:
    table = field("aiGateway.inferenceTableConfig")(inputs)
    if not table:
        return "none (llmops:inferenceTable)"
    return (
        f"{table.get('catalogName')}.{table.get('schemaName')}."
        f"{table.get('tableNamePrefix')}_payload (Unity Catalog)"
    )


def _guardrail_summary(inputs: Mapping[str, Any]) -> str:
    rails = field("aiGateway.guardrails")(inputs)
    if not rails:
        return "none (llmops:gatewayGuardrails)"
    parts = []
    for side in ("input", "output"):
        checks = rails.get(side) or {}
        found = [f"PII {checks['pii'].get('behavior')}"] if checks.get("pii") else []
        found += ["safety"] if checks.get("safety") else []
        parts.append(f"{side}: {', '.join(found) or 'none'}")
    return "; ".join(parts)


def _uc_privileges(inputs: Mapping[str, Any]) -> list[str]:
    return [
        f"{g.get('principal')}: {', '.join(g.get('privileges') or [])}"
        for g in inputs.get("grants") or []
    ]


def _grants(inputs: Mapping[str, Any]) -> list[str]:
    return [
        f"{c.get('groupName') or c.get('userName') or c.get('servicePrincipalName')}: "
        f"{c.get('permissionLevel')}"
        for c in inputs.get("accessControls") or []
    ]


#: The stack's resource types, in the lab's order (the plan's order).
RESOURCE_TYPES: Final[tuple[ResourceType, ...]] = (
    ResourceType(
        "random:index/randomString:RandomString",
        shows=(("length", field("length")),),
        answer=_random_string,
    ),
    ResourceType(
        "random:index/randomShuffle:RandomShuffle",
        shows=(("draws one of", field("inputs")),),
        answer=_random_shuffle,
    ),
    ResourceType(
        "azure-native:resources:ResourceGroup",
        shows=(("name", field("resourceGroupName")), ("region", field("location"))),
        answer=_resource_group,
        provisioning_seconds=2.0,  # one synchronous ARM PUT
    ),
    ResourceType(
        "pulumi-python:dynamic/llmops:DeletedAccountPurge",
        shows=(("purges on destroy", field("account_name")), ("region", field("location"))),
        answer=_purge,
        # Create only records the coordinates; the engine starts the Python dynamic
        # provider's host first (estimate: a Python start-up with pulumi imported).
        provisioning_seconds=2.0,
    ),
    ResourceType("llmops:network:PrivateNetwork"),
    ResourceType(
        "azure-native:network:NetworkSecurityGroup",
        shows=(("name", field("networkSecurityGroupName")), ("region", field("location"))),
        answer=_security_group,
        provisioning_seconds=5.0,  # one ARM PUT, done in seconds
    ),
    ResourceType(
        "azure-native:network:VirtualNetwork",
        shows=(
            ("name", field("virtualNetworkName")),
            ("region", field("location")),
            ("address space", field("addressSpace.addressPrefixes")),
            ("subnets", _subnets),
        ),
        answer=_virtual_network,
        provisioning_seconds=10.0,  # one ARM PUT with its subnets
    ),
    ResourceType(
        "azure-native:privatedns:PrivateZone",
        shows=(("zone", field("privateZoneName")), ("location", field("location"))),
        answer=_private_zone,
        provisioning_seconds=30.0,  # a global resource: ARM waits for its propagation
    ),
    ResourceType(
        "azure-native:privatedns:VirtualNetworkLink",
        shows=(
            ("name", field("virtualNetworkLinkName")),
            ("zone", field("privateZoneName")),
            ("network", field("virtualNetwork.id")),
            ("auto-registration", field("registrationEnabled")),
        ),
        answer=_zone_link,
        provisioning_seconds=30.0,
    ),
    ResourceType("llmops:openai:AzureOpenAI"),
    ResourceType(
        "azure-native:cognitiveservices:Account",
        shows=(
            ("name", field("accountName")),
            ("region", field("location")),
            ("kind", field("kind")),
            ("sku", field("sku.name")),
            ("subdomain", field("properties.customSubDomainName")),
            ("public access", field("properties.publicNetworkAccess")),
            ("network rules", _account_rules),
            (
                "key access",
                lambda i: (
                    "disabled (keyless)"
                    if field("properties.disableLocalAuth")(i)
                    else "enabled (the lab's key)"
                ),
            ),
        ),
        answer=_openai_account,
        provisioning_seconds=30.0,
    ),
    ResourceType(
        "azure-native:authorization:RoleAssignment",
        shows=(
            ("role", lambda i: str(i.get("roleDefinitionId") or "").rsplit("/", 1)[-1]),
            ("principal", _principal),
            ("principal type", _principal_type),
            ("scope", field("scope")),
        ),
        answer=_role_assignment,
        provisioning_seconds=5.0,  # one ARM PUT; the role takes effect minutes later
    ),
    ResourceType(
        "azure-native:cognitiveservices:Deployment",
        shows=(
            ("name", field("deploymentName")),
            ("model", field("properties.model.name")),
            ("version", lambda i: field("properties.model.version")(i) or "Azure's default"),
            ("type", field("sku.name")),
            ("capacity", field("sku.capacity")),
            ("tokens per minute", _tpm),
            ("content filter", field("properties.raiPolicyName")),
            ("version upgrade", field("properties.versionUpgradeOption")),
        ),
        answer=_openai_deployment,
        provisioning_seconds=60.0,
    ),
    ResourceType(
        "azure-native:network:PrivateEndpoint",
        shows=(
            ("name", field("privateEndpointName")),
            ("private endpoint of", _endpoint_target),
            ("sub-resource", lambda i: (_endpoint_connection(i) or {}).get("groupIds")),
            ("subnet", field("subnet.id")),
        ),
        answer=_private_endpoint,
        provisioning_seconds=60.0,  # a network interface and the connection's approval
    ),
    ResourceType(
        "azure-native:network:PrivateDnsZoneGroup",
        shows=(
            ("endpoint", field("privateEndpointName")),
            (
                "zones",
                lambda i: [c.get("privateDnsZoneId") for c in i.get("privateDnsZoneConfigs") or []],
            ),
        ),
        answer=_dns_zone_group,
        provisioning_seconds=10.0,
    ),
    ResourceType("llmops:databricks:Workspace"),
    ResourceType(
        "azure-native:databricks:Workspace",
        shows=(
            ("name", field("workspaceName")),
            ("region", field("location")),
            ("sku", field("sku.name")),
            ("compute mode", field("computeMode")),
            ("managed group", field("managedResourceGroupId")),
            ("network", _injection),
        ),
        answer=_workspace,
        provisioning_seconds=240.0,  # observed 48 s to 5 min
    ),
    ResourceType(
        "pulumi:providers:databricks",
        shows=(
            ("host", field("host")),
            ("auth", lambda i: "Azure (az login, ARM_* variables or azure-native: config)"),
        ),
        answer=_provider,
    ),
    ResourceType("llmops:databricks:LabCredential"),
    ResourceType(
        "azure-native:databricks:AccessConnector",
        shows=(
            ("name", field("connectorName")),
            ("region", field("location")),
            ("identity", field("identity.type")),
        ),
        answer=_access_connector,
        provisioning_seconds=20.0,  # an ARM resource with a system-assigned identity
    ),
    ResourceType(
        "databricks:index/credential:Credential",
        shows=(
            ("name", field("name")),
            ("purpose", field("purpose")),
            ("access connector", field("azureManagedIdentity.accessConnectorId")),
        ),
        answer=_credential,
        provisioning_seconds=1.0,
    ),
    ResourceType("llmops:databricks:LabCluster"),
    ResourceType(
        "databricks:index/cluster:Cluster",
        shows=(
            ("name", field("clusterName")),
            ("runtime", field("sparkVersion")),
            ("node type", field("nodeTypeId")),
            ("photon", lambda i: "off" if i.get("runtimeEngine") == "STANDARD" else "on"),
            ("single node", _single_node),
            ("access mode", field("dataSecurityMode")),
            ("environment", lambda i: sorted((i.get("sparkEnvVars") or {}).keys())),
            ("single user", field("singleUserName")),
            ("auto-termination", lambda i: f"{i.get('autoterminationMinutes')} min"),
            ("up waits for RUNNING", lambda i: "no (clusterNoWait)" if i.get("noWait") else "yes"),
        ),
        answer=_cluster,
        provisioning_seconds=300.0,  # waits for RUNNING: a cold VM start, 4-5 min
    ),
    ResourceType("llmops:databricks:LabEnvironment"),
    ResourceType(
        "databricks:index/secretScope:SecretScope",
        shows=(("name", field("name")), ("backend", field("backendType"))),
        answer=_secret_scope,
        provisioning_seconds=1.0,  # one Databricks REST call each, answered at once
    ),
    ResourceType(
        "databricks:index/secret:Secret",
        shows=(("scope", field("scope")), ("key", field("key")), ("value", field("stringValue"))),
        answer=_secret,
        provisioning_seconds=1.0,
    ),
    ResourceType(
        "databricks:index/mlflowExperiment:MlflowExperiment",
        shows=(("path", field("name")),),
        answer=_experiment,
        provisioning_seconds=1.0,
    ),
    ResourceType("llmops:databricks:PromptSchema"),
    ResourceType(
        "databricks:index/schema:Schema",
        shows=(("catalog", field("catalogName")), ("name", field("name"))),
        answer=_schema,
        provisioning_seconds=1.0,
    ),
    ResourceType(
        "databricks:index/grants:Grants",
        shows=(("on", field("schema")), ("grants", _uc_privileges)),
        answer=_uc_grants,
        provisioning_seconds=1.0,
    ),
    ResourceType("llmops:databricks:LabGateway"),
    ResourceType(
        "databricks:index/modelServing:ModelServing",
        shows=(
            ("name", field("name")),
            ("external model", _external_model),
            ("key", _key_reference),
            ("rate limits", _limits),
            (
                "usage tracking",
                lambda i: (
                    "on (system.serving.endpoint_usage)"
                    if field("aiGateway.usageTrackingConfig.enabled")(i)
                    else "off"
                ),
            ),
            ("inference table", _inference_table),
            ("guardrails", _guardrail_summary),
        ),
        answer=_serving_endpoint,
        # An external model has no compute to provision: the endpoint is READY in seconds.
        provisioning_seconds=10.0,
        reads_back=_serving_updated,
        # terraform-provider-databricks, serving/resource_model_serving.go: the schema's
        # Computed paths and outputs; ``name`` is ForceNew. Nothing under ai_gateway is computed.
        computed=frozenset(
            {
                "servingEndpointId",
                "endpointUrl",
                "config",
                "config.trafficConfig",
                "config.servedEntities.name",
                "config.servedEntities.workloadType",
            }
        ),
        replaced_by=("name",),
    ),
    ResourceType(
        "databricks:index/permissions:Permissions",
        shows=(("grants", _grants),),
        answer=_permissions,
        provisioning_seconds=1.0,
    ),
    ResourceType("llmops:databricks:LabJobs"),
    ResourceType(
        "databricks:index/workspaceFile:WorkspaceFile",
        shows=(("path", field("path")), ("source", field("source"))),
        answer=_workspace_file,
        provisioning_seconds=1.0,
    ),
    ResourceType(
        "databricks:index/job:Job",
        shows=(
            ("name", field("name")),
            ("schedule", _job_schedule),
            ("runs", _job_runs),
            ("compute", _job_compute),
            ("installs", _job_installs),
        ),
        answer=_job,
        provisioning_seconds=1.0,
    ),
)

#: The provider functions the program calls.
FUNCTIONS: Final[tuple[FunctionType, ...]] = (
    FunctionType("azure-native:authorization:getClientConfig", _client_config),
    FunctionType("azure-native:authorization:getClientToken", _client_token),
    FunctionType("azure-native:databricks:getAccessConnector", _access_connector_lookup),
    FunctionType("azure-native:resources:getResourceGroup", _resource_group_lookup),
    FunctionType("azure-native:databricks:getWorkspace", _workspace_lookup),
    FunctionType("databricks:index/getCurrentMetastore:getCurrentMetastore", _current_metastore),
    FunctionType("azure-native:cognitiveservices:listAccountKeys", _account_keys),
    FunctionType("databricks:index/getCurrentUser:getCurrentUser", _current_user),
)
