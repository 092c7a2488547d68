"""Keyless mode's way in for the cluster: a managed identity through Unity Catalog.

The lab puts a key in the cluster's environment. Keyless, the cluster instead
asks a Unity Catalog service credential for an Entra ID token (Databricks'
current way for compute to call Azure services; Runtime 16.2 and later, so the
lab's 16.4 LTS has it). The credential is bound to an Access Connector for
Azure Databricks, whose system-assigned identity holds the "Cognitive Services
OpenAI User" role on the account and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_databricks as databricks
from pulumi_azure_native import authorization
from pulumi_azure_native import databricks as azure_databricks

from llmops_infra.stack.azure_openai import OPENAI_USER_ROLE, role_definition

__all__ = ["LabCredential", "LabCredentialArgs"]


@dataclass(frozen=True)
class LabCredentialArgs:
    """Where the connector lives, what it may call, and the credential's name."""

    resource_group_name: pulumi.Input[str]
    """The lab's resource group."""
    location: pulumi.Input[str]
    """The lab's region."""
    connector_name: pulumi.Input[str]
    """The Access Connector's name."""
    credential_name: pulumi.Input[str]
    """Unique across the region's metastore, which other workspaces share."""
    subscription_id: pulumi.Input[str]
    """The subscription (for the role definition's id)."""
    account_id: pulumi.Input[str]
    """The Azure OpenAI account the connector's identity may call (the role's scope)."""
    provider: databricks.Provider
    """The workspace's provider: the credential is created through the workspace."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the connector."""


class LabCredential(pulumi.ComponentResource):
    """An Access Connector, its role on the account, and the service credential bound to it."""

    credential_name: pulumi.Output[str]
    """The service credential's name (``LLMOPS_SERVICE_CREDENTIAL`` on the cluster)."""
    principal_id: pulumi.Output[str]
    """The connector's managed identity (its object id)."""

    def __init__(
        self, name: str, args: LabCredentialArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:databricks:LabCredential", name, None, opts)
        connector = azure_databricks.AccessConnector(
            f"{name}-connector",
            connector_name=args.connector_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            identity=azure_databricks.ManagedServiceIdentityArgs(
                type=azure_databricks.ManagedServiceIdentityType.SYSTEM_ASSIGNED
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.principal_id = connector.identity.apply(
            lambda identity: identity.principal_id if identity else ""
        )
        role = authorization.RoleAssignment(
            f"{name}-openai-user",
            principal_id=self.principal_id,
            # A managed identity is a service principal; Azure refuses a wrong type.
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=role_definition(args.subscription_id, OPENAI_USER_ROLE),
            scope=args.account_id,
            description="The lab cluster's service credential calls the model (keyless).",
            opts=pulumi.ResourceOptions(parent=self),
        )
        credential = databricks.Credential(
            f"{name}-service-credential",
            name=args.credential_name,
            purpose="SERVICE",
            azure_managed_identity=databricks.CredentialAzureManagedIdentityArgs(
                access_connector_id=connector.id
            ),
            comment="The LLMOps lab's cluster calls Azure OpenAI with this identity (keyless).",
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[role]),
        )
        self.credential_name = credential.name
        self.register_outputs(
            {"credential_name": self.credential_name, "principal_id": self.principal_id}
        )
