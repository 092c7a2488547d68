"""The policy pack's verdict, woven into the offline plan's text and JSON.

Kept apart from ``plan.py``: it takes what ``to_text``/``to_json`` produced and
the violations, and puts each violation under the resource it concerns (found
by the type and name its URN ends with), plus a summary before the plan's
closing lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from llmops_infra.offline.policy_check import Violation

__all__ = ["has_mandatory", "resource_of", "with_violations_json", "with_violations_text"]

_TREE_CHARS: Final = "│├└─ "


def resource_of(urn: str) -> tuple[str, str]:
    """``(type, name)`` of a URN (``urn:pulumi:<stack>::<project>::<parent$...$type>::<name>``)."""
    parts = urn.split("::")
    if len(parts) < 4:
        return "", ""
    return parts[2].rsplit("$", 1)[-1], "::".join(parts[3:])


def has_mandatory(violations: Sequence[Violation]) -> bool:
    """Whether ``pulumi up`` with this pack would stop, and ``plan`` exit 3 (a gate)."""
    return any(v.level in ("mandatory", "remediate") for v in violations)


def _line(violation: Violation) -> str:
    return f"[{violation.level}] {violation.policy}: {violation.message}"


def _counted(count: int, level: str) -> str:
    """``1 mandatory violation``, ``2 advisory violations``: each count with its own noun."""
    return f"{count} {level} violation{'' if count == 1 else 's'}"


def _summary(pack: str, violations: Sequence[Violation]) -> list[str]:
    mandatory = sum(v.level in ("mandatory", "remediate") for v in violations)
    advisory = len(violations) - mandatory
    if not violations:
        return [f"Policies ({pack}): no violations"]
    lines = [
        f"Policies ({pack}): {_counted(mandatory, 'mandatory')}, {_counted(advisory, 'advisory')}"
    ]
    if mandatory:
        lines.append(
            "  a mandatory violation stops `pulumi up --policy-pack policy`; this plan exits 3"
        )
    return lines


def with_violations_text(
    text: str, plan_resources: Sequence[dict[str, Any]], pack: str, violations: Sequence[Violation]
) -> str:
    """The plan's text with each violation under its resource and a summary of them all.

    ``plan_resources`` are ``Plan.resources`` (each with ``type``, ``name``,
    ``settings``); the summary goes before the plan's last paragraph, which
    stays the plan's own closing lines.
    """
    lines = text.split("\n")
    settings = {(r["type"], r["name"]): len(r["settings"]) for r in plan_resources}
    parents = {r["parent"] for r in plan_resources}
    unplaced: list[Violation] = []
    for violation in violations:  # each found afresh, so earlier insertions move nothing
        type_, name = resource_of(violation.urn)
        index = _find(lines, type_, name)
        if index is None:
            unplaced.append(violation)
            continue
        count = settings.get((type_, name), 0)
        if count:
            setting = lines[index + 1]
            indent = setting[: len(setting) - len(setting.lstrip(_TREE_CHARS))]
        else:
            head = lines[index]
            prefix = head[: len(head) - len(head.lstrip(_TREE_CHARS))]
            indent = prefix.replace("├─ ", "│  ").replace("└─ ", "   ")
            indent += "│  " if name in parents else "   "
        same = [v for v in violations if v.urn == violation.urn]
        position = index + 1 + count + same.index(violation)
        lines.insert(position, indent + _line(violation))
    block = ["", *_summary(pack, violations)]
    block += [f"  {_line(v)} ({v.urn or 'the stack'})" for v in reversed(unplaced)]
    end = _last_paragraph(lines)
    return "\n".join(lines[:end] + block + lines[end:])


def _find(lines: list[str], type_: str, name: str) -> int | None:
    if not type_:
        return None
    head = f"{type_}  {name}"
    for index, line in enumerate(lines):
        body = line.lstrip(_TREE_CHARS)
        if body == head or body.startswith(head + "  ("):
            return index
    return None


def _last_paragraph(lines: list[str]) -> int:
    """Index of the blank line before the plan's closing paragraph (its summary)."""
    for index in range(len(lines) - 1, -1, -1):
        if lines[index] == "" and index < len(lines) - 1:
            return index
    return len(lines)


def with_violations_json(
    text: str,
    pack: str,
    violations: Sequence[Violation],
    python: str | None = None,
    why: str | None = None,
) -> str:
    """The plan's JSON with ``violations`` on each resource and a top-level ``policy`` object.

    ``python`` and ``why``: the interpreter the pack ran with, when not its virtualenv's.
    """
    data = json.loads(text)
    for resource in data["resources"]:
        resource["violations"] = [
            {"policy": v.policy, "level": v.level, "message": v.message}
            for v in violations
            if resource_of(v.urn) == (resource["type"], resource["name"])
        ]
    data["policy"] = {
        "pack": pack,
        "mandatory": sum(v.level in ("mandatory", "remediate") for v in violations),
        "advisory": sum(v.level == "advisory" for v in violations),
        "violations": [
            {
                "policy": v.policy,
                "level": v.level,
                "message": v.message,
                "description": v.description,
                "urn": v.urn,
                "type": resource_of(v.urn)[0],
                "name": resource_of(v.urn)[1],
            }
            for v in violations
        ],
    }
    if python is not None:
        data["policy"]["python"] = python
        data["policy"]["python_why"] = why
    return json.dumps(data, indent=2)
