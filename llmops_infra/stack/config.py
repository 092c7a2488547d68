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
from llmops_infra.stack.regions import AZURE_REGIONS
from workload.contract import PROJECT_DIR

__all__ = [
    "NAMESPACE",
    "RULES",
    "AuthMode",
    "ConfigType",
    "Declaration",
    "LlmopsConfig",
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
ConfigType = Literal["string", "integer", "boolean", "array", "object"]


@dataclass(frozen=True)
class LlmopsConfig:
    """The validated settings of one stack; every later step trusts them.

    Defaults come from ``Pulumi.yaml`` (:func:`default_config`), never from here.
    """

    allowed_regions: tuple[str, ...]
    """Regions the one-time random draw picks from."""
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
    deployer_principal_type: str | None
    """Keyless: the deploying identity's principal type, or None to decide it."""
    judge_model: str | None
    """The model of a second deployment for the eval judges (named after it), or None."""
    judge_model_version: str | None
    """The judge model's pinned version, or None for Azure's default."""
    judge_capacity: int
    """The judge deployment's capacity in thousands of tokens per minute."""


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


def undeclared_keys(keys: Iterable[str]) -> list[str]:
    """One line for each ``llmops:`` key among ``keys`` that ``Pulumi.yaml`` does not
    declare, naming the closest declared key.

    The Pulumi CLI passes such a key to the program without a word, and the program never
    reads it: ``llmops:capacty=20`` leaves the capacity at 10 in silence. The program
    warns (``pulumi up``) and ``plan`` says so too. The declared keys are read from
    ``Pulumi.yaml``, so a key added there is known here at once.
    """
    declared = declarations()
    lines = []
    for full in sorted(set(keys)):
        namespace, _, name = full.partition(":")
        if namespace != NAMESPACE or name in declared:
            continue
        close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.6)
        hint = (
            f"did you mean {NAMESPACE}:{close[0]}?"
            if close
            else "docs/configuration.md lists every key"
        )
        lines.append(f"{full} is not a key Pulumi.yaml declares, so it changes nothing ({hint})")
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
    "deployerPrincipalType": Rule(
        "deployer_principal_type", _one_of("User", "ServicePrincipal", "Group"), empty_is_none=True
    ),
    "judgeModel": Rule("judge_model", _judge_model, empty_is_none=True),
    "judgeModelVersion": Rule("judge_model_version", _no_spaces, empty_is_none=True),
    "judgeCapacity": Rule("judge_capacity", _at_least_one),
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
        if rule.empty_is_none and value == "":
            values[rule.attribute] = None
            continue
        problem = rule.check(value, values) if rule.check else None
        if problem is not None:
            problems.append(f"{NAMESPACE}:{key} = {raw!r} is not valid: {problem}")
            value = declaration.default
        values[rule.attribute] = value
    if problems:
        raise ConfigError("; ".join(problems))
    values["allowed_regions"] = tuple(values["allowed_regions"])
    values["tags"] = dict(values["tags"])
    return LlmopsConfig(**values)


def default_config() -> LlmopsConfig:
    """The settings of a stack that sets nothing: ``Pulumi.yaml``'s defaults."""
    return parse_config(lambda _key: None)
