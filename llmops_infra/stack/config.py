"""The stack's ``llmops:`` configuration: declared once, validated once, at the edge.

``Pulumi.yaml`` is the one declaration of every key: its type, description and
default. The Pulumi CLI checks values against those types before the program
runs and hands the program strings; this module reads the same declaration, so
the program applies the same defaults and the same type rules itself (the
offline engine, the tests and ``plan`` run the program without the CLI). Each
key's own rule sits beside it in :data:`RULES`: what the value must be, said
in the words a user reads when it is not. :func:`parse_config` collects every
problem into one :class:`ConfigError` before any resource is registered.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ruamel.yaml import YAML

from llmops_infra.errors import ConfigError
from llmops_infra.stack.address_space import allowed_range_problem, vnet_problem
from llmops_infra.stack.quartz_cron import cron_problem
from llmops_infra.stack.regions import AZURE_REGIONS
from workload.contract import PROJECT_DIR

__all__ = [
    "NAMESPACE",
    "PROVIDER_NAMESPACES",
    "RULES",
    "WORKSPACE_ID",
    "AuthMode",
    "Compute",
    "ConfigType",
    "Declaration",
    "LlmopsConfig",
    "Network",
    "PrincipalType",
    "WorkspaceSku",
    "declarations",
    "default_config",
    "parse_config",
    "type_problem",
    "undeclared_keys",
]

NAMESPACE: Final = "llmops"

WorkspaceSku = Literal["premium", "trial"]
AuthMode = Literal["key", "entra"]
Compute = Literal["cluster", "serverless"]
Network = Literal["public", "private"]
PrincipalType = Literal["User", "ServicePrincipal"]
ConfigType = Literal["string", "integer", "boolean", "array", "object"]


@dataclass(frozen=True)
class LlmopsConfig:
    """The validated settings of one stack; every later step trusts them.

    Defaults come from ``Pulumi.yaml`` (:func:`default_config`), never from here.
    """

    allowed_regions: tuple[str, ...]
    """Regions the one-time random draw picks from (those offering what the options need)."""
    region: str | None
    """A pinned region (one of ``allowed_regions``), or None to draw at random."""
    deployment_name: str
    """The chat deployment's name: the ``model=`` the chat call passes."""
    model_name: str
    """The OpenAI model to deploy."""
    model_version: str | None
    """A pinned model version, or None for Azure's default version."""
    capacity: int
    """Deployment capacity in thousands of tokens per minute (10 = 10K TPM)."""
    openai_api_version: str
    """The Azure OpenAI data-plane API version handed to the workload."""
    workspace_sku: WorkspaceSku
    """The Databricks workspace's pricing tier."""
    spark_version: str
    """The cluster's Databricks Runtime (16.4 LTS ML)."""
    node_type: str
    """The cluster's VM size."""
    autotermination_minutes: int
    """Idle minutes before the cluster stops."""
    secret_scope: str
    """The Databricks-backed secret scope holding the Azure OpenAI key (key mode)."""
    experiment_path: str
    """The workspace path of the MLflow experiment the traces land in."""
    purge_on_destroy: bool
    """Purge the soft-deleted Azure OpenAI account after ``pulumi destroy`` deletes it."""
    cluster_no_wait: bool
    """Do not wait for the cluster to reach RUNNING: ``pulumi up`` ends minutes sooner."""
    tags: Mapping[str, str]
    """Tags added to every Azure resource and the cluster's VMs."""
    auth_mode: AuthMode
    """``key`` (the lab: an account key in a secret scope) or ``entra`` (keyless)."""
    deployer_principal_type: PrincipalType | None
    """Keyless: the deploying identity's principal type, or None to read it from its token."""
    service_credential: str | None
    """Keyless: an existing Unity Catalog service credential to use, or None to create one."""
    access_connector_id: str | None
    """Keyless with ``service_credential``: the ARM id of the Access Connector it is bound to."""
    judge_model: str | None
    """The model of a second deployment for the eval judges (named after it), or None."""
    judge_model_version: str | None
    """The judge model's pinned version, or None for Azure's default."""
    judge_capacity: int
    """The judge deployment's capacity in thousands of tokens per minute."""
    gateway: bool
    """A serving endpoint with AI Gateway in front of each deployment (key mode only)."""
    gateway_user_tokens_per_minute: int
    """The gateway's per-user token limit on each endpoint; 0 = none beyond the endpoint's."""
    gateway_guardrails: bool
    """The gateway's PII and safety guardrails."""
    inference_table: str
    """``catalog.schema`` the gateway writes its inference tables to; "" = none."""
    compute: Compute
    """Where the jobs run: ``cluster`` (the seed's cluster) or ``serverless`` (no cluster)."""
    catalog: str | None
    """A Unity Catalog catalog for the prompt's schema; None = no schema, no prompt name."""
    schema: str
    """The schema in ``catalog`` holding the lab's prompt."""
    resource_group_name: str | None
    """An existing resource group to build in (looked up, never created), or None: the stack
    makes its own."""
    workspace_resource_id: str | None
    """The ARM id of an existing Databricks workspace to build in, or None: the stack makes
    its own."""
    monitor_schedule: str | None
    """A Quartz cron expression the monitor job runs on, unpaused; None: its schedule stays
    paused."""
    network: Network
    """``public`` (the lab: every endpoint on the internet) or ``private`` (a virtual
    network, the account behind a private endpoint)."""
    vnet_address_space: str
    """Private mode: the virtual network's IPv4 range (/16../22), its subnets carved from it."""
    allowed_ip_ranges: tuple[str, ...]
    """Private mode: public IPv4 addresses or ranges that may still reach the account."""


