"""The guardrails of the shared LLMOps lab, as Pulumi resource policies.

A lab shared by many people fails in predictable ways: someone raises the
TPM and eats the subscription's quota, a cluster never stops, a key lands in
clear text in a cluster's environment, a serverless job installs whatever pip
finds that day. Each policy here checks one of those before the resource
exists, with its limits in the pack's configuration (``pulumi up
--policy-pack-config``) and an enforcement level a team can change.

The engine hands a policy the resource's inputs by their wire names (camelCase,
numbers as floats). During a preview some inputs are not known yet (a region
drawn at random, a secret's reference); a policy never guesses about those: it
says it does not apply, and ``pulumi up`` checks the real value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

__all__ = [
    "CREDENTIAL_SUFFIXES",
    "LAB_REGIONS",
    "MAX_CAPACITY",
    "MAX_MINUTES",
    "MAX_WORKERS",
    "PACK_NAME",
    "POLICIES",
]

PACK_NAME: Final = "llmops-guardrails"

#: The lab's regions with gpt-4o Standard quota (the default of llmops:allowedRegions).
LAB_REGIONS: Final = ("eastus2", "northcentralus", "swedencentral", "switzerlandwest")

#: The limits' defaults (each also its policy's schema default, which the CLI sends).
MAX_CAPACITY: Final = 50
MAX_WORKERS: Final = 2
MAX_MINUTES: Final = 120
CREDENTIAL_SUFFIXES: Final = ("KEY", "TOKEN", "SECRET", "PASSWORD")

ACCOUNT: Final = "azure-native:cognitiveservices:Account"
DEPLOYMENT: Final = "azure-native:cognitiveservices:Deployment"
WORKSPACE: Final = "azure-native:databricks:Workspace"
CLUSTER: Final = "databricks:index/cluster:Cluster"
SERVING: Final = "databricks:index/modelServing:ModelServing"
VIRTUAL_NETWORK: Final = "azure-native:network:VirtualNetwork"
PRIVATE_ENDPOINT: Final = "azure-native:network:PrivateEndpoint"

#: Azure's requests per minute per 1,000 TPM of a Standard deployment (the workload paces by
#: the same ratio, in workload/model/pacing.py; the pack runs on its own and keeps its copy).
_REQUESTS_PER_1000_TOKENS: Final = 6
JOB: Final = "databricks:index/job:Job"

#: A Databricks secret reference, the only form a credential may take in a cluster's settings.
_SECRET_REFERENCE: Final = re.compile(r"^\{\{secrets/[^/{}]+/[^/{}]+\}\}$")

#: A pinned pip requirement line: one exact version (``name==version``), or a wheel file by
#: its path (the workload's carries its content's hash in that path).
_PINNED_REQUIREMENT: Final = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]*\])?==[A-Za-z0-9.+!_-]+$|^/\S+\.whl$"
)

_MISSING: Final = object()
_UNKNOWN: Final = object()


def _get(props: Any, *path: str) -> Any:
    """The value at a path of keys: ``_MISSING`` when absent, ``_UNKNOWN`` when not known yet."""
    value: Any = props
    try:
        for part in path:
            if not isinstance(value, Mapping) or part not in value:
                return _MISSING
            value = value[part]
    except UnknownValueError:
        return _UNKNOWN
    return value


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _config(args: ResourceValidationArgs, key: str, default: Any) -> Any:
    # The CLI fills each property's schema default; a direct caller may not.
    return args.get_config().get(key, default)


Validate = Callable[[ResourceValidationArgs, ReportViolation], None]


def _for_types(*types: str) -> Callable[[Validate], Validate]:
    """Run a validation only on the given resource types."""

    def wrap(validate: Validate) -> Validate:
        def run(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type in types:
                validate(args, report)

        run.__doc__ = validate.__doc__
        return run

    return wrap


# --- where -----------------------------------------------------------------------------------


@_for_types(ACCOUNT, WORKSPACE)
def _allowed_region(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = [str(r) for r in _config(args, "allowedRegions", list(LAB_REGIONS))]
    location = _get(args.props, "location")
    if location is _UNKNOWN:
        args.not_applicable("the region is drawn at random at `pulumi up`; checked then")
    if location is _MISSING or location in allowed:
        return
    report(
        f"region '{location}' is not allowed here (allowed: {', '.join(allowed)}); "
        "set llmops:region to one of them, or add the region to the pack's allowedRegions",
        None,
    )


# --- quota -----------------------------------------------------------------------------------


@_for_types(DEPLOYMENT)
def _capacity_cap(args: ResourceValidationArgs, report: ReportViolation) -> None:
    cap = int(_config(args, "maxCapacity", MAX_CAPACITY))
    capacity = _number(_get(args.props, "sku", "capacity"))
    if capacity is not None and capacity > cap:
        report(
            f"capacity {capacity:g} ({capacity:g}K TPM) is above the cap of {cap} ({cap}K TPM) "
            "that keeps the subscription's quota shared; lower llmops:capacity "
            "(or llmops:judgeCapacity)",
            None,
        )


@_for_types(ACCOUNT)
def _no_dynamic_quota(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # Dynamic quota is the account's setting (AccountProperties.dynamicThrottlingEnabled);
    # a deployment only reports it.
    if _get(args.props, "properties", "dynamicThrottlingEnabled") is True:
        report(
            "dynamic quota (properties.dynamicThrottlingEnabled) lets the account's deployments "
            "take quota beyond their capacity; leave it off",
            None,
        )


# --- the cluster -----------------------------------------------------------------------------


def _single_node(props: Mapping[str, Any]) -> bool:
    if _get(props, "isSingleNode") is True:
        return True
    profile = _get(props, "sparkConf", "spark.databricks.cluster.profile")
    workers = _number(_get(props, "numWorkers"))
    return profile == "singleNode" and workers in (None, 0.0)


@_for_types(CLUSTER)
def _cluster_size(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _single_node(args.props):
        return
    cap = int(_config(args, "maxWorkers", MAX_WORKERS))
    workers = _number(_get(args.props, "numWorkers"))
    most = _number(_get(args.props, "autoscale", "maxWorkers"))
    for label, count in (("numWorkers", workers), ("autoscale.maxWorkers", most)):
        if count is not None and count > cap:
            report(
                f"{label} {count:g} is above the cap of {cap} workers; use a single-node "
                "cluster (the lab's) or at most that many workers",
                None,
            )


@_for_types(CLUSTER)
def _auto_termination(args: ResourceValidationArgs, report: ReportViolation) -> None:
    bound = int(_config(args, "maxMinutes", MAX_MINUTES))
    if _get(args.props, "autoterminationMinutes") is _UNKNOWN:
        args.not_applicable("auto-termination is not known until `pulumi up`")
    minutes = _number(_get(args.props, "autoterminationMinutes"))
    if not minutes:
        report(
            "auto-termination is off, so an idle cluster runs (and bills) until someone stops "
            f"it; set llmops:autoterminationMinutes (at most {bound})",
            None,
        )
    elif minutes > bound:
        report(
            f"auto-termination after {minutes:g} minutes is longer than {bound}; "
            f"lower llmops:autoterminationMinutes to {bound} or less",
            None,
        )


@_for_types(CLUSTER)
def _photon(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _config(args, "allowPhoton", False) is True:
        return
    engine = _get(args.props, "runtimeEngine")
    version = _get(args.props, "sparkVersion")
    # Without runtimeEngine, Databricks picks Photon only for a "-photon-" runtime.
    if engine == "PHOTON" or (
        engine is _MISSING and isinstance(version, str) and "-photon-" in version
    ):
        report(
            "Photon is on (it bills more DBUs and the lab's ML runtime does not need it); "
            "set runtimeEngine to STANDARD, or allow it with the pack's allowPhoton",
            None,
        )


@_for_types(CLUSTER)
def _no_clear_text_credentials(args: ResourceValidationArgs, report: ReportViolation) -> None:
    suffixes = tuple(str(s).upper() for s in _config(args, "suffixes", CREDENTIAL_SUFFIXES))
    for field_name in ("sparkEnvVars", "sparkConf"):
        entries = _get(args.props, field_name)
        if not isinstance(entries, Mapping):
            continue
        for name in entries:
            if not name.upper().endswith(suffixes):
                continue
            try:
                value = entries[name]
            except UnknownValueError:
                continue  # computed by another resource (a secret's reference, say): not a literal
            if not (isinstance(value, str) and _SECRET_REFERENCE.match(value)):
                # Never the value itself: it is the credential.
                report(
                    f"{field_name}.{name} holds a value in clear text; store it in a secret scope "
                    "and reference it as {{secrets/<scope>/<key>}}",
                    None,
                )


# --- the gateway -----------------------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    """The known elements of a list input (none when it is missing or not known yet)."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    known = []
    for index in range(len(value)):
        try:
            known.append(value[index])
        except UnknownValueError:
            continue
    return known


