"""The offline plan: the program's preview under the mock engine, shaped for people and machines.

The tree and the JSON carry the same content; both are ordered by the lab's
sections, not by the (asynchronous) order of registration, so two plans of
the same configuration are identical and can be diffed in review.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from llmops_infra.errors import ConfigError
from llmops_infra.offline.resource_types import NOT_SHOWN, RESOURCE_TYPES
from llmops_infra.stack.config import NAMESPACE, LlmopsConfig, parse_config
from llmops_infra.stack.region_features import (
    FEATURE_LABELS,
    draw_candidates,
    needed_features,
    unconfirmed_features,
    unusable_regions,
)
from workload.contract import SECRET_MASK

__all__ = [
    "KNOWN_AFTER_UP",
    "Plan",
    "PlanError",
    "check_config",
    "config_settings",
    "make_plan",
    "to_json",
    "to_text",
]

KNOWN_AFTER_UP: Final = "(known after up)"


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
    warnings: tuple[str, ...] = ()
    """What the program warned, as ``pulumi up`` would show it (an undeclared key, say)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """The stack's tags (``llmops:tags``), which the program puts on the Azure resources and
    the cluster."""
    estate: Mapping[str, str] = field(default_factory=dict)
    """What the stack only uses and never creates or deletes: ``resource_group`` (the
    group's name) and ``workspace`` (the workspace's resource id), when configured."""


def _display(value: Any) -> Any:
    from llmops_infra.offline.engine import Secret, is_unknown

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


#: Display order: the lab's sections, top to bottom, as the catalog lists the types.
_RANK: Final = {t.token: i for i, t in enumerate(RESOURCE_TYPES)}
_SHOWS: Final = {t.token: t.shows for t in RESOURCE_TYPES}


def check_config(config: Mapping[str, str]) -> PlanError | None:
    """The check the program makes first, before anything pays for the provider SDKs."""
    try:
        config_settings(config)
    except ConfigError as err:
        return PlanError(f"invalid stack configuration: {err}")
    return None


def config_settings(config: Mapping[str, str]) -> LlmopsConfig:
    """The stack's typed settings from its assembled configuration (raises ConfigError)."""
    prefix = f"{NAMESPACE}:"
    return parse_config(lambda key: config.get(key if key.startswith(prefix) else prefix + key))


def make_plan(config: Mapping[str, str], *, stack: str) -> Plan | PlanError:
    """Validate, run the program in preview under the mocks, and shape what it registered."""
    problem = check_config(config)
    if problem is not None:
        return problem
    settings = config_settings(config)

    from llmops_infra.offline.engine import ProgramFailed, is_unknown, run_program

    try:
        run = run_program(config, stack=stack, preview=True)
    except ProgramFailed as err:
        return PlanError(str(err))

    last = len(_RANK)
    ordered = sorted(run.resources, key=lambda r: (_RANK.get(r.type, last), r.type, r.name))
    names = {r.urn: r.name for r in run.resources}
    resources = []
    for resource in ordered:
        shown_inputs = _display(resource.inputs)
        settings_shown = {
            label: _display(value)
            for label, read in _SHOWS.get(resource.type, ())
            if (value := read(shown_inputs)) is not NOT_SHOWN
        }
        resources.append(
            {
                "type": resource.type,
                "name": resource.name,
                "urn": resource.urn,
                "parent": names.get(resource.parent),
                "parent_urn": resource.parent if resource.parent in names else None,
                "provider": names.get(resource.provider.rsplit("::", 1)[0]),
                "custom": resource.custom,
                "settings": settings_shown,
                "inputs": shown_inputs,
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
        if settings.region is not None and settings.workspace_resource_id is None
        # The regions the program's first draw picks from (region_features.draw_candidates);
        # with an existing workspace, the regions its own may be (`up` looks it up).
        else {"pinned": False, "value": None, "candidates": list(draw_candidates(settings))}
    )
    if settings.workspace_resource_id is not None:
        region["workspace"] = settings.workspace_resource_id
    estate = {
        name: value
        for name, value in (
            ("resource_group", settings.resource_group_name),
            ("workspace", settings.workspace_resource_id),
        )
        if value is not None
    }
    # The options' Databricks features, per allowed region (a pinned one stops the program).
    region["unusable"] = {
        name: [FEATURE_LABELS[feature] for feature in missing]
        for name, missing in unusable_regions(settings).items()
    }
    # Cells of Microsoft Learn's table nobody recorded: `up` warns, the plan says so too.
    needed = needed_features(settings)
    region["unconfirmed"] = {
        name: [FEATURE_LABELS[feature] for feature in unconfirmed]
        for name in region["candidates"]
        if (unconfirmed := unconfirmed_features(name, needed))
    }
    if settings.workspace_resource_id is not None:
        # The offline engine cannot look the workspace up: say where the region comes from.
        for shown in resources:
            if shown["settings"].get("region") == KNOWN_AFTER_UP:
                shown["settings"]["region"] = "(the existing workspace's, known after up)"
    elif not settings.region:
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
        warnings=tuple(run.warnings),
        tags=dict(sorted(settings.tags.items())),
        estate=estate,
    )