@dataclass(frozen=True)
class Declaration:
    """What ``Pulumi.yaml`` declares for one key."""

    key: str
    type: ConfigType
    default: Any
    description: str
    items: ConfigType | None = None
    """The element type of an array."""


@functools.cache
def declarations() -> dict[str, Declaration]:
    """Every ``llmops:`` key as ``Pulumi.yaml`` declares it, in its order."""
    project = YAML(typ="safe", pure=True).load((PROJECT_DIR / "Pulumi.yaml").read_text())
    found: dict[str, Declaration] = {}
    for key, spec in (project.get("config") or {}).items():
        name = key.split(":", 1)[-1]
        items = (spec.get("items") or {}).get("type")
        found[name] = Declaration(name, spec["type"], spec["default"], spec["description"], items)
    return found


#: The namespaces of the provider SDKs the program uses (each SDK's ``pulumi-plugin.json``
#: names its own); their keys are the providers' to check, never ours.
PROVIDER_NAMESPACES: Final = ("azure-native", "databricks", "random")
#: Pulumi's own namespace (``pulumi:tags``, ``pulumi:disable-default-providers``).
_PULUMI_NAMESPACE: Final = "pulumi"


def undeclared_keys(keys: Iterable[str]) -> list[str]:
    """One line for each key among ``keys`` that nothing reads, naming the closest
    declared key: an ``llmops:`` key that ``Pulumi.yaml`` does not declare, or a key in a
    namespace that is neither ours, Pulumi's nor a provider's (``lmops:capacity``).

    The Pulumi CLI passes such a key to the program without a word, and the program never
    reads it: ``llmops:capacty=20`` leaves the capacity at 10 in silence. The program
    warns (``pulumi up``) and ``plan`` says so too. The declared keys are read from
    ``Pulumi.yaml``, so a key added there is known here at once.
    """
    declared = declarations()
    known = (NAMESPACE, _PULUMI_NAMESPACE, *PROVIDER_NAMESPACES)
    lines = []
    for full in sorted(set(keys)):
        namespace, _, name = full.partition(":")
        if namespace == NAMESPACE and name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.6)
            hint = (
                f"did you mean {NAMESPACE}:{close[0]}?"
                if close
                else "docs/configuration.md lists every key"
            )
            lines.append(
                f"{full} is not a key Pulumi.yaml declares, so it changes nothing ({hint})"
            )
        elif namespace not in known:
            qualified = [f"{NAMESPACE}:{key}" for key in declared]
            close = difflib.get_close_matches(full, qualified, n=1, cutoff=0.6)
            hint = (
                f"did you mean {close[0]}?"
                if close
                else f"the stack's own keys are {NAMESPACE}:..., docs/configuration.md lists them"
            )
            lines.append(
                f"{full} is in no namespace this stack reads ({', '.join(known)}), "
                f"so it changes nothing ({hint})"
            )
    return lines


