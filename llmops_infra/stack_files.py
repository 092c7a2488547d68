"""A stack's configuration read from its files, as the Pulumi CLI assembles it.

Used where no Pulumi CLI runs (``plan``, ``preflight``, tests): the
``config:`` defaults of ``Pulumi.yaml``, then ``Pulumi.<stack>.yaml``, then
``--config key=value`` overrides. Values come out as the CLI hands them to a
program: strings, with lists and maps as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from llmops_infra.config import NAMESPACE
from llmops_infra.errors import ConfigError

__all__ = ["SECRET_PLACEHOLDER", "parse_overrides", "read_stack_config"]

#: Stands in for an encrypted (``secure:``) value, which only the CLI can decrypt.
SECRET_PLACEHOLDER: Final = "[secret]"


def _as_config_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        return SECRET_PLACEHOLDER
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _qualified(key: str) -> str:
    return key if ":" in key else f"{NAMESPACE}:{key}"


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path.name} is not valid YAML: {err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path.name} must hold a YAML mapping")
    return loaded


def read_stack_config(
    project_dir: Path, stack: str, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The stack's configuration, fully qualified (``llmops:capacity``), as strings."""
    project = _load_yaml(project_dir / "Pulumi.yaml")
    config: dict[str, str] = {}
    for key, declaration in (project.get("config") or {}).items():
        if isinstance(declaration, Mapping) and "default" in declaration:
            config[_qualified(key)] = _as_config_string(declaration["default"])
        elif isinstance(declaration, Mapping) and "value" in declaration:
            config[_qualified(key)] = _as_config_string(declaration["value"])
        elif not isinstance(declaration, Mapping):
            config[_qualified(key)] = _as_config_string(declaration)

    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml")
        )
        raise ConfigError(
            f"no stack file {stack_file.name} in {project_dir}; known stacks: "
            f"{', '.join(known) or 'none'} (create one with `pulumi stack init {stack}`)"
        )
    for key, value in (_load_yaml(stack_file).get("config") or {}).items():
        config[_qualified(key)] = _as_config_string(value)

    for key, value in (overrides or {}).items():
        config[_qualified(key)] = value
    return config


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``key=value`` strings (as ``pulumi config set`` takes them) into a mapping."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--config {pair!r} must look like key=value, e.g. llmops:capacity=20"
            )
        overrides[_qualified(key.strip())] = value
    return overrides
