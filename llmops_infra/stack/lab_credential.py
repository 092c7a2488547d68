"""Keyless mode's way in for the cluster: a managed identity through Unity Catalog.

The lab puts a key in the cluster's environment. Keyless, the cluster instead
asks a Unity Catalog service credential for an Entra ID token (Databricks'
current way for compute to call Azure services; Runtime 16.2 and later, so the
lab's 16.4 LTS has it). The credential is bound to an Access Connector for
Azure Databricks, whose system-assigned identity holds the "Cognitive Services
OpenAI User" role on the account and nothing else.

Two facts of a real tenant shape this component (Microsoft Learn, "Manage access
to external cloud services using service credentials", read 2026-12-05):
creating a service credential needs a Unity Catalog metastore on the workspace,
and a service principal may create one only as an account admin ("You cannot
delegate CREATE SERVICE CREDENTIAL to a service principal"). So the metastore is
looked up first, and every keyless resource waits for that answer; and the stack
can take an existing credential (an account admin's) with its connector instead
of creating both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_databricks as databricks
from pulumi_azure_native import authorization
from pulumi_azure_native import databricks as azure_databricks

from llmops_infra.stack.azure_openai import OPENAI_USER_ROLE, role_definition

__all__ = [
    "ExistingCredential",
    "LabCredential",
    "LabCredentialArgs",
    "after",
    "unity_catalog_metastore",
]

#: What the Databricks provider's current-metastore lookup answers for a workspace without one.
NO_METASTORE: Final = "no_metastore"
_CONNECTOR_ID: Final = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/(?P<group>[^/]+)/providers/Microsoft\.Databricks/"
    r"accessConnectors/(?P<name>[^/]+)",
    re.IGNORECASE,
)


def unity_catalog_metastore(
    provider: databricks.Provider, opts: pulumi.InvokeOutputOptions | None = None
) -> pulumi.Output[str]:
    """The workspace's metastore id, asked through its own provider; stops the program when
    there is none.

    The provider answers the id ``no_metastore`` rather than failing (pulumi-databricks'
    ``get_current_metastore``); in a preview, before the workspace exists, the lookup
    answers nothing and the check waits for ``up``.
    """
    options = pulumi.InvokeOutputOptions.merge(opts, pulumi.InvokeOutputOptions(provider=provider))
    found = databricks.get_current_metastore_output(opts=options)

    def check(metastore_id: str | None) -> str:
        if metastore_id == NO_METASTORE:
            raise pulumi.RunError(
                "the Databricks workspace has no Unity Catalog metastore, which keyless mode "
                "(llmops:authMode entra) needs for its service credential: have a Databricks "
                "account admin assign the region's metastore to the workspace (Databricks, "
                '"Enable a workspace for Unity Catalog") and run `pulumi up` again, or set '
                "llmops:authMode key"
            )
        return metastore_id or ""

    return found.id.apply(check)


def after(gate: pulumi.Input[Any], value: pulumi.Input[Any]) -> pulumi.Output[Any]:
    """``value``, once ``gate`` has resolved: a resource given it waits for (and fails with)
    the gate, though the gate is a lookup and not a resource it could depend on."""
    return pulumi.Output.all(gate, value).apply(lambda both: both[1])


@dataclass(frozen=True)
class ExistingCredential:
    """A service credential an account admin made, and the Access Connector it is bound to."""

    name: str
    """``llmops:serviceCredential``."""
    access_connector_id: str
    """``llmops:accessConnectorId``: the connector's resource id."""


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
    metastore_id: pulumi.Input[str]
    """The workspace's metastore (:func:`unity_catalog_metastore`): everything here waits
    for it, so a workspace without one stops the program before any of it exists."""
    existing: ExistingCredential | None = None
    """Use this credential and connector instead of creating them."""
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
        if args.existing is None:
            connector = azure_databricks.AccessConnector(
                f"{name}-connector",
                connector_name=after(args.metastore_id, args.connector_name),
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
            connector_id: pulumi.Output[str] = connector.id
        else:
            self.principal_id = self._existing_principal(args.existing)
            connector_id = pulumi.Output.from_input(args.existing.access_connector_id)
        role = authorization.RoleAssignment(
            f"{name}-openai-user",
            principal_id=after(args.metastore_id, self.principal_id),
            # A managed identity is a service principal; Azure refuses a wrong type.
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=role_definition(args.subscription_id, OPENAI_USER_ROLE),
            scope=args.account_id,
            description="The lab cluster's service credential calls the model (keyless).",
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.existing is None:
            credential = databricks.Credential(
                f"{name}-service-credential",
                name=args.credential_name,
                purpose="SERVICE",
                azure_managed_identity=databricks.CredentialAzureManagedIdentityArgs(
                    access_connector_id=connector_id
                ),
                comment="The LLMOps lab's cluster calls Azure OpenAI with this identity (keyless).",
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[role]),
            )
            self.credential_name = credential.name
        else:
            self.credential_name = pulumi.Output.from_input(args.existing.name)
        self.register_outputs(
            {"credential_name": self.credential_name, "principal_id": self.principal_id}
        )

    def _existing_principal(self, existing: ExistingCredential) -> pulumi.Output[str]:
        """The system-assigned identity of the connector the existing credential is bound to."""
        parts = _CONNECTOR_ID.fullmatch(existing.access_connector_id)
        if parts is None:  # config.py's rule checks the shape first
            raise pulumi.RunError(f"llmops:accessConnectorId = {existing.access_connector_id!r}")
        found = azure_databricks.get_access_connector_output(
            connector_name=parts["name"],
            resource_group_name=parts["group"],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )

        def principal(identity: Any) -> str:
            principal_id = getattr(identity, "principal_id", None) if identity else None
            if not principal_id:
                raise pulumi.RunError(
                    f"llmops:accessConnectorId = {existing.access_connector_id!r} has no "
                    "system-assigned managed identity: turn it on for that Access Connector "
                    "(or name the connector the service credential "
                    f"{existing.name!r} is bound to)"
                )
            return str(principal_id)

        return found.identity.apply(principal)