# --- the CLI's type rules (pkg/workspace/project.go) -----------------------------------------

_ATOI: Final = re.compile(r"[+-]?[0-9]+")


def type_problem(declared: Declaration, value: Any) -> str | None:
    """Why the Pulumi CLI would refuse ``value`` for this key, or None when it accepts it.

    ``value`` is as YAML 1.2 reads it from a stack file (a scalar as the text the
    CLI keeps for it: ``10`` as "10", ``true`` as "true"), or a string from the
    command line. An integer is a whole YAML number or a string Go's
    ``strconv.Atoi`` takes ("10", not "10.0", "1_000" or " 10 "); a boolean is a
    YAML boolean or exactly "true"/"false"; arrays and objects must be YAML ones.
    """
    kind = declared.type
    ok: bool
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "integer":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and _ATOI.fullmatch(value) is not None
        )
    elif kind == "boolean":
        ok = isinstance(value, bool) or value in ("true", "false")
    elif kind == "array":
        item = Declaration("", declared.items or "string", None, "")
        ok = isinstance(value, list) and all(type_problem(item, v) is None for v in value)
    else:
        ok = isinstance(value, Mapping)
    if ok:
        return None
    full = f"array<{declared.items}>" if kind == "array" else kind
    return f"must be of type '{full}' (Pulumi.yaml declares it so)"


def _decode(declared: Declaration, text: str) -> Any:
    """The program's side of the same rules: the CLI hands every value over as a string."""
    if declared.type in ("array", "object"):
        try:
            value = json.loads(text)
        except ValueError:
            value = text
    else:
        value = text
    if type_problem(declared, value) is not None:
        raise ValueError(type_problem(declared, value))
    if declared.type == "integer":
        return int(value)
    if declared.type == "boolean":
        return value == "true"
    return value


# --- each key's own rule ----------------------------------------------------------------------

Check = Callable[[Any, Mapping[str, Any]], str | None]
"""``check(value, settings so far)``: what is allowed when ``value`` is not, else None."""


@dataclass(frozen=True)
class Rule:
    """How one key becomes one field of :class:`LlmopsConfig`."""

    attribute: str
    check: Check | None = None
    empty_is_none: bool = False
    """An empty string means "not set" (None), as for ``region`` or ``modelVersion``."""
    keep_refused: bool = False
    """Later rules see a refused value as given, not the default: ``gateway true`` refused
    for a keyless stack is still what the user asked for, so the gateway's own keys are
    not also reported as set without a gateway."""
    checks_empty: bool = False
    """The check sees the empty string too (a key that must be set together with another)."""


_SECRET_SCOPE_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
_EXPERIMENT_PATH: Final = re.compile(r"/(Shared|Users/[^/]+)(/[^/]+)+")


def _no_spaces(value: str, _: Mapping[str, Any]) -> str | None:
    return "must not contain spaces" if any(c.isspace() for c in value) else None


def _one_of(*allowed: str) -> Check:
    return lambda value, _: None if value in allowed else f"must be one of {', '.join(allowed)}"


def _at_least_one(value: int, _: Mapping[str, Any]) -> str | None:
    return None if value >= 1 else "must be a whole number >= 1 (thousands of TPM)"