def _deployment_capacities(args: StackValidationArgs) -> dict[str, float]:
    found: dict[str, float] = {}
    for resource in args.resources:
        if resource.resource_type != DEPLOYMENT:
            continue
        name = _get(resource.props, "deploymentName")
        capacity = _number(_get(resource.props, "sku", "capacity"))
        if isinstance(name, str) and capacity is not None:
            found[name] = capacity
    return found


def _gateway_limits(args: StackValidationArgs, report: ReportViolation) -> None:
    capacities = _deployment_capacities(args)
    for resource in args.resources:
        if resource.resource_type != SERVING:
            continue
        endpoint = _get(resource.props, "name")
        for entity in _items(_get(resource.props, "config", "servedEntities")):
            deployment = _get(entity, "externalModel", "openaiConfig", "openaiDeploymentName")
            capacity = capacities.get(deployment) if isinstance(deployment, str) else None
            if capacity is None:
                continue  # not a deployment of this stack: nothing to hold the limit to
            ceilings = {
                "tokens": (capacity * 1000, f"{capacity:g}K tokens"),
                "calls": (capacity * _REQUESTS_PER_1000_TOKENS, "requests"),
            }
            for limit in _items(_get(resource.props, "aiGateway", "rateLimits")):
                key = _get(limit, "key")
                key = "endpoint" if key in (_MISSING, None) else key
                for unit, (ceiling, said) in ceilings.items():
                    amount = _number(_get(limit, unit))
                    if amount is not None and amount > ceiling:
                        report(
                            f"endpoint {endpoint}: its {key} limit of {amount:g} {unit} per "
                            f"minute is above deployment {deployment}'s {ceiling:g} ({said} "
                            "per minute at Azure), so the gateway would pass requests Azure "
                            f"refuses with 429; lower it to at most {ceiling:g}",
                            resource.urn,
                        )


