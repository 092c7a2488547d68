"""The lab's sections "Azure OpenAI リソースをプロビジョニングする" and
"必要なモデルをデプロイする".

One component: the Azure OpenAI account (Standard S0, custom subdomain), its
gpt-4o deployment at the lab's rate limit, and a key of the account as a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import cognitiveservices

__all__ = ["AzureOpenAI", "AzureOpenAIArgs"]


@dataclass(frozen=True)
class AzureOpenAIArgs:
    """What the lab's portal forms ask for, plus the names this stack chose."""

    resource_group_name: pulumi.Input[str]
    """[リソース グループ]: the lab's resource group."""
    location: pulumi.Input[str]
    """[リージョン]: the region drawn at random from the allowed ones."""
    account_name: pulumi.Input[str]
    """[名前]: globally unique; also the custom subdomain of the endpoint."""
    deployment_name: str
    """デプロイ名: the name the chat call passes as ``model``."""
    model_name: str
    """The model to deploy (gpt-4o)."""
    model_version: str | None
    """モデル バージョン: None keeps Azure's default version (the lab's choice)."""
    capacity: int
    """1 分あたりのトークン数のレート制限, in thousands (10 = 10K TPM)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource."""
    depends_on: tuple[pulumi.Resource, ...] = ()
    """Resources the account must be created after (and deleted before)."""


class AzureOpenAI(pulumi.ComponentResource):
    """An Azure OpenAI account with one model deployment, as the lab builds by hand."""

    account_name: pulumi.Output[str]
    """The account's name."""
    endpoint: pulumi.Output[str]
    """``https://<subdomain>.openai.azure.com/``."""
    api_key: pulumi.Output[str]
    """The account's first key, a Pulumi secret."""
    deployment_name: pulumi.Output[str]
    """The deployment's name, what the chat call passes as ``model``."""

    def __init__(
        self, name: str, args: AzureOpenAIArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:openai:AzureOpenAI", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

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
                public_network_access=cognitiveservices.PublicNetworkAccess.ENABLED,
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )

        deployment = cognitiveservices.Deployment(
            f"{name}-deployment",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            deployment_name=args.deployment_name,
            # デプロイの種類: Standard; capacity counts units of 1,000 tokens per minute.
            sku=cognitiveservices.SkuArgs(name="Standard", capacity=args.capacity),
            properties=cognitiveservices.DeploymentPropertiesArgs(
                model=cognitiveservices.DeploymentModelArgs(
                    format="OpenAI",
                    name=args.model_name,
                    # モデル バージョン: omitted means "use the default version".
                    version=args.model_version,
                ),
                # Follow the default version as Azure moves it, like the portal's default.
                version_upgrade_option=(
                    cognitiveservices.DeploymentModelVersionUpgradeOption.ONCE_NEW_DEFAULT_VERSION_AVAILABLE
                    if args.model_version is None
                    else cognitiveservices.DeploymentModelVersionUpgradeOption.NO_AUTO_UPGRADE
                ),
                # コンテンツ フィルター: 既定. Dynamic quota is never enabled here.
                rai_policy_name="Microsoft.DefaultV2",
            ),
            tags=dict(args.tags),
            opts=child,
        )

        keys = cognitiveservices.list_account_keys_output(
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[account]),
        )

        self.account_name = account.name
        self.endpoint = account.properties.apply(lambda p: p.endpoint)
        self.api_key = pulumi.Output.secret(keys.key1)
        self.deployment_name = deployment.name
        self.register_outputs(
            {
                "account_name": self.account_name,
                "endpoint": self.endpoint,
                "api_key": self.api_key,
                "deployment_name": self.deployment_name,
            }
        )