def _regions(value: list[str], _: Mapping[str, Any]) -> str | None:
    if not value or not all(r.strip() for r in value):
        return 'must be a non-empty list of region names, e.g. ["eastus2", "swedencentral"]'
    unknown = [r for r in value if r not in AZURE_REGIONS]
    if unknown:
        return (
            f"unknown Azure region(s) {', '.join(unknown)} (names as in "
            "`az account list-locations`); the lab's regions are "
            + ", ".join(declarations()["allowedRegions"].default)
        )
    return "list each region once" if len(set(value)) != len(value) else None


def _region(value: str, settings: Mapping[str, Any]) -> str | None:
    if value not in AZURE_REGIONS:
        return "unknown Azure region (names as in `az account list-locations`)"
    allowed = settings["allowed_regions"]
    return None if value in allowed else f"must be one of allowedRegions: {', '.join(allowed)}"


def _autotermination(value: int, _: Mapping[str, Any]) -> str | None:
    return None if 10 <= value <= 10000 else "must be a whole number of minutes from 10 to 10000"


def _secret_scope(value: str, _: Mapping[str, Any]) -> str | None:
    if _SECRET_SCOPE_NAME.fullmatch(value):
        return None
    return "must be 1 to 128 letters, digits, dashes, underscores or periods"


def _experiment_path(value: str, _: Mapping[str, Any]) -> str | None:
    if _EXPERIMENT_PATH.fullmatch(value) and value.strip() == value:
        return None
    return (
        "must be an absolute workspace path under /Shared/ or /Users/<user>/, "
        "e.g. /Shared/llmops-lab, without a trailing slash"
    )


def _tags(value: Mapping[str, Any], _: Mapping[str, Any]) -> str | None:
    if all(isinstance(v, str) for v in value.values()):
        return None
    return 'must be a map of strings to strings, e.g. {"owner": "me"}'


def _judge_model(value: str, settings: Mapping[str, Any]) -> str | None:
    if any(c.isspace() for c in value):
        return "must not contain spaces"
    if value == settings["deployment_name"]:
        return (
            "the judge deployment is named after its model and must not share the chat "
            "deployment's name (deploymentName); leave judgeModel empty to judge with the "
            "chat deployment"
        )
    return None


def _gateway(value: bool, settings: Mapping[str, Any]) -> str | None:
    if not value or settings["auth_mode"] != "entra":
        return None
    # Databricks external models: Azure OpenAI is reached with a key from a Databricks
    # secret (or an Entra app's client secret); the service-credential route for model
    # providers is in Beta (Microsoft Learn, "External models in Mosaic AI Model Serving",
    # read 2026-12-05).
    return (
        "the gateway's external model reaches Azure OpenAI with a key from a Databricks "
        "secret, and a keyless account (authMode entra) has no key; Databricks' "
        "service-credential route for model providers is in Beta: set authMode key to use "
        "the gateway, or gateway false to stay keyless"
    )


def _compute(value: str, settings: Mapping[str, Any]) -> str | None:
    if value not in ("cluster", "serverless"):
        return "must be one of cluster, serverless"
    if value != "serverless" or settings["auth_mode"] != "entra":
        return None
    # A keyless job reads its token from a Unity Catalog service credential with
    # dbutils.credentials.getServiceCredentialsProvider, documented for "a compute
    # resource that is on Databricks Runtime 16.2 or above" (Microsoft Learn, "Use Unity
    # Catalog service credentials to connect to external cloud services", read
    # 2026-12-07); on serverless the Databricks SDK's dbutils marks that method
    # unsupported (databricks/sdk/dbutils.py, not_supported_override_paths) and raises
    # ValueError without a cluster id. No documented way yet: refused, not left to fail
    # at the first run.
    return (
        "with authMode entra (keyless), serverless jobs have no documented way to get a "
        "token: a job reads it from "
        "a Unity Catalog service credential with dbutils.credentials, which serverless "
        "compute does not offer; set compute cluster to stay keyless, or authMode key to "
        "use serverless jobs"
    )