def to_json(plan: Plan) -> str:
    """The plan as one JSON object, keys sorted, stable across runs."""
    return json.dumps(
        {
            "stack": plan.stack,
            "tags": dict(plan.tags),
            "estate": dict(plan.estate),
            "region": plan.region,
            "resources": plan.resources,
            "outputs": plan.outputs,
            "summary": {"to_create": plan.to_create, "region": _region_phrase(plan)},
        },
        indent=2,
    )


def _region_phrase(plan: Plan) -> str:
    if plan.region.get("workspace"):
        return (
            "the existing workspace's region (looked up at up; it must be one of "
            + ", ".join(plan.region["candidates"])
            + ")"
        )
    if plan.region["pinned"]:
        return str(plan.region["value"])
    return "a region drawn at random once from " + ", ".join(plan.region["candidates"])


def _format(value: Any) -> str:
    if value == "":
        return '""'
    if isinstance(value, list):
        return ", ".join(_format(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _tags_line(tags: Mapping[str, str]) -> str:
    if not tags:
        return f"Tags ({NAMESPACE}:tags): none"
    shown = ", ".join(f"{key}={value}" for key, value in tags.items())
    return f"Tags ({NAMESPACE}:tags) on the Azure resources and the cluster: {shown}"


def _estate_lines(estate: Mapping[str, str]) -> list[str]:
    """What the stack uses and never creates or deletes (docs/estate.md)."""
    used = []
    if "resource_group" in estate:
        used.append(f"resource group {estate['resource_group']} ({NAMESPACE}:resourceGroupName)")
    if "workspace" in estate:
        used.append(f"Databricks workspace {estate['workspace']} ({NAMESPACE}:workspaceResourceId)")
    if not used:
        return []
    return [
        "Existing estate: the stack uses " + " and ".join(used) + ", looked up at up (offline, "
        f"what they say shows as {KNOWN_AFTER_UP}); it will not create or delete them, nor "
        "anything else they hold."
    ]


def to_text(plan: Plan) -> str:
    """The plan as a tree of resources, nested as Pulumi nests them, for a person."""
    lines = [
        f"Plan for stack '{plan.stack}' (offline preview: nothing is created; "
        f"{KNOWN_AFTER_UP} marks values only Azure or Databricks know)",
        _tags_line(plan.tags),
        *_estate_lines(plan.estate),
        "",
        f"pulumi:pulumi:Stack  llmops-{plan.stack}",
    ]
    children: dict[str | None, list[dict[str, Any]]] = {}
    for resource in plan.resources:
        children.setdefault(resource["parent_urn"], []).append(resource)

    def walk(parent: str | None, indent: str) -> None:
        kids = children.get(parent, [])
        for index, resource in enumerate(kids):
            last = index == len(kids) - 1
            branch, carry = ("└─ ", "   ") if last else ("├─ ", "│  ")
            via = f"  (provider: {resource['provider']})" if resource["provider"] else ""
            lines.append(f"{indent}{branch}{resource['type']}  {resource['name']}{via}")
            setting_indent = indent + carry + ("│  " if children.get(resource["urn"]) else "   ")
            for label, value in resource["settings"].items():
                lines.append(f"{setting_indent}{label}: {_format(value)}")
            walk(resource["urn"], indent + carry)

    walk(None, "")
    lines += ["", "Outputs:"]
    width = max((len(name) for name in plan.outputs), default=0)
    for name, output in plan.outputs.items():
        lines.append(f"  {name.ljust(width)}  {_format(output['value'])}")
    lines += ["", f"{plan.to_create} resources to create in {_region_phrase(plan)}"]
    if not plan.region["pinned"] and not plan.region.get("workspace"):
        lines.append(
            "The draw is kept in the stack's state; before the first `up`, let "
            "`python -m llmops_infra preflight --pin` draw among the regions that fit."
        )
        unusable = plan.region.get("unusable") or {}
        if unusable:
            lacks = "; ".join(f"{name} (no {', '.join(f)})" for name, f in unusable.items())
            lines.append(
                f"The options cannot use {lacks}: a first draw leaves them out, and a stack "
                "that drew one before keeps it and stops at `up`; pin a region that offers "
                "them with `python -m llmops_infra preflight --pin`."
            )
    unconfirmed = plan.region.get("unconfirmed") or {}
    if unconfirmed:
        which = "; ".join(f"{name} ({', '.join(f)})" for name, f in unconfirmed.items())
        lines.append(
            f"Not confirmed from Microsoft Learn's table of Databricks features by region: "
            f"{which}; `up` warns, check "
            "https://learn.microsoft.com/azure/databricks/resources/feature-region-support."
        )
    return "\n".join(lines)
