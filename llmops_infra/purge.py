"""Purge on destroy: a deleted Azure OpenAI account is only soft-deleted, for 48 hours.

While soft-deleted it keeps its name and its model quota, so ``pulumi destroy``
followed by ``pulumi up`` in the same region fails. :class:`DeletedAccountPurge`
is a Pulumi dynamic resource that the account depends on: Pulumi deletes the
account first, then this resource, whose delete purges the soft-deleted
account through Azure Resource Manager (``DeletedAccounts_Purge``).

It purges only what it recorded at creation (subscription, group, region,
name), never anything found by listing. Pulumi pickles the provider into the
stack's state by reference (``llmops_infra.purge._PurgeProvider``), so it keeps
no state of its own and imports the Azure SDK only inside its methods; renaming
or moving that class would break ``pulumi destroy`` of stacks deployed before.
It signs in as the stack's azure-native provider does (see
:mod:`llmops_infra.azure_api.credentials`), reading that identity from the configuration
the engine hands it at each run, never storing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import pulumi
from pulumi.dynamic import ConfigureRequest, CreateResult, DiffResult, Resource, ResourceProvider

from llmops_infra.azure_api.clients import deleted_account_path

if TYPE_CHECKING:
    from llmops_infra.azure_api.clients import ArmSession

__all__ = [
    "PURGE_TYPE",
    "DeletedAccountPurge",
    "DeletedAccountPurgeArgs",
    "deleted_account_path",
    "purge_deleted_account",
    "purge_session",
]

#: The type token of :class:`DeletedAccountPurge`: ``pulumi-python:dynamic/<module>:<name>``.
PURGE_TYPE: Final = "pulumi-python:dynamic/llmops:DeletedAccountPurge"
_FIELDS: Final = ("subscription_id", "resource_group_name", "location", "account_name")
#: Tries while Azure answers 409: right after the account's deletion the soft-deleted
#: record may not be ready to purge yet. azure-core does not retry a 409 by itself; its
#: retry policy does when told, with its backoff (0, 4, 8, 16, 32 s: about a minute).
_CONFLICT_TRIES: Final = 6
_CONFLICT_RETRY: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "retry_on_status_codes": [409],
        "retry_status": _CONFLICT_TRIES - 1,
        "retry_backoff_factor": 2.0,
    }
)


def purge_session(
    subscription_id: str, config: Any = None, env: Mapping[str, str] | None = None
) -> ArmSession:
    """A Resource Manager session for the purge: azure-core's retries, 409 included.

    ``config(key)`` reads the stack's configuration (``azure-native:clientId`` ...),
    as the engine hands it to the provider (see
    :func:`llmops_infra.azure_api.credentials.credential`).
    """
    from llmops_infra.azure_api.clients import ArmSession
    from llmops_infra.azure_api.credentials import credential

    return ArmSession(subscription_id, credential(config, env), **_CONFLICT_RETRY)


def purge_deleted_account(session: ArmSession, state: Mapping[str, Any]) -> bool:
    """Purge the soft-deleted account ``state`` names; False when it was already gone (404).

    A lasting conflict (409) says to destroy again or purge by hand; a refusal (403)
    says which permission purging needs; other failures keep Azure's own code and message.
    """
    from llmops_infra.azure_api.clients import ArmError, purge_command

    name, group, location = (
        str(state["account_name"]),
        str(state["resource_group_name"]),
        str(state["location"]),
    )
    by_hand = purge_command(name, group, location)
    try:
        return session.purge(location, group, name)
    except ArmError as err:
        if err.status == 409:
            raise ArmError(
                f"{err} (still in conflict after {_CONFLICT_TRIES} tries). Run `pulumi destroy` "
                f"again in a few minutes, or purge by hand: {by_hand}",
                status=err.status,
                code=err.code,
            ) from None
        if err.status == 403:
            raise ArmError(
                f"{err}. Purging the deleted Azure OpenAI account {name} needs the permission "
                "Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete at "
                "subscription scope (the Cognitive Services Contributor or Contributor role "
                "assigned on the subscription; on the resource group alone is not enough). "
                f"Grant it, or purge by hand: {by_hand}; or set llmops:purgeOnDestroy false to "
                "leave deleted accounts to Azure (48 hours)",
                status=err.status,
                code=err.code,
            ) from None
        raise


class _PurgeProvider(ResourceProvider):
    """Create records the account's coordinates; delete purges that soft-deleted account.

    Stacks hold this class pickled by reference, with no instance state: keep its
    name, its module and its empty ``__init__``. The identity to purge with arrives
    through :meth:`configure` in the provider's process, each time, and is kept in
    memory only (never in the state, so no secret is stored and old stacks get it too).
    """

    serialize_as_secret_always = False  # holds nothing secret
    _config: Mapping[str, Any] = MappingProxyType({})
    """What :meth:`configure` kept: the azure-native identity settings, by key."""

    def configure(self, req: ConfigureRequest) -> None:
        from llmops_infra.azure_api.credentials import identity_keys

        # Only the identity settings; the stack's other values (and secrets) are not kept.
        found = {key: req.config.get(key) for key in identity_keys()}
        self._config = {key: value for key, value in found.items() if value is not None}

    def create(self, props: dict[str, Any]) -> CreateResult:
        state = {key: str(props[key]) for key in _FIELDS}
        return CreateResult(deleted_account_path(*state.values()), state)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in _FIELDS if olds.get(key) != news.get(key)]
        # Another account means another resource; purge the old one's record first.
        return DiffResult(
            changes=bool(changed), replaces=changed, delete_before_replace=bool(changed)
        )

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with purge_session(str(props["subscription_id"]), self._config.get) as session:
            purge_deleted_account(session, props)


@dataclass(frozen=True)
class DeletedAccountPurgeArgs:
    """The account to purge after it is deleted: exactly the one this stack creates."""

    subscription_id: pulumi.Input[str]
    """The subscription the account lives in."""
    resource_group_name: pulumi.Input[str]
    """The account's resource group."""
    location: pulumi.Input[str]
    """The account's region: soft-deleted accounts are kept per region."""
    account_name: pulumi.Input[str]
    """The account's name."""


class DeletedAccountPurge(Resource, module="llmops", name="DeletedAccountPurge"):
    """Purges the named Azure OpenAI account from the soft-deleted ones when Pulumi deletes this.

    Make the account depend on it, so Pulumi deletes the account first.
    """

    subscription_id: pulumi.Output[str]
    resource_group_name: pulumi.Output[str]
    location: pulumi.Output[str]
    account_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: DeletedAccountPurgeArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            _PurgeProvider(),
            name,
            {
                "subscription_id": args.subscription_id,
                "resource_group_name": args.resource_group_name,
                "location": args.location,
                "account_name": args.account_name,
            },
            opts,
        )
