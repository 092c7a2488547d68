"""The offline plan: the program's preview under the mock engine, shaped for people and machines.

The tree and the JSON carry the same content; both are ordered by the lab's
sections, not by the (asynchronous) order of registration, so two plans of
the same configuration are identical and can be diffed in review.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from llmops_infra.config import NAMESPACE, parse_config
from llmops_infra.errors import ConfigError

__all__ = ["KNOWN_AFTER_UP", "Plan", "PlanError", "make_plan", "to_json", "to_text"]

KNOWN_AFTER_UP: Final = "(known after up)"
SECRET_MASK: Final = "[secret]"

#: Display order: the lab's sections, top to bottom.
_ORDER: Final[tuple[str, ...]] = (
    "random:index/randomString:RandomString",
    "random:index/randomShuffle:RandomShuffle",
    "azure-native:resources:ResourceGroup",
    "pulumi-python:dynamic/llmops:DeletedAccountPurge",
    "llmops:openai:AzureOpenAI",
    "azure-native:cognitiveservices:Account",
    "azure-native:cognitiveservices:Deployment",
    "llmops:databricks:Databricks",
    "azure-native:databricks:Workspace",
    "pulumi:providers:databricks",
    "databricks:index/cluster:Cluster",
    "llmops:databricks:LabEnvironment",
    "databricks:index/secretScope:SecretScope",
    "databricks:index/secret:Secret",
    "databricks:index/mlflowExperiment:MlflowExperiment",
    "llmops:databricks:LabJobs",
    "databricks:index/workspaceFile:WorkspaceFile",
    "databricks:index/job:Job",
)


@dataclass(frozen=True)
class PlanError:
    """The program stopped (bad configuration), with the message ``pulumi up`` would print."""

    message: str


@dataclass(frozen=True)
class Plan:
    """The preview, as plain data."""

    stack: str
    region: dict[str, Any]
    resources: list[dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    to_create: int
    recorded: tuple[Any, ...] = field(default=(), repr=False, compare=False)
    """The registrations as the engine recorded them (``RecordedResource``), for the policies."""


def _get(inputs: Mapping[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _display(value: Any) -> Any:
    from llmops_infra.mock_engine import Secret, is_unknown

    if isinstance(value, Secret):
        return SECRET_MASK
    if is_unknown(value):
        return KNOWN_AFTER_UP
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _display(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_display(v) for v in value]
    return value


def _single_node(inputs: Mapping[str, Any]) -> bool:
    profile = _get(inputs, "sparkConf") or {}
    return inputs.get("numWorkers") == 0 and (
        profile.get("spark.databricks.cluster.profile") == "singleNode"
    )


#: The settings a reader of the lab looks for, per resource type: (label, how to read it).
_SETTINGS: Final[dict[str, list[tuple[str, Callable[[Mapping[str, Any]], Any]]]]] = {
    "random:index/randomString:RandomString": [("length", lambda i: i.get("length"))],
    "random:index/randomShuffle:RandomShuffle": [
        ("draws one of", lambda i: i.get("inputs")),
    ],
    "azure-native:resources:ResourceGroup": [
        ("name", lambda i: i.get("resourceGroupName")),
        ("region", lambda i: i.get("location")),
    ],
    "pulumi-python:dynamic/llmops:DeletedAccountPurge": [
        ("purges on destroy", lambda i: i.get("account_name")),
        ("region", lambda i: i.get("location")),
    ],
    "azure-native:cognitiveservices:Account": [
        ("name", lambda i: i.get("accountName")),
        ("region", lambda i: i.get("location")),
        ("kind", lambda i: i.get("kind")),
        ("sku", lambda i: _get(i, "sku.name")),
        ("subdomain", lambda i: _get(i, "properties.customSubDomainName")),
        ("public access", lambda i: _get(i, "properties.publicNetworkAccess")),
    ],
    "azure-native:cognitiveservices:Deployment": [
        ("name", lambda i: i.get("deploymentName")),
        ("model", lambda i: _get(i, "properties.model.name")),
        ("version", lambda i: _get(i, "properties.model.version") or "Azure's default"),
        ("type", lambda i: _get(i, "sku.name")),
        ("capacity", lambda i: _get(i, "sku.capacity")),
        ("tokens per minute", lambda i: f"{int(_get(i, 'sku.capacity') or 0)}K"),
        ("content filter", lambda i: _get(i, "properties.raiPolicyName")),
        ("version upgrade", lambda i: _get(i, "properties.versionUpgradeOption")),
    ],
    "azure-native:databricks:Workspace": [
        ("name", lambda i: i.get("workspaceName")),
        ("region", lambda i: i.get("location")),
        ("sku", lambda i: _get(i, "sku.name")),
        ("compute mode", lambda i: i.get("computeMode")),
        ("managed group", lambda i: i.get("managedResourceGroupId")),
    ],
    "pulumi:providers:databricks": [
        ("host", lambda i: i.get("host")),
        ("auth", lambda i: "Azure (az login or ARM_* variables)"),
    ],
    "databricks:index/cluster:Cluster": [
        ("name", lambda i: i.get("clusterName")),
        ("runtime", lambda i: i.get("sparkVersion")),
        ("node type", lambda i: i.get("nodeTypeId")),
        ("photon", lambda i: "off" if i.get("runtimeEngine") == "STANDARD" else "on"),
        ("single node", lambda i: "yes" if _single_node(i) else "no"),
        ("access mode", lambda i: i.get("dataSecurityMode")),
        ("auto-termination", lambda i: f"{_display(i.get('autoterminationMinutes'))} min"),
        ("up waits for RUNNING", lambda i: "no (clusterNoWait)" if i.get("noWait") else "yes"),
    ],
    "databricks:index/secretScope:SecretScope": [
        ("name", lambda i: i.get("name")),
        ("backend", lambda i: i.get("backendType")),
    ],
    "databricks:index/secret:Secret": [
        ("scope", lambda i: i.get("scope")),
        ("key", lambda i: i.get("key")),
        ("value", lambda i: i.get("stringValue")),
    ],
    "databricks:index/mlflowExperiment:MlflowExperiment": [("path", lambda i: i.get("name"))],
    "databricks:index/workspaceFile:WorkspaceFile": [("source", lambda i: i.get("source"))],
    "databricks:index/job:Job": [
        ("name", lambda i: i.get("name")),
        ("schedule", lambda i: _get(i, "schedule.pauseStatus") or "none (run on demand)"),
    ],
}


def make_plan(config: Mapping[str, str], *, stack: str) -> Plan | PlanError:
    """Validate, run the program in preview under the mocks, and shape what it registered."""
    prefix = f"{NAMESPACE}:"
    try:
        # The same check the program makes first, before paying for the provider SDKs.
        settings = parse_config(
            lambda key: config.get(key if key.startswith(prefix) else prefix + key)
        )
    except ConfigError as err:
        return PlanError(f"invalid stack configuration: {err}")

    from llmops_infra.mock_engine import ProgramFailed, is_unknown, run_program

    try:
        run = run_program(config, stack=stack, preview=True)
    except ProgramFailed as err:
        return PlanError(str(err))

    rank = {type_: i for i, type_ in enumerate(_ORDER)}
    ordered = sorted(run.resources, key=lambda r: (rank.get(r.type, len(_ORDER)), r.type, r.name))
    names = {r.urn: r.name for r in run.resources}
    resources = []
    for resource in ordered:
        settings_shown = {
            label: _display(read(resource.inputs))
            for label, read in _SETTINGS.get(resource.type, [])
        }
        resources.append(
            {
                "type": resource.type,
                "name": resource.name,
                "parent": names.get(resource.parent),
                "provider": names.get(resource.provider.rsplit("::", 1)[0]),
                "custom": resource.custom,
                "settings": settings_shown,
                "inputs": _display(resource.inputs),
            }
        )

    outputs = {
        # In the program's export order, which is fixed (pulumi.export runs synchronously).
        name: {
            "value": SECRET_MASK if export.secret else _display(export.value),
            "secret": export.secret,
            "known": not is_unknown(export.value),
        }
        for name, export in run.exports.items()
    }

    region: dict[str, Any] = (
        {"pinned": True, "value": settings.region, "candidates": [settings.region]}
        if settings.region is not None
        else {"pinned": False, "value": None, "candidates": list(settings.allowed_regions)}
    )
    if not settings.region:
        # Say what the unknown region will be drawn from, where a reader looks for it.
        for shown in resources:
            if shown["settings"].get("region") == KNOWN_AFTER_UP:
                shown["settings"]["region"] = "(drawn at random, see region)"
    return Plan(
        stack=stack,
        region=region,
        resources=resources,
        outputs=outputs,
        to_create=len(run.resources) + 1,  # Pulumi counts the stack itself too
        recorded=tuple(run.resources),
    )


def to_json(plan: Plan) -> str:
    """The plan as one JSON object, keys sorted, stable across runs."""
    return json.dumps(
        {
            "stack": plan.stack,
            "region": plan.region,
            "resources": plan.resources,
            "outputs": plan.outputs,
            "summary": {"to_create": plan.to_create, "region": _region_phrase(plan)},
        },
        indent=2,
    )


def _region_phrase(plan: Plan) -> str:
    if plan.region["pinned"]:
        return str(plan.region["value"])
    return "a region drawn at random once from " + ", ".join(plan.region["candidates"])


def _format(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_format(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def to_text(plan: Plan) -> str:
    """The plan as a tree of resources, nested as Pulumi nests them, for a person."""
    lines = [
        f"Plan for stack '{plan.stack}' (offline preview: nothing is created; "
        f"{KNOWN_AFTER_UP} marks values only Azure or Databricks know)",
        "",
        f"pulumi:pulumi:Stack  llmops-{plan.stack}",
    ]
    children: dict[str | None, list[dict[str, Any]]] = {}
    for resource in plan.resources:
        children.setdefault(resource["parent"], []).append(resource)

    def walk(parent: str | None, indent: str) -> None:
        kids = children.get(parent, [])
        for index, resource in enumerate(kids):
            last = index == len(kids) - 1
            branch, carry = ("└─ ", "   ") if last else ("├─ ", "│  ")
            via = f"  (provider: {resource['provider']})" if resource["provider"] else ""
            lines.append(f"{indent}{branch}{resource['type']}  {resource['name']}{via}")
            setting_indent = indent + carry + ("│  " if children.get(resource["name"]) else "   ")
            for label, value in resource["settings"].items():
                lines.append(f"{setting_indent}{label}: {_format(value)}")
            walk(resource["name"], indent + carry)

    walk(None, "")
    lines += ["", "Outputs:"]
    width = max((len(name) for name in plan.outputs), default=0)
    for name, output in plan.outputs.items():
        lines.append(f"  {name.ljust(width)}  {_format(output['value'])}")
    lines += ["", f"{plan.to_create} resources to create in {_region_phrase(plan)}"]
    if not plan.region["pinned"]:
        lines.append(
            "The draw is kept in the stack's state; pin it with "
            "`pulumi config set llmops:region <region>`."
        )
    return "\n".join(lines)
