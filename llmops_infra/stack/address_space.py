"""Private mode's addresses: the virtual network's range, its subnets, the allowed callers.

Pure functions on :mod:`ipaddress`, no Pulumi: the settings' rules
(:mod:`llmops_infra.stack.config`) check with them, and the network component
(:mod:`llmops_infra.stack.network`) carves the subnets with the same function, so
what ``plan`` accepts is what ``up`` builds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CONTAINER_SUBNET",
    "HOST_SUBNET",
    "MIN_DATABRICKS_PREFIX",
    "PRIVATE_ENDPOINT_SUBNET",
    "Subnets",
    "allowed_range_problem",
    "carve",
    "vnet_problem",
]

#: The subnets' names (DESIGN: ``databricks-host``, ``databricks-container``,
#: ``private-endpoints``): the workspace names the first two as its public and private subnet.
HOST_SUBNET: Final = "databricks-host"
CONTAINER_SUBNET: Final = "databricks-container"
PRIVATE_ENDPOINT_SUBNET: Final = "private-endpoints"

#: Azure Databricks VNet injection: the workspace's address space from /16 to /24, each of
#: its two subnets at least /26 (Microsoft Learn, "Deploy Azure Databricks in your Azure
#: virtual network (VNet injection)", Address space and maximum cluster nodes). The stack
#: takes /16../22, so a quarter of the range (/18../24) always holds a Databricks subnet.
MIN_DATABRICKS_PREFIX: Final = 26
_WIDEST: Final = 16
#: IPv4's special-purpose ranges (IANA's IPv4 Special-Purpose Address Registry, RFC 6890,
#: with multicast and the reserved 240/4): a range that overlaps one is not "public".
_NOT_PUBLIC: Final = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_NARROWEST: Final = 22


@dataclass(frozen=True)
class Subnets:
    """The three subnets carved from the network's range, as CIDR strings."""

    host: str
    """``databricks-host``: the workspace's "public" (host) subnet."""
    container: str
    """``databricks-container``: the workspace's "private" (container) subnet."""
    private_endpoints: str
    """``private-endpoints``: the Azure OpenAI account's private endpoint."""


def vnet_problem(value: str) -> str | None:
    """What is wrong with ``vnetAddressSpace``, or None when it can hold the lab."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return "must be an IPv4 range in CIDR notation with its host bits zero, e.g. 10.28.0.0/22"
    if network.version != 4:
        return (
            "must be an IPv4 range (Azure Databricks injects into IPv4 subnets), e.g. 10.28.0.0/22"
        )
    if not _WIDEST <= network.prefixlen <= _NARROWEST:
        return (
            f"must be /{_WIDEST} to /{_NARROWEST}: its quarters hold the two Databricks subnets "
            f"(each at least /{MIN_DATABRICKS_PREFIX}) and the private endpoints' subnet"
        )
    return None


def carve(value: str) -> Subnets:
    """The subnets of a valid ``vnetAddressSpace``: its first three quarters, in order.

    The last quarter stays free for what the estate adds later. Equal quarters keep the
    two Databricks subnets the same size (a cluster node takes one address in each).
    """
    network = ipaddress.IPv4Network(value, strict=True)
    quarters = list(network.subnets(prefixlen_diff=2))
    assert quarters[0].prefixlen <= MIN_DATABRICKS_PREFIX, "vnet_problem checked the range"
    return Subnets(str(quarters[0]), str(quarters[1]), str(quarters[2]))


def allowed_range_problem(values: Sequence[str]) -> str | None:
    """What is wrong with ``allowedIpRanges``, or None: each entry a public IPv4 address
    or CIDR range, listed once.

    Azure matches the account's IP rules against the caller's public address only; a
    private, loopback, link-local, documentation, multicast or otherwise reserved range
    never matches anything and would only look like access.
    """
    bad: list[str] = []
    for value in values:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError:
            bad.append(value)
            continue
        if not isinstance(network, ipaddress.IPv4Network) or any(
            network.overlaps(special) for special in _NOT_PUBLIC
        ):
            bad.append(value)
    if bad:
        return (
            f"{', '.join(repr(b) for b in bad)}: each entry must be a public IPv4 address or "
            "CIDR range with its host bits zero (a laptop's public address, as "
            "`curl -s https://ifconfig.me` prints it); private, loopback, link-local, "
            "documentation and reserved ranges never reach the account"
        )
    if len(set(values)) != len(values):
        return "list each address or range once"
    return None
