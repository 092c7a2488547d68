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

import pytest
from conftest import Run

from llmops_infra import cli
from llmops_infra.offline.engine import UNKNOWN, ProgramFailed, ProgramRun, Secret
from llmops_infra.stack.config import parse_config

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


# --- settings ---------------------------------------------------------------------------------

BAD_VALUES = [
    ({"network": "vnet"}, "llmops:network", "'vnet'", "public, private"),
    (
        {"network": "private", "vnetAddressSpace": "10.28.0.0"},
        "llmops:vnetAddressSpace",
        "/16",
        "/22",
    ),
    (
        {"network": "private", "vnetAddressSpace": "10.28.0.1/22"},
        "llmops:vnetAddressSpace",
        "'10.28.0.1/22'",
        "host bits",
    ),
    (
        {"network": "private", "vnetAddressSpace": "10.28.0.0/24"},
        "llmops:vnetAddressSpace",
        "'10.28.0.0/24'",
        "/16 to /22",
    ),
    (
        {"network": "private", "vnetAddressSpace": "10.0.0.0/15"},
        "llmops:vnetAddressSpace",
        "'10.0.0.0/15'",
        "/16 to /22",
    ),
    (
        {"network": "private", "vnetAddressSpace": "fd00::/48"},
        "llmops:vnetAddressSpace",
        "'fd00::/48'",
        "IPv4",
    ),
    (
        {"network": "private", "allowedIpRanges": '["10.1.2.3"]'},
        "llmops:allowedIpRanges",
        "'10.1.2.3'",
        "public IPv4",
    ),
    (
        {"network": "private", "allowedIpRanges": '["127.0.0.1"]'},
        "llmops:allowedIpRanges",
        "127.0.0.1",
        "public IPv4",
    ),
    (
        {"network": "private", "allowedIpRanges": '["169.254.0.4"]'},
        "llmops:allowedIpRanges",
        "169.254.0.4",
        "public IPv4",
    ),
    (
        {"network": "private", "allowedIpRanges": '["198.51.100.7"]'},
        "llmops:allowedIpRanges",
        "198.51.100.7",
        "public IPv4",
    ),
    (
        {"network": "private", "allowedIpRanges": '["0.0.0.0/0"]'},
        "llmops:allowedIpRanges",
        "0.0.0.0/0",
        "public IPv4",
    ),
    (
        {"network": "private", "allowedIpRanges": '["52.10.0.1/16"]'},
        "llmops:allowedIpRanges",
        "52.10.0.1/16",
        "host bits",
    ),
    (
        {"network": "private", "allowedIpRanges": '["2001:4860::8888"]'},
        "llmops:allowedIpRanges",
        "2001:4860::8888",
        "IPv4",
    ),
    (
        {"network": "private", "allowedIpRanges": '["laptop"]'},
        "llmops:allowedIpRanges",
        "laptop",
        "public IPv4",
    ),
    (
        {"network": "private", "allowedIpRanges": '["52.10.0.1", "52.10.0.1"]'},
        "llmops:allowedIpRanges",
        "52.10.0.1",
        "once",
    ),
    (
        {"allowedIpRanges": '["52.10.0.1"]'},
        "llmops:allowedIpRanges",
        "52.10.0.1",
        "only to network private",
    ),
    (
        {"vnetAddressSpace": "10.40.0.0/22"},
        "llmops:vnetAddressSpace",
        "10.40.0.0/22",
        "only to network private",
    ),
]


@pytest.mark.parametrize(("config", "key", "bad", "allowed"), BAD_VALUES)
def test_a_bad_network_value_stops_up_before_anything_is_registered(
    run: Run, config: dict[str, str], key: str, bad: str, allowed: str
) -> None:
    with pytest.raises(ProgramFailed) as failure:
        run(config)
    message = str(failure.value)
    assert key in message and bad in message, f"the message names the key and value: {message}"
    assert allowed in message, f"the message says what is allowed: {message}"
    assert failure.value.registered == 0, "nothing is registered before validation"
    assert "\n" not in message, "one message, no traceback"


@pytest.mark.parametrize("command", ["plan", "preflight"])
@pytest.mark.parametrize(("config", "key", "bad", "allowed"), BAD_VALUES[1::3])
def test_a_bad_network_value_exits_2_in_plan_and_preflight(
    command: str,
    config: dict[str, str],
    key: str,
    bad: str,
    allowed: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    overrides = [arg for k, v in config.items() for arg in ("--config", f"llmops:{k}={v}")]
    assert cli.main([command, *overrides]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert key in err and bad in err and allowed in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_valid_network_settings_are_read_as_given() -> None:
    config = parse_config(
        {
            "network": "private",
            "vnetAddressSpace": "172.20.0.0/16",
            "allowedIpRanges": '["52.10.0.1", "20.30.40.0/24"]',
        }.get
    )
    assert (config.network, config.vnet_address_space, config.allowed_ip_ranges) == (
        "private",
        "172.20.0.0/16",
        ("52.10.0.1", "20.30.40.0/24"),
    )


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"gateway": "true"}, ["gateway true"]),
        ({"compute": "serverless"}, ["compute serverless"]),
        ({"gateway": "true", "compute": "serverless"}, ["gateway true", "compute serverless"]),
    ],
)
def test_private_mode_refuses_the_gateway_and_serverless_before_anything_is_registered(
    run: Run, config: dict[str, str], names: list[str]
) -> None:
    with pytest.raises(ProgramFailed) as failure:
        run({"network": "private", "region": "eastus2", **config})
    message = str(failure.value)
    assert "llmops:network = 'private'" in message, message
    for name in names:
        assert name in message, f"the message names {name}: {message}"
    assert "network connectivity configuration" in message, "the admin route is named"
    assert "docs/networking.md" in message
    assert failure.value.registered == 0, "nothing is registered"
    assert "llmops:allowedIpRanges" not in message, "no second complaint about the key it set"
