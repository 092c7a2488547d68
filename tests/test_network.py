"""Private networking (``llmops:network private``): the lab inside a virtual network.

The public lab (``network public``, the default) must not move: what it registers is
compared with ``tests/data/public-stack-2026-12.json``, recorded from the program before
the network option existed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from command_runner import run_commands
from conftest import Run
from fake_azure_openai import FakeAzureOpenAI, Reply
from plan_runs import start_in_fork

from llmops_infra import cli
from llmops_infra.offline.engine import UNKNOWN, ProgramFailed, ProgramRun, Secret
from llmops_infra.stack.config import parse_config
from workload.contract import PROJECT_DIR
from workload.model.network_refusal import network_hint

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


# --- private mode's resources -----------------------------------------------------------------

PRIVATE = {"network": "private", "region": "swedencentral", "tags": '{"owner": "platform"}'}
ALLOWED = {**PRIVATE, "allowedIpRanges": '["52.10.0.1", "20.30.40.0/24"]'}
_WORKSPACES = "Microsoft.Databricks/workspaces"


@pytest.fixture(scope="module")
def private(run: Run) -> ProgramRun:
    """The lab in private mode, no allowed ranges."""
    return run(PRIVATE)


def test_the_network_holds_its_three_subnets_carved_from_the_space(private: ProgramRun) -> None:
    vnet = private.one("azure-native:network:VirtualNetwork")
    assert vnet.inputs["addressSpace"] == {"addressPrefixes": ["10.28.0.0/22"]}
    assert vnet.inputs["location"] == "swedencentral"
    subnets = {s["name"]: s for s in vnet.inputs["subnets"]}
    assert list(subnets) == ["databricks-host", "databricks-container", "private-endpoints"]
    assert [s["addressPrefix"] for s in subnets.values()] == [
        "10.28.0.0/24",
        "10.28.1.0/24",
        "10.28.2.0/24",
    ], "the first three quarters of the space, each a /24 (Databricks needs at least /26)"
    group = private.one("azure-native:network:NetworkSecurityGroup")
    for name in ("databricks-host", "databricks-container"):
        assert [d["serviceName"] for d in subnets[name]["delegations"]] == [_WORKSPACES]
        assert subnets[name]["networkSecurityGroup"] == {"id": group.id}, f"{name} has the group"
    endpoints = subnets["private-endpoints"]
    assert endpoints["privateEndpointNetworkPolicies"] == "Disabled"
    assert "delegations" not in endpoints and "networkSecurityGroup" not in endpoints
    assert not private.by_type("azure-native:network:Subnet"), "no separate subnet resources"


def test_a_wider_space_gives_wider_subnets(run: Run) -> None:
    vnet = run({**PRIVATE, "vnetAddressSpace": "172.20.0.0/16"}).one(
        "azure-native:network:VirtualNetwork"
    )
    assert [s["addressPrefix"] for s in vnet.inputs["subnets"]] == [
        "172.20.0.0/18",
        "172.20.64.0/18",
        "172.20.128.0/18",
    ]


def test_the_workspace_is_injected_without_public_ips_and_its_page_stays_open(
    private: ProgramRun,
) -> None:
    workspace = private.one("azure-native:databricks:Workspace")
    vnet = private.one("azure-native:network:VirtualNetwork")
    assert workspace.inputs["parameters"] == {
        "customVirtualNetworkId": {"value": vnet.id},
        "customPublicSubnetName": {"value": "databricks-host"},
        "customPrivateSubnetName": {"value": "databricks-container"},
        "enableNoPublicIp": {"value": True},
    }
    assert workspace.inputs["publicNetworkAccess"] == "Enabled"
    assert workspace.inputs["requiredNsgRules"] == "AllRules"
    assert vnet.urn in workspace.dependencies, "destroy removes the workspace before the network"


def test_the_account_is_closed_and_reached_through_its_private_endpoint(
    private: ProgramRun,
) -> None:
    account = private.one("azure-native:cognitiveservices:Account")
    assert account.inputs["properties"]["publicNetworkAccess"] == "Disabled"
    assert account.inputs["properties"]["networkAcls"] == {"defaultAction": "Deny", "ipRules": []}
    endpoint = private.one("azure-native:network:PrivateEndpoint")
    vnet = private.one("azure-native:network:VirtualNetwork")
    assert endpoint.inputs["subnet"]["id"] == f"{vnet.id}/subnets/private-endpoints"
    [connection] = endpoint.inputs["privateLinkServiceConnections"]
    assert connection["privateLinkServiceId"] == account.id
    assert connection["groupIds"] == ["account"]
    assert endpoint.inputs["location"] == "swedencentral"
    assert account.urn in endpoint.dependencies, "destroy removes the endpoint before the account"
    purge = private.one("pulumi-python:dynamic/llmops:DeletedAccountPurge")
    assert purge.urn in account.dependencies, "and the account before its purge"

    zone = private.one("azure-native:privatedns:PrivateZone")
    assert zone.inputs["privateZoneName"] == "privatelink.openai.azure.com"
    assert zone.inputs["location"] == "global"
    link = private.one("azure-native:privatedns:VirtualNetworkLink")
    assert link.inputs["virtualNetwork"] == {"id": vnet.id}
    assert link.inputs["privateZoneName"] == "privatelink.openai.azure.com"
    assert link.inputs["location"] == "global"
    assert link.inputs["registrationEnabled"] is False
    group = private.one("azure-native:network:PrivateDnsZoneGroup")
    assert group.inputs["privateEndpointName"] == endpoint.outputs["name"]
    assert [c["privateDnsZoneId"] for c in group.inputs["privateDnsZoneConfigs"]] == [zone.id]
    assert endpoint.urn in group.dependencies


def test_every_new_azure_resource_carries_the_stack_s_tags(private: ProgramRun) -> None:
    for type_ in (
        "azure-native:network:NetworkSecurityGroup",
        "azure-native:network:VirtualNetwork",
        "azure-native:privatedns:PrivateZone",
        "azure-native:privatedns:VirtualNetworkLink",
        "azure-native:network:PrivateEndpoint",
    ):
        assert private.one(type_).inputs["tags"] == {"owner": "platform"}, type_


def test_allowed_ranges_open_the_account_to_exactly_those(run: Run) -> None:
    account = run(ALLOWED).one("azure-native:cognitiveservices:Account")
    assert account.inputs["properties"]["publicNetworkAccess"] == "Enabled"
    assert account.inputs["properties"]["networkAcls"] == {
        "defaultAction": "Deny",
        "ipRules": [{"value": "52.10.0.1"}, {"value": "20.30.40.0/24"}],
    }


def test_keyless_works_in_private_mode(run: Run) -> None:
    keyless = run({**PRIVATE, "authMode": "entra"})
    account = keyless.one("azure-native:cognitiveservices:Account")
    assert account.inputs["properties"]["disableLocalAuth"] is True
    assert account.inputs["properties"]["publicNetworkAccess"] == "Disabled"
    assert keyless.one("azure-native:network:PrivateEndpoint")
    assert keyless.by_type("azure-native:authorization:RoleAssignment"), "the roles as in public"
    assert keyless.exports["network"].value == "private"


def test_the_outputs_name_the_network(run: Run, private: ProgramRun) -> None:
    vnet = private.one("azure-native:network:VirtualNetwork")
    assert private.exports["network"].value == "private"
    assert private.exports["virtual_network_id"].value == vnet.id
    assert vnet.id.endswith(
        "/providers/Microsoft.Network/virtualNetworks/" + vnet.inputs["virtualNetworkName"]
    )
    public = run({})
    assert public.exports["network"].value == "public"
    assert public.exports["virtual_network_id"].value == ""


def test_a_second_up_of_the_private_stack_changes_nothing(run: Run) -> None:
    first = run(ALLOWED)
    second = run(ALLOWED, seed="another-machine", state=first)
    before = {r.urn: r.inputs for r in first.resources}
    after = {r.urn: r.inputs for r in second.resources}
    assert set(after) == set(before), "the same resources"
    assert [urn for urn in before if before[urn] != after[urn]] == []
    steps = {r.name: (r.change, r.diff) for r in second.resources if r.change != "same"}
    assert steps == {}, "nothing to update or replace"


# --- the workload, refused by a private account -----------------------------------------------


_MLFLOW_LOG = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARNING) mlflow")


def test_a_call_refused_for_its_network_exits_1_in_one_line_saying_what_to_do(
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    store = tmp_path / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{store}").search_experiments()  # tables made once
    fakes = {
        "disabled": FakeAzureOpenAI().start(),
        "firewall": FakeAzureOpenAI().start(),
        "eval": FakeAzureOpenAI().start(),
    }
    try:
        fakes["disabled"].script(Reply.network_refused(public_access_disabled=True))
        fakes["firewall"].script(Reply.network_refused(public_access_disabled=False))
        fakes["eval"].script(*[Reply.network_refused(public_access_disabled=True)] * 4)
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AZURE_OPENAI_", "OPENAI_", "MLFLOW_", "DATABRICKS_", "LLMOPS_"))
        }

        def scenario(name: str, command: str, *args: str) -> dict[str, Any]:
            fake = fakes[name]
            return {
                "command": command,
                "args": ["--experiment", name, *args],
                "env": {
                    **clean,
                    "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
                    "AZURE_OPENAI_ENDPOINT": fake.endpoint,
                    "AZURE_OPENAI_API_KEY": fake.api_key,
                    "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
                    "AZURE_OPENAI_DEPLOYMENT": fake.deployment,
                    "PYTHONPATH": str(PROJECT_DIR),
                },
            }

        results, output = run_commands(
            {
                "disabled": scenario("disabled", "chat"),
                "firewall": scenario("firewall", "chat"),
                "eval": scenario("eval", "eval", "--no-judge", "--max-retries", "0"),
            },
            cwd=tmp_path,
            env={**clean, "PYTHONPATH": str(PROJECT_DIR)},
            timeout=300,
        )
    finally:
        for fake in fakes.values():
            fake.stop()
    for name, said in (
        ("disabled", "Public access is disabled"),
        ("firewall", "Access denied due to Virtual Network/Firewall rules"),
        ("eval", "Public access is disabled"),
    ):
        result = results[name]
        assert result["code"] == 1, (name, result, output[-2000:])
        # MLflow's own log lines (creating the experiment) aside, the command says one line.
        lines = [
            line for line in result["stderr"].strip().splitlines() if not _MLFLOW_LOG.match(line)
        ]
        assert len(lines) == 1, (name, result["stderr"])
        for needle in (said, "llmops:network private", "llmops:allowedIpRanges", "workload submit"):
            assert needle in lines[0], (name, needle, lines[0])
        assert "Cognitive Services OpenAI User" not in lines[0], "not the role's hint"
        if name == "disabled":
            page = (PROJECT_DIR / "docs" / "networking.md").read_text()
            assert lines[0] in page, "docs/networking.md shows the line the command prints"


def test_other_refusals_keep_their_own_hints() -> None:
    assert network_hint(403, "The principal lacks the role.") == ""
    assert network_hint(401, "Access denied due to Virtual Network/Firewall rules.") == ""
    assert network_hint(403, "Access denied due to Virtual Network/Firewall rules.")


# --- the offline plan ---------------------------------------------------------------------------


def test_the_plan_shows_the_private_network_and_the_public_plan_does_not(run: Run) -> None:
    # run: the SDKs loaded here, so the forks start at once.
    started = {
        "private": start_in_fork("--config", "llmops:network=private"),
        "public": start_in_fork(),
    }
    (code, private, _), (public_code, public, _) = (s.result() for s in started.values())
    assert code == 0 and public_code == 0
    for line in (
        "├─ llmops:network:PrivateNetwork  network",
        "subnets: databricks-host (10.28.0.0/24, delegated to Microsoft.Databricks/workspaces, "
        "network security group), databricks-container (10.28.1.0/24, delegated to "
        "Microsoft.Databricks/workspaces, network security group), private-endpoints "
        "(10.28.2.0/24)",
        "public access: Disabled",
        "network rules: default Deny, reached through its private endpoint only",
        "sub-resource: account",
        "zone: privatelink.openai.azure.com",
        "network: injected into (known after up) (databricks-host, databricks-container); "
        "cluster VMs without public IPs; web page open",
        "network                               private",
        "virtual_network_id                    (known after up)",
        "Policies (llmops-guardrails): 0 mandatory violations, 2 advisory violations",
    ):
        assert line in private, f"the private plan shows {line!r}"
    assert "network rules:" not in public and "injected into" not in public
    assert "PrivateNetwork" not in public and "PrivateEndpoint" not in public
    assert "public access: Enabled" in public
