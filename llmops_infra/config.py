"""The stack's ``llmops:`` configuration, parsed and validated once, at the edge.

Pulumi hands every configuration value over as a string (arrays and maps as
JSON). :func:`parse_config` turns those strings into a frozen
:class:`LlmopsConfig` or raises one :class:`ConfigError` naming every bad key,
its value and what is allowed, before the program registers any resource.
The defaults here are the same as the ``config:`` block of ``Pulumi.yaml``,
because the Pulumi mocks (and so the tests and ``plan``) never read that file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from llmops_infra.errors import ConfigError
from llmops_infra.regions import AZURE_REGIONS

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_ALLOWED_REGIONS",
    "NAMESPACE",
    "AuthMode",
    "LlmopsConfig",
    "WorkspaceSku",
    "parse_config",
]

NAMESPACE: Final = "llmops"

#: The lab's regions: each has default gpt-4o Standard quota (lab, "リージョン").
DEFAULT_ALLOWED_REGIONS: Final[tuple[str, ...]] = (
    "eastus2",
    "northcentralus",
    "swedencentral",
    "switzerlandwest",
)

WorkspaceSku = Literal["premium", "trial"]
AuthMode = Literal["key", "entra"]
_AUTH_MODES: Final[tuple[str, ...]] = ("key", "entra")
_WORKSPACE_SKUS: Final[tuple[str, ...]] = ("premium", "trial")
_AUTOTERMINATION_RANGE: Final = (10, 10000)
#: Databricks' rule for secret scope (and key) names.
_SECRET_SCOPE_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: An experiment is a workspace object: an absolute path under /Shared or a user's home.
_EXPERIMENT_PATH: Final = re.compile(r"/(Shared|Users/[^/]+)(/[^/]+)+")

#: Every key this program reads, without the namespace.
CONFIG_KEYS: Final[tuple[str, ...]] = (
    "allowedRegions",
    "region",
    "deploymentName",
    "modelName",
    "modelVersion",
    "capacity",
    "openaiApiVersion",
    "workspaceSku",
    "sparkVersion",
    "nodeType",
    "autoterminationMinutes",
    "tags",
    "secretScope",
    "experimentPath",
    "purgeOnDestroy",
    "clusterNoWait",
    "authMode",
    "judgeModel",
    "judgeModelVersion",
    "judgeCapacity",
)


@dataclass(frozen=True)
class LlmopsConfig:
    """The validated settings of one stack; every later step trusts them."""

    allowed_regions: tuple[str, ...] = DEFAULT_ALLOWED_REGIONS
    """Regions the one-time random draw picks from."""
    region: str | None = None
    """A pinned region (one of ``allowed_regions``), or None to draw at random."""
    deployment_name: str = "gpt-4o"
    """The model deployment's name: the ``model=`` the chat call passes."""
    model_name: str = "gpt-4o"
    """The OpenAI model to deploy."""
    model_version: str | None = None
    """A pinned model version, or None for Azure's default version."""
    capacity: int = 10
    """Deployment capacity in thousands of tokens per minute (10 = 10K TPM)."""
    openai_api_version: str = "2024-05-01-preview"
    """The Azure OpenAI data-plane API version handed to the workload."""
    workspace_sku: WorkspaceSku = "premium"
    """The Databricks workspace's pricing tier."""
    spark_version: str = "16.4.x-cpu-ml-scala2.12"
    """The cluster's Databricks Runtime (16.4 LTS ML)."""
    node_type: str = "Standard_D4ds_v5"
    """The cluster's VM size."""
    autotermination_minutes: int = 30
    """Idle minutes before the cluster stops (10..10000)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags added to every Azure resource."""
    secret_scope: str = "llmops"
    """The Databricks-backed secret scope holding the Azure OpenAI key."""
    experiment_path: str = "/Shared/llmops-lab"
    """The workspace path of the MLflow experiment the traces land in."""
    purge_on_destroy: bool = True
    """Purge the soft-deleted Azure OpenAI account after ``pulumi destroy`` deletes it."""
    cluster_no_wait: bool = False
    """Do not wait for the cluster to reach RUNNING: ``pulumi up`` ends minutes sooner."""
    auth_mode: AuthMode = "key"
    """``key`` (the lab: an account key in a secret scope) or ``entra`` (keyless)."""
    judge_model: str | None = None
    """A second deployment for the eval judges (named after the model), or None."""
    judge_model_version: str | None = None
    """The judge model's pinned version, or None for Azure's default."""
    judge_capacity: int = 10
    """The judge deployment's capacity in thousands of tokens per minute."""


