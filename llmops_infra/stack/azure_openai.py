"""The lab's sections "Azure OpenAI リソースをプロビジョニングする" and
"必要なモデルをデプロイする".

One component: the Azure OpenAI account (Standard S0, custom subdomain), its
gpt-4o deployment at the lab's rate limit, optionally a second deployment for
the eval judges, and the account's access: a key as a Pulumi secret (key mode,
the lab's way), or, keyless, local authentication disabled and the deploying
identity given the "Cognitive Services OpenAI User" role.

Azure answers 409 "Another operation is being performed on the parent
resource" when two deployments of one account are created, changed or deleted
at once, so the judge deployment depends on the chat deployment: Pulumi then
creates and updates them one after the other, and deletes them in reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pulumi
from pulumi_azure_native import authorization, cognitiveservices
from pulumi_azure_native import network as azure_network

from llmops_infra.stack.config import AuthMode
from llmops_infra.stack.network import PrivateNetwork

__all__ = [
    "OPENAI_USER_ROLE",
    "AzureOpenAI",
    "AzureOpenAIArgs",
    "DeploymentArgs",
    "role_definition",
]

#: The built-in role "Cognitive Services OpenAI User": call deployments, nothing more.
OPENAI_USER_ROLE: Final = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"


def role_definition(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    """The ARM id of a built-in role definition in the subscription."""
    return pulumi.Output.concat(
        "/subscriptions/",
        subscription_id,
        "/providers/Microsoft.Authorization/roleDefinitions/",
        role,
    )


@dataclass(frozen=True)
class DeploymentArgs:
    """One model deployment (デプロイ) of the account."""

    name: str
    """デプロイ名: what a call passes as ``model``."""
    model_name: str
    """The model to deploy."""
    model_version: str | None
    """モデル バージョン: None keeps Azure's default version (the lab's choice)."""
    capacity: int
    """1 分あたりのトークン数のレート制限, in thousands (10 = 10K TPM)."""


@dataclass(frozen=True)
class AzureOpenAIArgs:
    """What the lab's portal forms ask for, plus the names this stack chose."""

    resource_group_name: pulumi.Input[str]
    """[リソース グループ]: the lab's resource group."""
    location: pulumi.Input[str]
    """[リージョン]: the region drawn at random from the allowed ones."""
    account_name: pulumi.Input[str]
    """[名前]: globally unique; also the custom subdomain of the endpoint."""
    chat: DeploymentArgs
    """The lab's gpt-4o deployment."""
    judge: DeploymentArgs | None = None
    """A second deployment for the eval judges, or None."""
    auth_mode: AuthMode = "key"
    """``key``: list a key as a secret; ``entra``: local authentication disabled."""
    subscription_id: pulumi.Input[str] = ""
    """The subscription (for the role definition's id), in entra mode."""
    deployer_object_id: pulumi.Input[str] = ""
    """The deploying identity's object id, given the OpenAI User role in entra mode."""
    deployer_principal_type: pulumi.Input[str] = "User"
    """``User`` or ``ServicePrincipal``: Azure refuses an assignment that states it wrong."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource."""
    depends_on: tuple[pulumi.Resource, ...] = ()
    """Resources the account must be created after (and deleted before)."""
    network: PrivateNetwork | None = None
    """Private mode: the account closed, reached through a private endpoint in this
    network; None (the lab) leaves it on the internet."""


