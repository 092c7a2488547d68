"""A stack's configuration read from its files, as the Pulumi CLI assembles and checks it.

Used where no Pulumi CLI runs (``plan``, ``preflight``, tests): the
``config:`` defaults of ``Pulumi.yaml``, then ``Pulumi.<stack>.yaml``, then
``--config key=value`` overrides. Files are read as the CLI reads them, as
YAML 1.2 (``yes`` is a string there), and every ``llmops:`` value is checked
against the type ``Pulumi.yaml`` declares before the program runs, refusing
exactly what ``pulumi up`` refuses. Values come out as the CLI hands them to a
program: strings, with lists and maps as JSON.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from llmops_infra.errors import ConfigError
from llmops_infra.stack.config import NAMESPACE, declarations, type_problem
from workload.contract import SECRET_MASK

__all__ = ["parse_overrides", "read_stack_config", "stack_file"]


def _as_config_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        return SECRET_MASK  # an encrypted value: only the CLI can decrypt it
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _qualified(key: str) -> str:
    return key if ":" in key else f"{NAMESPACE}:{key}"


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except YAMLError as err:
        raise ConfigError(f"{path.name} is not valid YAML: {err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path.name} must hold a YAML mapping")
    return loaded


def stack_file(project_dir: Path, stack: str) -> Path:
    """``Pulumi.<stack>.yaml``; a missing one is an error that lists the stacks there are."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml")
        )
        raise ConfigError(
            f"no stack file {path.name} in {project_dir}; known stacks: "
            f"{', '.join(known) or 'none'} (create one with `pulumi stack init {stack}`)"
        )
    return path


def _scalar_text(value: Any) -> Any:
    """A stack file's scalar as the text the CLI keeps and checks (``10`` -> "10").

    The CLI decodes a YAML scalar to a typed value, keeps it as its JSON text and
    checks that text against the declared type, so a whole float is a whole
    number (``10.0`` -> "10"); only arrays and maps keep their structure (and
    their items' types: ``[1, 2]`` is not an array of strings).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # as Go's JSON encoding writes it: 10.0 and 1e3 are "10", "1000"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()  # `2024-11-20` unquoted is a YAML timestamp, kept as text
    return value


def _check(stack: str, key: str, value: Any) -> None:
    """Refuse a value of the wrong type, in the CLI's words, before the program runs."""
    name = key.split(":", 1)[1] if key.startswith(f"{NAMESPACE}:") else None
    declared = declarations().get(name) if name else None
    if declared is None or (isinstance(value, Mapping) and set(value) == {"secure"}):
        return
    problem = type_problem(declared, value)
    if problem is not None:
        raise ConfigError(
            f"Stack '{stack}' with configuration key '{key}' = {value!r} {problem}; "
            "fix it with `pulumi config set` (arrays and maps: --path or --json)"
        )


def read_stack_config(
    project_dir: Path, stack: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The stack's configuration, fully qualified (``llmops:capacity``), as strings."""
    config: dict[str, str] = {}
    for key, declaration in declarations().items():
        config[_qualified(key)] = _as_config_string(declaration.default)
    for key, value in (_load_yaml(stack_file(project_dir, stack)).get("config") or {}).items():
        value = _scalar_text(value)
        _check(stack, _qualified(key), value)
        config[_qualified(key)] = _as_config_string(value)
    for key, value in (overrides or {}).items():
        _check(stack, _qualified(key), value)
        config[_qualified(key)] = _as_config_string(value)
    return config


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``key=value`` strings into a mapping, as ``pulumi config set`` takes them.

    A value is a string, as ``pulumi config set KEY VALUE`` stores it; a value
    that is a JSON list or map is taken as structured, as ``--json`` stores it.
    """
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--config {pair!r} must look like key=value, e.g. llmops:capacity=20"
            )
        parsed: Any = value
        if value.startswith(("[", "{")):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
        overrides[_qualified(key.strip())] = parsed
    return overrides
