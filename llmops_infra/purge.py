"""Purge on destroy: a deleted Azure OpenAI account is only soft-deleted, for 48 hours.

While soft-deleted it keeps its name and its model quota, so ``pulumi destroy``
followed by ``pulumi up`` in the same region fails. :class:`DeletedAccountPurge`
is a Pulumi dynamic resource that the account depends on: Pulumi deletes the
account first, then this resource, whose delete purges the soft-deleted
account through Azure Resource Manager (``DeletedAccounts_Purge``).

It purges only what it recorded at creation (subscription, group, region,
name), never anything found by listing. Pulumi pickles the provider into the
stack's state by reference (``llmops_infra.purge._PurgeProvider``), so it keeps
no state of its own and imports what it needs inside its methods; renaming or
moving that class would break ``pulumi destroy`` of stacks deployed before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

__all__ = [
    "PURGE_TYPE",
    "DeletedAccountPurge",
    "DeletedAccountPurgeArgs",
    "deleted_account_path",
    "purge_deleted_account",
]

#: The type token of :class:`DeletedAccountPurge`: ``pulumi-python:dynamic/<module>:<name>``.
PURGE_TYPE: Final = "pulumi-python:dynamic/llmops:DeletedAccountPurge"
_FIELDS: Final = ("subscription_id", "resource_group_name", "location", "account_name")
#: Tries while Azure answers 409: right after the account's deletion the soft-deleted
#: record may not be ready to purge yet.
_CONFLICT_TRIES: Final = 6


def deleted_account_path(
    subscription_id: str, resource_group_name: str, location: str, account_name: str
) -> str:
    """The ARM path of a soft-deleted Cognitive Services account (``DeletedAccounts_Get/Purge``)."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.CognitiveServices"
        f"/locations/{location}/resourceGroups/{resource_group_name}"
        f"/deletedAccounts/{account_name}"
    )


def purge_deleted_account(client: Any, state: dict[str, Any]) -> bool:
    """Purge the soft-deleted account ``state`` names; False when it was already gone (404).

    ``client`` is an :class:`llmops_infra.arm.ArmClient`. A conflict (409) is tried
    again for a while; a refusal (403) says which role purging needs; other
    failures keep Azure's own code and message.
    """
    from llmops_infra.arm import ArmError

    path = deleted_account_path(*(str(state[key]) for key in _FIELDS))
    by_hand = (
        f"az cognitiveservices account purge --name {state['account_name']} "
        f"--resource-group {state['resource_group_name']} --location {state['location']}"
    )
    delay = float(client.base_delay)
    for attempt in range(1, _CONFLICT_TRIES + 1):
        try:
            return bool(client.delete(path))
        except ArmError as err:
            if err.status == 409 and attempt < _CONFLICT_TRIES:
                client.sleep(delay)
                delay = min(delay * 2, float(client.max_delay))
                continue
            if err.status == 409:
                raise ArmError(
                    f"{err} (still in conflict after {attempt} tries). Run `pulumi destroy` "
                    f"again in a few minutes, or purge by hand: {by_hand}",
                    status=err.status,
                    code=err.code,
                ) from None
            if err.status == 403:
                raise ArmError(
                    f"{err}. Purging the deleted Azure OpenAI account {state['account_name']} "
                    "needs the permission Microsoft.CognitiveServices/locations/resourceGroups/"
                    "deletedAccounts/delete at subscription scope (the Cognitive Services "
                    "Contributor or Contributor role assigned on the subscription; on the "
                    f"resource group alone is not enough). Grant it, or purge by hand: {by_hand}; "
                    "or set llmops:purgeOnDestroy false to leave deleted accounts to Azure "
                    "(48 hours)",
                    status=err.status,
                    code=err.code,
                ) from None
            raise
    raise AssertionError("unreachable")  # pragma: no cover


class _PurgeProvider(ResourceProvider):
    """Create records the account's coordinates; delete purges that soft-deleted account."""

    serialize_as_secret_always = False  # holds nothing secret

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
        from llmops_infra.arm import ArmClient, default_credential

        purge_deleted_account(ArmClient(default_credential()), props)


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