def _only_with_gateway(key: str) -> str:
    # Refused rather than ignored: a limit, guardrail or table the user believes is on
    # but is not (no gateway, so nothing enforces it) is worse than one more edit.
    return f"{key} applies only to the gateway: set gateway true, or leave {key} unset"


def _gateway_user_tpm(value: int, settings: Mapping[str, Any]) -> str | None:
    if value < 0:
        return "must be a whole number >= 0 (tokens per minute; 0 = no per-user limit)"
    if value == 0:
        return None
    if not settings["gateway"]:
        return _only_with_gateway("gatewayUserTokensPerMinute")
    # A per-user limit above the deployment's TPM would only turn the gateway's answer
    # into Azure's 429; it applies on each endpoint, the judge's too.
    chat = settings["capacity"] * 1000
    limits = [f"the chat deployment's {chat} (capacity x 1000)"]
    ceiling = chat
    if settings["judge_model"] is not None:
        judge = settings["judge_capacity"] * 1000
        limits.append(f"the judge deployment's {judge} (judgeCapacity x 1000)")
        ceiling = min(chat, judge)
    if value <= ceiling:
        return None
    return (
        "the per-user limit applies on each gateway endpoint and must not exceed its "
        f"deployment's tokens per minute: at most {ceiling} ({' and '.join(limits)})"
    )


def _gateway_guardrails(value: bool, settings: Mapping[str, Any]) -> str | None:
    return _only_with_gateway("gatewayGuardrails") if value and not settings["gateway"] else None


# Unity Catalog object names: at most 255 characters, no period, space, forward slash,
# ASCII control character or DELETE (Databricks, "Names", read 2026-12-05).
_UC_NAME: Final = re.compile(r"[^./ \x00-\x1f\x7f]{1,255}")


def _inference_table(value: str, settings: Mapping[str, Any]) -> str | None:
    if value == "":
        return None
    parts = value.split(".")
    if len(parts) != 2 or not all(_UC_NAME.fullmatch(part) for part in parts):
        return (
            "must be catalog.schema (two Unity Catalog names of at most 255 characters, "
            "without spaces, slashes or periods), e.g. main.llmops; empty = no inference table"
        )
    return None if settings["gateway"] else _only_with_gateway("inferenceTable")


def _uc_name(value: str, _: Mapping[str, Any]) -> str | None:
    if _UC_NAME.fullmatch(value):
        return None
    return (
        "must be a Unity Catalog name: at most 255 characters, without spaces, slashes or periods"
    )


def _principal_type(value: str, _: Mapping[str, Any]) -> str | None:
    # Azure's principal types also name Group, ForeignGroup and Device, but none of those can
    # be the identity that signs in and deploys (the assignment names the deployer's own id).
    if value in ("User", "ServicePrincipal"):
        return None
    return (
        "must be User or ServicePrincipal (the deploying identity's own type), or empty to "
        "read it from the deployer's access token"
    )


#: An Access Connector's resource id, as `az databricks access-connector show --query id` prints.
_ACCESS_CONNECTOR_ID: Final = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Databricks/"
    r"accessConnectors/[^/]+",
    re.IGNORECASE,
)


def _access_connector_id(value: str, settings: Mapping[str, Any]) -> str | None:
    if bool(value) != (settings["service_credential"] is not None):
        return (
            "serviceCredential and accessConnectorId go together: the existing service "
            "credential and the resource id of the Access Connector it is bound to; set both "
            "or neither"
        )
    if value and not _ACCESS_CONNECTOR_ID.fullmatch(value):
        return (
            "must be an Access Connector's resource id, /subscriptions/<id>/resourceGroups/"
            "<group>/providers/Microsoft.Databricks/accessConnectors/<name>"
        )
    return None


# Azure resource group names: 1 to 90 letters, digits, underscores, parentheses, hyphens and
# periods, not ending in a period (Microsoft Learn, "Naming rules and restrictions for Azure
# resources", Microsoft.Resources/resourcegroups).
_GROUP_NAME: Final = re.compile(r"[-\w.()]{0,89}[-\w()]")
#: A Databricks workspace's resource id, as `az databricks workspace show --query id` prints.
WORKSPACE_ID: Final = re.compile(
    r"/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/"
    r"Microsoft\.Databricks/workspaces/(?P<name>[^/]+)",
    re.IGNORECASE,
)