@_for_types(SERVING)
def _usage_tracking(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "aiGateway", "usageTrackingConfig", "enabled") is not True:
        report(
            "usage tracking is off on this serving endpoint, so nobody can tell who used how "
            "many tokens; enable ai_gateway.usage_tracking_config (the stack's gateway does)",
            None,
        )


# --- serverless jobs -------------------------------------------------------------------------


@_for_types(JOB)
def _serverless_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    environments = _get(args.props, "environments")
    if not isinstance(environments, Sequence) or isinstance(environments, str):
        return  # a job on a cluster: the cluster's policies apply
    for index, environment in enumerate(environments):
        key = _get(environment, "environmentKey")
        name = key if isinstance(key, str) else f"#{index}"
        version = _get(environment, "spec", "environmentVersion")
        if version is _MISSING or version in ("", None):
            report(
                f"the job environment {name} names no environmentVersion, so its Python and "
                "packages change when Databricks' default does; pin one (e.g. 5)",
                None,
            )
        dependencies = _get(environment, "spec", "dependencies")
        if not isinstance(dependencies, Sequence) or isinstance(dependencies, str):
            continue  # none, or not known before `up`
        for position in range(len(dependencies)):
            try:
                line = dependencies[position]
            except UnknownValueError:
                continue  # computed by another resource (the uploaded wheel's path)
            if not (isinstance(line, str) and _PINNED_REQUIREMENT.match(line.strip())):
                report(
                    f"the job environment {name} installs {line!r} unpinned; give it as "
                    "name==version (requirements.txt pins each) or as a wheel file's path",
                    None,
                )


# --- private networking ----------------------------------------------------------------------


def _account_closed(props: Mapping[str, Any]) -> str | None:
    """Why a private stack's account is not closed, or None."""
    if _get(props, "properties", "networkAcls", "defaultAction") != "Deny":
        return "its network rules do not default to Deny (properties.networkAcls.defaultAction)"
    access = _get(props, "properties", "publicNetworkAccess")
    rules = _items(_get(props, "properties", "networkAcls", "ipRules"))
    if access == "Disabled" or (access == "Enabled" and rules):
        return None
    return (
        "its public network access is Enabled for no listed address "
        "(properties.publicNetworkAccess: Disabled, or Enabled only with ipRules)"
    )


def _private_network(args: StackValidationArgs, report: ReportViolation) -> None:
    # Private mode is a stack with a virtual network (llmops:network private); a public
    # stack has none, and this policy has nothing to say about it.
    if not any(r.resource_type == VIRTUAL_NETWORK for r in args.resources):
        return
    for resource in args.resources:
        if resource.resource_type == ACCOUNT:
            problem = _account_closed(resource.props)
            if problem is not None:
                report(
                    f"the stack is private (it has a virtual network) but the Azure OpenAI "
                    f"account is reachable from the internet: {problem}; set llmops:network "
                    "private (the stack closes it), or keep the account behind its private "
                    "endpoint",
                    resource.urn,
                )
        elif resource.resource_type == WORKSPACE:
            no_public_ip = _get(resource.props, "parameters", "enableNoPublicIp", "value")
            injected = _get(resource.props, "parameters", "customVirtualNetworkId", "value")
            if no_public_ip is not True or injected in (_MISSING, None, ""):
                report(
                    "the stack is private (it has a virtual network) but the workspace's "
                    "clusters would get public IPs or run outside it: inject it "
                    "(parameters.customVirtualNetworkId) with enableNoPublicIp true",
                    resource.urn,
                )
    if not any(r.resource_type == PRIVATE_ENDPOINT for r in args.resources):
        report(
            "the stack is private (it has a virtual network) but has no private endpoint, so "
            "nothing in the network reaches the Azure OpenAI account",
            None,
        )