def parse_config(get: Callable[[str], str | None]) -> LlmopsConfig:
    """Build the settings from raw values; ``get(key)`` returns the string or None.

    All problems are collected and raised together, so a user fixes them in
    one round instead of one per ``pulumi up``.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    defaults = LlmopsConfig()

    def raw(key: str) -> str | None:
        value = get(key)
        return None if value is None or value == "" else value

    def bad(key: str, value: object, allowed: str) -> None:
        problems.append(f"{NAMESPACE}:{key} = {value!r} is not valid: {allowed}")

    regions_raw = raw("allowedRegions")
    allowed_regions = defaults.allowed_regions
    if regions_raw is not None:
        parsed = _json(regions_raw)
        if (
            isinstance(parsed, list)
            and parsed
            and all(isinstance(r, str) and r.strip() for r in parsed)
        ):
            allowed_regions = tuple(r.strip() for r in parsed)
            unknown = [r for r in allowed_regions if r not in AZURE_REGIONS]
            if unknown:
                bad(
                    "allowedRegions",
                    regions_raw,
                    f"unknown Azure region(s) {', '.join(unknown)} (names as in "
                    "`az account list-locations`); the lab's regions with gpt-4o quota are "
                    + ", ".join(DEFAULT_ALLOWED_REGIONS),
                )
            elif len(set(allowed_regions)) != len(allowed_regions):
                bad("allowedRegions", regions_raw, "list each region once")
            else:
                values["allowed_regions"] = allowed_regions
        else:
            bad(
                "allowedRegions",
                regions_raw,
                'must be a non-empty JSON list of region names, e.g. ["eastus2", "swedencentral"]',
            )

    region = raw("region")
    if region is not None:
        if region not in AZURE_REGIONS:
            bad("region", region, "unknown Azure region (names as in `az account list-locations`)")
        elif region not in allowed_regions:
            bad("region", region, f"must be one of allowedRegions: {', '.join(allowed_regions)}")
        else:
            values["region"] = region

    for key, attr in (
        ("deploymentName", "deployment_name"),
        ("modelName", "model_name"),
        ("openaiApiVersion", "openai_api_version"),
        ("sparkVersion", "spark_version"),
        ("nodeType", "node_type"),
    ):
        text = raw(key)
        if text is not None:
            if text.strip() != text or any(c.isspace() for c in text):
                bad(key, text, "must not contain spaces")
            else:
                values[attr] = text
    version = raw("modelVersion")
    if version is not None:
        values["model_version"] = version

    capacity = _int(raw("capacity"))
    if capacity is not None:
        if isinstance(capacity, str) or capacity < 1:
            bad("capacity", raw("capacity"), "must be a whole number >= 1 (thousands of TPM)")
        else:
            values["capacity"] = capacity

    sku = raw("workspaceSku")
    if sku is not None:
        if sku not in _WORKSPACE_SKUS:
            bad("workspaceSku", sku, f"must be one of {', '.join(_WORKSPACE_SKUS)}")
        else:
            values["workspace_sku"] = cast(WorkspaceSku, sku)

    minutes = _int(raw("autoterminationMinutes"))
    low, high = _AUTOTERMINATION_RANGE
    if minutes is not None:
        if isinstance(minutes, str) or not low <= minutes <= high:
            bad(
                "autoterminationMinutes",
                raw("autoterminationMinutes"),
                f"must be a whole number of minutes from {low} to {high}",
            )
        else:
            values["autotermination_minutes"] = minutes

    tags_raw = raw("tags")
    if tags_raw is not None:
        tags = _json(tags_raw)
        if isinstance(tags, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            values["tags"] = dict(tags)
        else:
            bad("tags", tags_raw, 'must be a map of strings to strings, e.g. {"owner": "me"}')

    scope = raw("secretScope")
    if scope is not None:
        if _SECRET_SCOPE_NAME.fullmatch(scope):
            values["secret_scope"] = scope
        else:
            bad(
                "secretScope",
                scope,
                "must be 1 to 128 letters, digits, dashes, underscores or periods",
            )

    experiment = raw("experimentPath")
    if experiment is not None:
        if _EXPERIMENT_PATH.fullmatch(experiment) and experiment.strip() == experiment:
            values["experiment_path"] = experiment
        else:
            bad(
                "experimentPath",
                experiment,
                "must be an absolute workspace path under /Shared/ or /Users/<user>/, "
                "e.g. /Shared/llmops-lab, without a trailing slash",
            )

    for key, attribute in (
        ("purgeOnDestroy", "purge_on_destroy"),
        ("clusterNoWait", "cluster_no_wait"),
    ):
        flag = raw(key)
        if flag is not None:
            if flag.lower() in ("true", "false"):
                values[attribute] = flag.lower() == "true"
            else:
                bad(key, flag, "must be true or false")

    mode = raw("authMode")
    if mode is not None:
        if mode in _AUTH_MODES:
            values["auth_mode"] = cast(AuthMode, mode)
        else:
            bad("authMode", mode, f"must be one of {', '.join(_AUTH_MODES)}")

    judge = raw("judgeModel")
    if judge is not None:
        if any(c.isspace() for c in judge):
            bad("judgeModel", judge, "must not contain spaces")
        elif judge == values.get("deployment_name", defaults.deployment_name):
            bad(
                "judgeModel",
                judge,
                "the judge deployment is named after its model and must not share the chat "
                "deployment's name (deploymentName); leave judgeModel empty to judge with the "
                "chat deployment",
            )
        else:
            values["judge_model"] = judge
    judge_version = raw("judgeModelVersion")
    if judge_version is not None:
        values["judge_model_version"] = judge_version
    judge_capacity = _int(raw("judgeCapacity"))
    if judge_capacity is not None:
        if isinstance(judge_capacity, str) or judge_capacity < 1:
            bad(
                "judgeCapacity",
                raw("judgeCapacity"),
                "must be a whole number >= 1 (thousands of TPM)",
            )
        else:
            values["judge_capacity"] = judge_capacity

    if problems:
        raise ConfigError("; ".join(problems))
    return LlmopsConfig(**values)


def _json(text: str) -> object:
    try:
        return cast(object, json.loads(text))
    except ValueError:
        return text


def _int(text: str | None) -> int | str | None:
    """An int, or the text back when it is not a whole number (bool is not a number)."""
    if text is None:
        return None
    parsed = _json(text)
    if isinstance(parsed, bool) or not isinstance(parsed, int | float):
        return text
    if isinstance(parsed, float) and not parsed.is_integer():
        return text
    return int(parsed)