def _resource_group_name(value: str, _: Mapping[str, Any]) -> str | None:
    if _GROUP_NAME.fullmatch(value):
        return None
    return (
        "must be an existing resource group's name: 1 to 90 letters, digits, underscores, "
        "parentheses, hyphens or periods, not ending in a period; empty = the stack makes "
        "its own group"
    )


def _workspace_resource_id(value: str, settings: Mapping[str, Any]) -> str | None:
    if not WORKSPACE_ID.fullmatch(value):
        return (
            "must be an Azure Databricks workspace's resource id, /subscriptions/<id>/"
            "resourceGroups/<group>/providers/Microsoft.Databricks/workspaces/<name> "
            "(`az databricks workspace show --query id`); empty = the stack makes its own"
        )
    if settings["workspace_sku"] != "premium":
        # The workspace's own SKU is looked up at `up`; a different one set here would be
        # silently ignored.
        return (
            "the existing workspace keeps its own pricing tier, so llmops:workspaceSku does "
            "not apply: leave workspaceSku unset"
        )
    return None


def _monitor_schedule(value: str, _: Mapping[str, Any]) -> str | None:
    return cron_problem(value)


def _network(value: str, settings: Mapping[str, Any]) -> str | None:
    if value not in ("public", "private"):
        return "must be one of public, private"
    if value == "public":
        return None
    # The gateway's serving endpoints and serverless jobs run in Databricks' serverless
    # plane, outside the stack's virtual network: they reach a private account only through
    # a network connectivity configuration with a private endpoint rule, which only an
    # account admin makes (Microsoft Learn, "Configure private connectivity to Azure
    # resources" for serverless compute; Model Serving's limits page lists the regions
    # where it reaches external models over Private Link).
    needing = [
        what
        for what, on in (
            ("gateway true (its serving endpoints)", settings["gateway"]),
            ("compute serverless (its jobs)", settings["compute"] == "serverless"),
        )
        if on
    ]
    if not needing:
        return None
    return (
        f"{' and '.join(needing)} run in Databricks' serverless compute, outside the "
        "stack's virtual network, and reach a private Azure OpenAI account only through a "
        "network connectivity configuration with a private endpoint rule, which a "
        "Databricks account admin makes (docs/networking.md); set network public, or "
        "gateway false and compute cluster"
    )


def _only_in_private(key: str, default: Any) -> Check:
    # Refused rather than ignored: allowed addresses the user believes restrict the account
    # while the account stays open to everyone are worse than one more edit.
    def check(value: Any, settings: Mapping[str, Any]) -> str | None:
        if settings["network"] == "private" or value == default:
            return None
        return f"{key} applies only to network private: set network private, or leave {key} unset"

    return check


def _vnet_address_space(value: str, settings: Mapping[str, Any]) -> str | None:
    problem = vnet_problem(value)
    if problem is not None:
        return problem
    return _only_in_private("vnetAddressSpace", declarations()["vnetAddressSpace"].default)(
        value, settings
    )


def _allowed_ip_ranges(value: list[str], settings: Mapping[str, Any]) -> str | None:
    problem = allowed_range_problem(value)
    if problem is not None:
        return problem
    return _only_in_private("allowedIpRanges", [])(value, settings)


