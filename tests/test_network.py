"""Private networking (``llmops:network private``): the lab inside a virtual network.

The public lab (``network public``, the default) must not move: what it registers is
compared with ``tests/data/public-stack-2026-12.json``, recorded from the program before
the network option existed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conftest import Run

from llmops_infra.offline.engine import UNKNOWN, ProgramRun, Secret

RECORDING = Path(__file__).with_name("data") / "public-stack-2026-12.json"

#: The public stacks recorded: the lab, keyless, the gateway with a judge, serverless with
#: a catalog (each option that changes what is registered).
PUBLIC_CONFIGS: dict[str, dict[str, str]] = {
    "default": {},
    "entra": {"llmops:authMode": "entra"},
    "gateway-judge": {
        "llmops:gateway": "true",
        "llmops:judgeModel": "gpt-4o-mini",
        "llmops:region": "eastus2",
    },
    "serverless-catalog": {
        "llmops:compute": "serverless",
        "llmops:catalog": "main",
        "llmops:region": "eastus2",
    },
}

# The workload's wheel is named and hashed after its own bytes: any change to the workload
# changes them, which is the wheel's own business, not the network's.
_WHEEL_HASHES = (
    (re.compile(r"wheel-[0-9a-f]{16}"), "wheel-<hash>"),
    (re.compile(r"workload-wheel/[0-9a-f]{16}"), "workload-wheel/<hash>"),
)


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return "<secret>"
    if value is UNKNOWN:
        return "<unknown>"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "md5"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        for pattern, placeholder in _WHEEL_HASHES:
            value = pattern.sub(placeholder, value)
    return value


def snapshot(result: ProgramRun) -> dict[str, dict[str, Any]]:
    """What a run registered, by URN (registration order is the engine's, not the
    program's): each resource's inputs, parent and dependencies."""
    return {
        r.urn: {
            "inputs": _plain(r.inputs),
            "parent": r.parent,
            "dependencies": sorted(r.dependencies),
        }
        for r in sorted(result.resources, key=lambda r: r.urn)
    }


def record(run: Run) -> dict[str, Any]:
    """The recording's content: each public configuration's snapshot."""
    return {name: snapshot(run(config)) for name, config in PUBLIC_CONFIGS.items()}


def test_the_public_lab_registers_exactly_what_it_did_before_the_network_option(
    run: Run,
) -> None:
    recorded = json.loads(RECORDING.read_text())
    assert list(recorded) == list(PUBLIC_CONFIGS), "every recorded configuration is run"
    for name, config in PUBLIC_CONFIGS.items():
        today = snapshot(run(config))
        assert sorted(today) == sorted(recorded[name]), f"{name}: the same URNs"
        for urn, before in recorded[name].items():
            assert today[urn] == before, f"{name}: {urn} registered as before"
