"""The lab's section "Azure Databricks ワークスペースをプロビジョニングする".

One component: the Premium workspace in the lab's resource group and region (or an
existing workspace, ``llmops:workspaceResourceId``, which is only used: nothing is
registered for it), and a Databricks provider signed in to it with the same Azure
identity that deploys the stack, so the in-workspace components can be created
through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_databricks as databricks
from pulumi_azure_native import databricks as azure_databricks

from llmops_infra.stack.azure_identity import AzureIdentity
from llmops_infra.stack.identity import FORMER_DATABRICKS_TYPE
from llmops_infra.stack.network import PrivateNetwork

__all__ = ["DatabricksWorkspace", "DatabricksWorkspaceArgs", "ExistingWorkspaceArgs"]


@dataclass(frozen=True)
class DatabricksWorkspaceArgs:
    """What the lab's portal form asks for."""

    resource_group_name: pulumi.Input[str]
    """リソース グループ: the same group as the Azure OpenAI account."""
    location: pulumi.Input[str]
    """リージョン: the same region as the Azure OpenAI account."""
    workspace_name: pulumi.Input[str]
    """[名前]: the workspace's name."""
    managed_resource_group_id: pulumi.Input[str]
    """ARM id of the workspace's own managed group; it must not exist yet."""
    sku: str
    """価格レベル: ``premium`` or ``trial``."""
    identity: AzureIdentity
    """The deploying identity, handed to the provider (it signs in to the workspace)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the workspace."""
    network: PrivateNetwork | None = None
    """Private mode: the network the workspace is injected into; None (the lab): the
    workspace's own managed network, as before."""


def _injection(private: PrivateNetwork | None) -> dict[str, Any]:
    """The workspace's network inputs: none for the lab (it is sent as before); in private
    mode VNet injection with secure cluster connectivity, the web page still reachable so
    a learner can open it, and Databricks' own rules in the network security group."""
    if private is None:
        return {}
    return {
        "parameters": private.workspace_parameters(),
        "public_network_access": azure_databricks.PublicNetworkAccess.ENABLED,
        "required_nsg_rules": azure_databricks.RequiredNsgRules.ALL_RULES,
    }


@dataclass(frozen=True)
class ExistingWorkspaceArgs:
    """A workspace that exists already (``llmops:workspaceResourceId``): only used, never
    registered, so ``destroy`` leaves it."""

    resource_id: str
    """Its ARM id."""
    url: pulumi.Input[str]
    """``https://adb-<id>.<n>.azuredatabricks.net``, as looked up."""
    identity: AzureIdentity
    """The deploying identity, handed to the provider (it signs in to the workspace)."""


class DatabricksWorkspace(pulumi.ComponentResource):
    """A Databricks workspace (created, or an existing one) and the provider that creates
    resources inside it."""

    workspace_url: pulumi.Output[str]
    """``https://adb-<id>.<n>.azuredatabricks.net``."""
    workspace_resource_id: pulumi.Output[str]
    """ARM id of the workspace."""
    provider: databricks.Provider
    """The workspace-level provider: pass it to every resource inside the workspace."""
    user_name: pulumi.Output[str]
    """The deploying identity's user name in the workspace (known after ``up``)."""
    home: pulumi.Output[str]
    """Its home folder, ``/Users/<user>``."""

    def __init__(
        self,
        name: str,
        args: DatabricksWorkspaceArgs | ExistingWorkspaceArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        # Until 2026-11 this component also held the cluster, the lab and the jobs.
        super().__init__(
            "llmops:databricks:Workspace",
            name,
            None,
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=FORMER_DATABRICKS_TYPE)])
            ),
        )
        if isinstance(args, ExistingWorkspaceArgs):
            # No workspace and no managed group are registered: the stack only uses it.
            self.workspace_url = pulumi.Output.from_input(args.url)
            self.workspace_resource_id = pulumi.Output.from_input(args.resource_id)
        else:
            workspace = azure_databricks.Workspace(
                f"{name}-workspace",
                workspace_name=args.workspace_name,
                resource_group_name=args.resource_group_name,
                location=args.location,
                sku=azure_databricks.SkuArgs(name=args.sku),
                # Classic compute (the lab's cluster) needs Hybrid; Serverless has none.
                compute_mode=azure_databricks.ComputeMode.HYBRID,
                managed_resource_group_id=args.managed_resource_group_id,
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self),
                **_injection(args.network),
            )
            self.workspace_url = workspace.workspace_url.apply(lambda host: f"https://{host}")
            self.workspace_resource_id = workspace.id

        # Azure auth through the workspace's ARM id, as the deploying identity.
        self.provider = databricks.Provider(
            f"{name}-provider",
            host=self.workspace_url,
            azure_workspace_resource_id=self.workspace_resource_id,
            **args.identity.databricks_provider_args(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        me = databricks.get_current_user_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self.provider)
        )
        # In a preview of a new stack the provider's settings are unknown and the engine
        # answers this lookup with an empty result; tying it to the workspace's URL makes
        # it "known after up" instead of a "None" the preview would show.
        self.user_name = pulumi.Output.all(self.workspace_url, me.user_name).apply(
            lambda values: str(values[1])
        )
        self.home = pulumi.Output.all(self.workspace_url, me.home).apply(
            lambda values: str(values[1])
        )
        self.register_outputs(
            {
                "workspace_url": self.workspace_url,
                "workspace_resource_id": self.workspace_resource_id,
                "user_name": self.user_name,
                "home": self.home,
            }
        )