#: Each key's rule, in the order keys are checked (a rule sees the fields before it).
RULES: Final[dict[str, Rule]] = {
    "allowedRegions": Rule("allowed_regions", _regions),
    "region": Rule("region", _region, empty_is_none=True),
    "deploymentName": Rule("deployment_name", _no_spaces),
    "modelName": Rule("model_name", _no_spaces),
    "modelVersion": Rule("model_version", _no_spaces, empty_is_none=True),
    "capacity": Rule("capacity", _at_least_one),
    "openaiApiVersion": Rule("openai_api_version", _no_spaces),
    "workspaceSku": Rule("workspace_sku", _one_of("premium", "trial")),
    "sparkVersion": Rule("spark_version", _no_spaces),
    "nodeType": Rule("node_type", _no_spaces),
    "autoterminationMinutes": Rule("autotermination_minutes", _autotermination),
    "secretScope": Rule("secret_scope", _secret_scope),
    "experimentPath": Rule("experiment_path", _experiment_path),
    "purgeOnDestroy": Rule("purge_on_destroy"),
    "clusterNoWait": Rule("cluster_no_wait"),
    "tags": Rule("tags", _tags),
    "authMode": Rule("auth_mode", _one_of("key", "entra")),
    "deployerPrincipalType": Rule("deployer_principal_type", _principal_type, empty_is_none=True),
    "serviceCredential": Rule("service_credential", _no_spaces, empty_is_none=True),
    "accessConnectorId": Rule(
        "access_connector_id", _access_connector_id, empty_is_none=True, checks_empty=True
    ),
    "judgeModel": Rule("judge_model", _judge_model, empty_is_none=True),
    "judgeModelVersion": Rule("judge_model_version", _no_spaces, empty_is_none=True),
    "judgeCapacity": Rule("judge_capacity", _at_least_one),
    "gateway": Rule("gateway", _gateway, keep_refused=True),
    "gatewayUserTokensPerMinute": Rule("gateway_user_tokens_per_minute", _gateway_user_tpm),
    "gatewayGuardrails": Rule("gateway_guardrails", _gateway_guardrails),
    "inferenceTable": Rule("inference_table", _inference_table),
    "compute": Rule("compute", _compute),
    "catalog": Rule("catalog", _uc_name, empty_is_none=True),
    "schema": Rule("schema", _uc_name),
    "resourceGroupName": Rule("resource_group_name", _resource_group_name, empty_is_none=True),
    "workspaceResourceId": Rule(
        "workspace_resource_id", _workspace_resource_id, empty_is_none=True
    ),
    "monitorSchedule": Rule("monitor_schedule", _monitor_schedule, empty_is_none=True),
    "network": Rule("network", _network, keep_refused=True),
    "vnetAddressSpace": Rule("vnet_address_space", _vnet_address_space),
    "allowedIpRanges": Rule("allowed_ip_ranges", _allowed_ip_ranges),
}


def parse_config(get: Callable[[str], str | None]) -> LlmopsConfig:
    """Build the settings from the strings the CLI hands over; ``get(key)`` may return None.

    A key not set takes ``Pulumi.yaml``'s default. All problems are collected and
    raised together, so a user fixes them in one round instead of one per ``pulumi up``.
    """
    declared = declarations()
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, rule in RULES.items():
        declaration = declared[key]
        raw = get(key)
        value: Any = declaration.default
        if raw is not None and raw != "":
            try:
                value = _decode(declaration, raw)
            except ValueError as err:
                problems.append(f"{NAMESPACE}:{key} = {raw!r} is not valid: {err}")
                value = declaration.default
        if rule.empty_is_none and value == "" and not rule.checks_empty:
            values[rule.attribute] = None
            continue
        problem = rule.check(value, values) if rule.check else None
        if problem is not None:
            problems.append(f"{NAMESPACE}:{key} = {raw!r} is not valid: {problem}")
            value = value if rule.keep_refused else declaration.default
        values[rule.attribute] = None if rule.empty_is_none and value == "" else value
    if problems:
        raise ConfigError("; ".join(problems))
    values["allowed_regions"] = tuple(values["allowed_regions"])
    values["allowed_ip_ranges"] = tuple(values["allowed_ip_ranges"])
    values["tags"] = dict(values["tags"])
    return LlmopsConfig(**values)


def default_config() -> LlmopsConfig:
    """The settings of a stack that sets nothing: ``Pulumi.yaml``'s defaults."""
    return parse_config(lambda _key: None)
