"""A policy pack's configuration, read and reconciled as ``pulumi up --policy-pack-config`` does.

The file maps each policy's name to an enforcement level, or to an object with
``enforcementLevel`` and the policy's settings; ``all`` sets every policy's level.
The CLI starts from each policy's schema defaults, applies ``all``, then each
policy's entry, and checks the result against the schemas the pack declares.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from llmops_infra.errors import ConfigError

__all__ = ["LEVELS", "Level", "PolicyPackError", "load_pack_config", "reconcile_config"]

Level = Literal["advisory", "mandatory", "remediate", "disabled"]
LEVELS: Final[tuple[Level, ...]] = ("advisory", "mandatory", "disabled", "remediate")
"""Indexed by the protocol's ``EnforcementLevel`` numbers (ADVISORY=0 ... REMEDIATE=3)."""


class PolicyPackError(ConfigError):
    """The policy pack could not start, or its configuration is not valid for it."""


def load_pack_config(path: Path) -> dict[str, Any]:
    """A ``--policy-pack-config`` file: JSON, each policy's name to a level or an object."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyPackError(
            f"cannot read the policy pack configuration {path}: {err.strerror}"
        ) from None
    if not text.strip():
        return {}  # the CLI takes an empty file as no configuration
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise PolicyPackError(
            f"the policy pack configuration {path} is not JSON: {err.msg} at line {err.lineno}"
        ) from None
    if not isinstance(config, dict):
        raise PolicyPackError(
            f"the policy pack configuration {path} must be a JSON object of policy names"
        )
    _entries(config)  # levels and shapes now, as the CLI does, before any program runs
    return config


def _entries(given: Mapping[str, Any]) -> dict[str, tuple[Level | None, dict[str, Any]]]:
    """Each entry of a pack configuration as ``(level or None, properties)``."""
    entries: dict[str, tuple[Level | None, dict[str, Any]]] = {}
    for name, value in given.items():
        if isinstance(value, str):
            entries[name] = (_level(name, value), {})
        elif isinstance(value, dict):
            props = {k: v for k, v in value.items() if k != "enforcementLevel"}
            level = _level(name, value["enforcementLevel"]) if "enforcementLevel" in value else None
            entries[name] = (level, props)
        else:
            raise PolicyPackError(
                f"policy {name!r}: {json.dumps(value)} is not valid; give a level or an object"
            )
    return entries


def _level(name: str, value: Any) -> Level:
    if value not in LEVELS:
        raise PolicyPackError(
            f"policy {name!r}: {value!r} is not an enforcement level (use {', '.join(LEVELS)})"
        )
    level: Level = value
    return level


_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _check_type(where: str, value: Any, schema: Mapping[str, Any]) -> None:
    """The subset of JSON Schema the packs' config schemas use: type, items, minimum, enum."""
    expected = schema.get("type")
    if isinstance(expected, str) and expected in _JSON_TYPES:
        ok = isinstance(value, _JSON_TYPES[expected]) and not (
            isinstance(value, bool) and expected in ("integer", "number")
        )
        if expected == "integer" and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            raise PolicyPackError(f"{where}: expected {expected}, given {json.dumps(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise PolicyPackError(f"{where}: must be one of {json.dumps(schema['enum'])}")
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        raise PolicyPackError(f"{where}: must be at least {schema['minimum']}, given {value}")
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            _check_type(f"{where}[{index}]", item, schema["items"])


def reconcile_config(
    policies: Sequence[Mapping[str, Any]], given: Mapping[str, Any]
) -> dict[str, tuple[Level, dict[str, Any]]]:
    """Each policy's level and properties, as ``pulumi up --policy-pack-config`` computes them.

    ``policies`` are the pack's policy infos (``name``, ``level``, ``schema``):
    schema defaults first, then ``all``'s level, then each policy's own entry (a
    level, or an object with ``enforcementLevel`` and properties), then the
    result checked against each schema. A name that is no policy of the pack is an
    error naming the pack's policies: stricter than the CLI, which ignores it, because
    a misspelt policy silently keeps its default level and settings.
    """
    result: dict[str, tuple[Level, dict[str, Any]]] = {}
    for info in policies:
        schema = info.get("schema") or {}
        defaults = {
            key: prop["default"]
            for key, prop in (schema.get("properties") or {}).items()
            if "default" in prop
        }
        result[info["name"]] = (info["level"], defaults)
    entries = _entries(given)
    unknown = [name for name in entries if name != "all" and name not in result]
    if unknown:
        close = [difflib.get_close_matches(name, list(result), n=1) for name in unknown]
        hints = "".join(f"; did you mean {c[0]!r}?" for c in close if c)
        raise PolicyPackError(
            f"the policy pack configuration names no policy of the pack: "
            f"{', '.join(map(repr, unknown))}{hints} (its policies: {', '.join(result)}; "
            "'all' sets every one)"
        )
    all_level = entries.get("all", (None, {}))[0]
    if all_level is not None:
        result = {name: (all_level, props) for name, (_, props) in result.items()}
    for name, (level, props) in entries.items():
        if name == "all":
            continue
        current_level, current_props = result[name]
        result[name] = (level or current_level, {**current_props, **props})
    for info in policies:
        schema = info.get("schema") or {}
        props = result[info["name"]][1]
        for required in schema.get("required") or []:
            if required not in props:
                raise PolicyPackError(f"policy {info['name']!r}: {required} is required")
        for key, value in props.items():
            prop_schema = (schema.get("properties") or {}).get(key)
            if prop_schema is not None:
                _check_type(f"policy {info['name']!r}: {key}", value, prop_schema)
    return result