# --- advisories ------------------------------------------------------------------------------


@_for_types(ACCOUNT)
def _local_auth(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "properties", "disableLocalAuth") is not True:
        report(
            "key (local) authentication is enabled on the account: anyone holding a key can "
            "call it; for keyless access set `pulumi config set llmops:authMode entra`",
            None,
        )


@_for_types(DEPLOYMENT)
def _pinned_version(args: ResourceValidationArgs, report: ReportViolation) -> None:
    version = _get(args.props, "properties", "model", "version")
    upgrade = _get(args.props, "properties", "versionUpgradeOption")
    if version in (_MISSING, None, "") or upgrade == "OnceNewDefaultVersionAvailable":
        report(
            "the deployment follows Azure's default model version, which changes under it; "
            "for production pin it (llmops:modelVersion, or llmops:judgeModelVersion)",
            None,
        )


def _schema(**properties: dict[str, Any]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=dict(properties))


POLICIES: Final = (
    ResourceValidationPolicy(
        name="allowed-regions",
        description=(
            "The Azure OpenAI account and the Databricks workspace are in an allowed region."
        ),
        validate=_allowed_region,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(
            allowedRegions={
                "type": "array",
                "items": {"type": "string"},
                "description": "Regions where the account and the workspace may be.",
                "default": list(LAB_REGIONS),
            }
        ),
    ),
    ResourceValidationPolicy(
        name="deployment-capacity-cap",
        description="No model deployment above the capacity cap (thousands of tokens per minute).",
        validate=_capacity_cap,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(
            maxCapacity={
                "type": "integer",
                "minimum": 1,
                "description": "The largest sku.capacity allowed (50 = 50K TPM).",
                "default": MAX_CAPACITY,
            }
        ),
    ),
    ResourceValidationPolicy(
        name="no-dynamic-quota",
        description="No Azure OpenAI account with dynamic quota (dynamic throttling).",
        validate=_no_dynamic_quota,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="cluster-size",
        description="A cluster is single node, or has at most the allowed number of workers.",
        validate=_cluster_size,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(
            maxWorkers={
                "type": "integer",
                "minimum": 0,
                "description": "Most workers a multi-node cluster may have (fixed or autoscaled).",
                "default": MAX_WORKERS,
            }
        ),
    ),
    ResourceValidationPolicy(
        name="cluster-auto-termination",
        description="A cluster stops by itself when idle, within the bound.",
        validate=_auto_termination,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(
            maxMinutes={
                "type": "integer",
                "minimum": 10,
                "description": "The longest auto-termination allowed, in minutes.",
                "default": MAX_MINUTES,
            }
        ),
    ),
    ResourceValidationPolicy(
        name="cluster-no-photon",
        description="A cluster runs without Photon unless Photon is allowed.",
        validate=_photon,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(
            allowPhoton={
                "type": "boolean",
                "description": "Allow Photon clusters.",
                "default": False,
            }
        ),
    ),
    ResourceValidationPolicy(
        name="cluster-no-clear-text-credentials",
        description=(
            "A cluster's environment and Spark configuration hold credentials only as "
            "secret references."
        ),
        validate=_no_clear_text_credentials,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(
            suffixes={
                "type": "array",
                "items": {"type": "string"},
                "description": "Name endings that mark a credential (compared in upper case).",
                "default": list(CREDENTIAL_SUFFIXES),
            }
        ),
    ),
    StackValidationPolicy(
        name="gateway-limits-within-deployment",
        description=(
            "No serving endpoint's AI Gateway rate limit (endpoint or per user, tokens or "
            "calls) is above what its Azure OpenAI deployment allows."
        ),
        validate=_gateway_limits,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="gateway-usage-tracking",
        description="A serving endpoint tracks usage (tokens per user, in system tables).",
        validate=_usage_tracking,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
    ResourceValidationPolicy(
        name="serverless-pinned-dependencies",
        description=(
            "A serverless job's environment pins its environment version and every "
            "dependency (name==version, or a wheel file)."
        ),
        validate=_serverless_pinned,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="private-network-closed",
        description=(
            "In a private stack (one with a virtual network), the Azure OpenAI account is "
            "closed to the internet (network rules default Deny, public access disabled or "
            "only for listed addresses) and reached through a private endpoint, and the "
            "workspace's clusters run in the network without public IPs."
        ),
        validate=_private_network,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="openai-keyless",
        description="The Azure OpenAI account accepts Entra ID tokens only (no keys).",
        validate=_local_auth,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
    ResourceValidationPolicy(
        name="deployment-pinned-version",
        description="A model deployment pins its model version.",
        validate=_pinned_version,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
)
