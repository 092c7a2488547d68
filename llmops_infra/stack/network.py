"""Private networking (``llmops:network private``): the lab inside its own virtual network.

One component, which the workspace and the Azure OpenAI account receive: a network
security group; a virtual network whose three subnets are declared inside it (separate
subnet resources would fight the network's own list on every ``up``), the two
Databricks subnets delegated to ``Microsoft.Databricks/workspaces`` with the group
attached, network policies for private endpoints off on the third; and the private DNS
zone ``privatelink.openai.azure.com`` linked to the network, so that inside it the
account's own host name resolves to its private endpoint's address.

What the receivers do with it: :meth:`PrivateNetwork.workspace_parameters` injects the
workspace (secure cluster connectivity, no public IP on the cluster's VMs);
:meth:`PrivateNetwork.account_rules` closes the account (network rules default Deny,
public access only for ``allowedIpRanges``), whose component then makes its private
endpoint in :attr:`PrivateNetwork.private_endpoint_subnet_id` with the DNS zone group on
:attr:`PrivateNetwork.dns_zone_id`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import pulumi
from pulumi_azure_native import cognitiveservices, network, privatedns
from pulumi_azure_native import databricks as azure_databricks

from llmops_infra.stack.address_space import (
    CONTAINER_SUBNET,
    HOST_SUBNET,
    PRIVATE_ENDPOINT_SUBNET,
    carve,
)

__all__ = [
    "DATABRICKS_DELEGATION",
    "OPENAI_PRIVATE_DNS_ZONE",
    "AccountRules",
    "PrivateNetwork",
    "PrivateNetworkArgs",
]

#: The service the two Databricks subnets are delegated to (VNet injection requires it).
DATABRICKS_DELEGATION: Final = "Microsoft.Databricks/workspaces"
#: Azure OpenAI's private DNS zone (Microsoft Learn, "Azure Private Endpoint private DNS
#: zone values", Azure AI services: ``privatelink.openai.azure.com``).
OPENAI_PRIVATE_DNS_ZONE: Final = "privatelink.openai.azure.com"


@dataclass(frozen=True)
class PrivateNetworkArgs:
    """Where the network goes and what it holds."""

    resource_group_name: pulumi.Input[str]
    """The stack's resource group."""
    location: pulumi.Input[str]
    """The stack's region (the workspace and the account are there too)."""
    network_name: pulumi.Input[str]
    """The virtual network's name (its DNS link is named after it)."""
    security_group_name: pulumi.Input[str]
    """The network security group's name."""
    address_space: str
    """``vnetAddressSpace``, validated: the subnets are its first three quarters."""
    allowed_ip_ranges: tuple[str, ...] = ()
    """``allowedIpRanges``: public addresses that may still reach the account."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource that takes them."""


@dataclass(frozen=True)
class AccountRules:
    """How the Azure OpenAI account is closed (its ``properties``' network settings)."""

    network_acls: cognitiveservices.NetworkRuleSetArgs
    """Default Deny; an IP rule for each allowed range."""
    public_network_access: cognitiveservices.PublicNetworkAccess
    """Disabled without allowed ranges, else Enabled (for exactly those)."""


def _private_endpoint_subnet_id(subnets: Sequence[network.outputs.SubnetResponse] | None) -> str:
    for subnet in subnets or []:
        if subnet.name == PRIVATE_ENDPOINT_SUBNET and subnet.id is not None:
            return subnet.id
    raise ValueError(f"the virtual network reports no subnet {PRIVATE_ENDPOINT_SUBNET}")