class AzureOpenAI(pulumi.ComponentResource):
    """An Azure OpenAI account with the lab's model deployment(s) and its access."""

    account_name: pulumi.Output[str]
    """The account's name."""
    account_id: pulumi.Output[str]
    """The account's ARM id (the scope of role assignments on it)."""
    endpoint: pulumi.Output[str]
    """``https://<subdomain>.openai.azure.com/``."""
    api_key: pulumi.Output[str] | None
    """The account's first key, a Pulumi secret; None in entra mode (there is none)."""
    deployment_name: pulumi.Output[str]
    """The chat deployment's name, what the chat call passes as ``model``."""
    judge_deployment_name: pulumi.Output[str]
    """The judge deployment's name, "" when there is none."""

    def __init__(
        self, name: str, args: AzureOpenAIArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:openai:AzureOpenAI", name, None, opts)
        keyless = args.auth_mode == "entra"
        # Private mode closes the account; the lab's (public) account is sent exactly as
        # before, so a public stack sees no change.
        rules = args.network.account_rules() if args.network is not None else None

        account = cognitiveservices.Account(
            f"{name}-account",
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="OpenAI",
            # 価格レベル: Standard S0
            sku=cognitiveservices.SkuArgs(name="S0"),
            properties=cognitiveservices.AccountPropertiesArgs(
                # The endpoint's host name, and required for Entra ID (token) auth.
                custom_sub_domain_name=args.account_name,
                public_network_access=(
                    rules.public_network_access
                    if rules is not None
                    else cognitiveservices.PublicNetworkAccess.ENABLED
                ),
                network_acls=rules.network_acls if rules is not None else None,
                # Keyless: no key works, so none can leak (Azure Policy's "key access
                # disabled"). Key mode says False outright: azure-native leaves a property
                # the program stops sending as it is in Azure (pulumi-azure-native#2507), so
                # a stack switched back from keyless would otherwise keep keys disabled.
                disable_local_auth=keyless,
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )

        if args.network is not None:
            self._private_endpoint(name, account, args, args.network)
        chat = self._deployment(f"{name}-deployment", account, args, args.chat, after=None)
        judge = (
            self._deployment(f"{name}-judge-deployment", account, args, args.judge, after=chat)
            if args.judge is not None
            else None
        )

        self.api_key = None
        if keyless:
            authorization.RoleAssignment(
                f"{name}-deployer-openai-user",
                principal_id=args.deployer_object_id,
                principal_type=args.deployer_principal_type,
                role_definition_id=role_definition(args.subscription_id, OPENAI_USER_ROLE),
                scope=account.id,
                description="The identity that deployed the stack calls the model (keyless).",
                opts=pulumi.ResourceOptions(parent=self),
            )
        else:
            keys = cognitiveservices.list_account_keys_output(
                account_name=account.name,
                resource_group_name=args.resource_group_name,
                opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[account]),
            )
            self.api_key = pulumi.Output.secret(keys.key1)

        self.account_name = account.name
        self.account_id = account.id
        self.endpoint = account.properties.apply(lambda p: p.endpoint)
        self.deployment_name = chat.name
        self.judge_deployment_name = (
            judge.name if judge is not None else pulumi.Output.from_input("")
        )
        self.register_outputs(
            {
                "account_name": self.account_name,
                "endpoint": self.endpoint,
                "api_key": self.api_key,
                "deployment_name": self.deployment_name,
                "judge_deployment_name": self.judge_deployment_name,
            }
        )

    def _private_endpoint(
        self,
        name: str,
        account: cognitiveservices.Account,
        args: AzureOpenAIArgs,
        private: PrivateNetwork,
    ) -> None:
        """The account's private endpoint in the network, and its DNS record in the private
        zone (the zone group keeps the record in step with the endpoint's address).

        The endpoint names the account, so ``destroy`` deletes it before the account (and
        the account's purge after that)."""
        endpoint = azure_network.PrivateEndpoint(
            f"{name}-private-endpoint",
            private_endpoint_name=pulumi.Output.concat("pe-", account.name),
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet=azure_network.SubnetArgs(id=private.private_endpoint_subnet_id),
            private_link_service_connections=[
                azure_network.PrivateLinkServiceConnectionArgs(
                    name=account.name,
                    private_link_service_id=account.id,
                    group_ids=["account"],  # an Azure AI services account's one sub-resource
                )
            ],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        azure_network.PrivateDnsZoneGroup(
            f"{name}-private-dns",
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=args.resource_group_name,
            private_dns_zone_configs=[
                azure_network.PrivateDnsZoneConfigArgs(
                    name="privatelink-openai-azure-com", private_dns_zone_id=private.dns_zone_id
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _deployment(
        self,
        resource_name: str,
        account: cognitiveservices.Account,
        args: AzureOpenAIArgs,
        deployment: DeploymentArgs,
        after: cognitiveservices.Deployment | None,
    ) -> cognitiveservices.Deployment:
        """One Standard deployment; ``after``: the deployment it must wait for (never two
        operations on one account at once)."""
        return cognitiveservices.Deployment(
            resource_name,
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            deployment_name=deployment.name,
            # デプロイの種類: Standard; capacity counts units of 1,000 tokens per minute.
            sku=cognitiveservices.SkuArgs(name="Standard", capacity=deployment.capacity),
            properties=cognitiveservices.DeploymentPropertiesArgs(
                model=cognitiveservices.DeploymentModelArgs(
                    format="OpenAI",
                    name=deployment.model_name,
                    # モデル バージョン: omitted means "use the default version".
                    version=deployment.model_version,
                ),
                # Follow the default version as Azure moves it, like the portal's default.
                version_upgrade_option=(
                    cognitiveservices.DeploymentModelVersionUpgradeOption.ONCE_NEW_DEFAULT_VERSION_AVAILABLE
                    if deployment.model_version is None
                    else cognitiveservices.DeploymentModelVersionUpgradeOption.NO_AUTO_UPGRADE
                ),
                # コンテンツ フィルター: 既定. Dynamic quota is never enabled here.
                rai_policy_name="Microsoft.DefaultV2",
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[after] if after is not None else None
            ),
        )