class PrivateNetwork(pulumi.ComponentResource):
    """The virtual network the workspace is injected into and the account is reached in."""

    virtual_network_id: pulumi.Output[str]
    """The virtual network's ARM id."""
    private_endpoint_subnet_id: pulumi.Output[str]
    """The ARM id of the ``private-endpoints`` subnet."""
    dns_zone_id: pulumi.Output[str]
    """The ARM id of the private DNS zone ``privatelink.openai.azure.com``."""

    def __init__(
        self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:network:PrivateNetwork", name, None, opts)
        self._allowed_ip_ranges = args.allowed_ip_ranges
        child = pulumi.ResourceOptions(parent=self)
        subnets = carve(args.address_space)

        # With requiredNsgRules AllRules, Databricks adds the rules it needs to this group
        # itself (a network intent policy keeps them); the stack declares none.
        group = network.NetworkSecurityGroup(
            f"{name}-nsg",
            network_security_group_name=args.security_group_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            opts=child,
        )

        def databricks_subnet(subnet_name: str, prefix: str) -> network.SubnetArgs:
            return network.SubnetArgs(
                name=subnet_name,
                address_prefix=prefix,
                network_security_group=network.NetworkSecurityGroupArgs(id=group.id),
                delegations=[
                    network.DelegationArgs(name="databricks", service_name=DATABRICKS_DELEGATION)
                ],
            )

        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=args.network_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            subnets=[
                databricks_subnet(HOST_SUBNET, subnets.host),
                databricks_subnet(CONTAINER_SUBNET, subnets.container),
                network.SubnetArgs(
                    name=PRIVATE_ENDPOINT_SUBNET,
                    address_prefix=subnets.private_endpoints,
                    # A private endpoint's subnet needs its network policies off.
                    private_endpoint_network_policies=(
                        network.VirtualNetworkPrivateEndpointNetworkPolicies.DISABLED
                    ),
                ),
            ],
            tags=dict(args.tags),
            opts=child,
        )

        zone = privatedns.PrivateZone(
            f"{name}-openai-dns",
            private_zone_name=OPENAI_PRIVATE_DNS_ZONE,
            resource_group_name=args.resource_group_name,
            location="global",  # a private DNS zone has no region
            tags=dict(args.tags),
            opts=child,
        )
        privatedns.VirtualNetworkLink(
            f"{name}-openai-dns-link",
            virtual_network_link_name=pulumi.Output.concat(args.network_name, "-openai"),
            private_zone_name=zone.name,
            resource_group_name=args.resource_group_name,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=vnet.id),
            # The zone holds the account's record only; the VMs register nothing in it.
            registration_enabled=False,
            tags=dict(args.tags),
            opts=child,
        )

        self.virtual_network_id = vnet.id
        # The subnet's id as Azure reports it (known once the network exists).
        self.private_endpoint_subnet_id = vnet.subnets.apply(_private_endpoint_subnet_id)
        self.dns_zone_id = zone.id
        self.register_outputs(
            {
                "virtual_network_id": self.virtual_network_id,
                "private_endpoint_subnet_id": self.private_endpoint_subnet_id,
                "dns_zone_id": self.dns_zone_id,
            }
        )

    def workspace_parameters(self) -> azure_databricks.WorkspaceCustomParametersArgs:
        """VNet injection with secure cluster connectivity: the workspace's clusters in
        the two Databricks subnets, their VMs without public IPs."""
        return azure_databricks.WorkspaceCustomParametersArgs(
            custom_virtual_network_id=azure_databricks.WorkspaceCustomStringParameterArgs(
                value=self.virtual_network_id
            ),
            custom_public_subnet_name=azure_databricks.WorkspaceCustomStringParameterArgs(
                value=HOST_SUBNET
            ),
            custom_private_subnet_name=azure_databricks.WorkspaceCustomStringParameterArgs(
                value=CONTAINER_SUBNET
            ),
            enable_no_public_ip=azure_databricks.WorkspaceNoPublicIPBooleanParameterArgs(
                value=True
            ),
        )

    def account_rules(self) -> AccountRules:
        """The account closed to the internet, but for the allowed ranges."""
        return AccountRules(
            network_acls=cognitiveservices.NetworkRuleSetArgs(
                default_action=cognitiveservices.NetworkRuleAction.DENY,
                ip_rules=[
                    cognitiveservices.IpRuleArgs(value=value) for value in self._allowed_ip_ranges
                ],
            ),
            public_network_access=(
                cognitiveservices.PublicNetworkAccess.ENABLED
                if self._allowed_ip_ranges
                else cognitiveservices.PublicNetworkAccess.DISABLED
            ),
        )
