"""Into an existing estate: a resource group and a Databricks workspace the stack only uses.

``llmops:resourceGroupName`` names a group the stack builds in and
``llmops:workspaceResourceId`` a workspace it builds the lab's workspace side in;
neither is ever a resource of the stack, so ``pulumi destroy`` cannot delete them.
Both are looked up with plain (awaited) invokes before anything is registered: a
group or workspace that does not exist, or a workspace that cannot hold the lab,
stops the program with one line naming the key, and nothing has been created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import pulumi
from pulumi_azure_native import databricks as azure_databricks
from pulumi_azure_native import resources

from llmops_infra.stack.config import WORKSPACE_ID, LlmopsConfig
from llmops_infra.stack.region_features import (
    FEATURE_LABELS,
    feature_keys,
    missing_features,
    needed_features,
)
from workload.errors import first_line

__all__ = [
    "FoundWorkspace",
    "look_up_group",
    "look_up_workspace",
    "network_refusal",
    "workspace_problem",
]

_INVALID: Final = "invalid stack configuration: "
#: Azure Resource Manager's error codes for a group or resource that does not exist.
_NOT_FOUND: Final = ("ResourceGroupNotFound", "ResourceNotFound", "NotFound")
#: Azure's error code as azure-native reports it (azcore's ``ERROR CODE: X``, the older
#: autorest ``Code="X"``, or the response body's ``"code": "X"``).
_ARM_CODE: Final = re.compile(r'ERROR CODE: (\w+)|Code="(\w+)"|"code":\s*"(\w+)"')


@dataclass(frozen=True)
class FoundWorkspace:
    """The existing workspace as Azure describes it; None where the lookup could not say
    (the offline plan, which cannot reach Azure: those values are known after ``up``)."""

    resource_id: str
    """The configured id (``llmops:workspaceResourceId``)."""
    found_id: str | None
    """The id Azure answered with, in the stack's subscription."""
    location: str | None
    """Its region, as ``az account list-locations`` names it (``eastus2``)."""
    url: str | None
    """``https://adb-<id>.<n>.azuredatabricks.net``."""
    sku: str | None
    """Its pricing tier: ``premium``, ``trial`` or ``standard``."""
    compute_mode: str | None
    """``Hybrid`` (classic compute and serverless) or ``Serverless`` (serverless only)."""

    def region(self) -> pulumi.Output[str]:
        """Its region, for the resources the stack creates beside it."""
        return _known_after_up(self.location)

    def workspace_url(self) -> pulumi.Output[str]:
        """Its URL, for the Databricks provider."""
        return _known_after_up(self.url)


def _known_after_up(value: str | None) -> pulumi.Output[str]:
    """``value``; an unknown output where the lookup could not say (the offline plan)."""
    if value is not None:
        return pulumi.Output.from_input(value)
    return pulumi.Output.from_input(pulumi.UNKNOWN)  # type: ignore[arg-type]


def _arm_code(err: BaseException) -> str | None:
    match = _ARM_CODE.search(str(err))
    return next((group for group in match.groups() if group), None) if match else None


def _lookup_failure(key: str, value: str, what: str, err: BaseException) -> pulumi.RunError:
    """One line for a lookup Azure refused: the key, the value, what to do; never the whole
    provider error."""
    code = _arm_code(err)
    if code in _NOT_FOUND:
        return pulumi.RunError(
            f"{_INVALID}llmops:{key} = {value!r}: no such {what} in the subscription the "
            "stack deploys to (azure-native:subscriptionId, else the Azure CLI's): name an "
            f"existing one, or leave llmops:{key} unset for the stack to make its own"
        )
    if code == "AuthorizationFailed":
        return pulumi.RunError(
            f"llmops:{key} = {value!r}: the deploying identity may not read that {what} "
            "(AuthorizationFailed): it needs at least Reader on it (docs/estate.md lists "
            "the roles)"
        )
    return pulumi.RunError(
        f"llmops:{key} = {value!r}: the {what} could not be looked up ({code or first_line(err)})"
    )


def look_up_group(name: str) -> None:
    """Check that the resource group exists (a plain invoke: before anything is registered)."""
    try:
        resources.get_resource_group(resource_group_name=name)
    except Exception as err:  # the SDK raises a bare Exception for a failed invoke
        raise _lookup_failure("resourceGroupName", name, "resource group", err) from None


def _region(value: object) -> str | None:
    """ARM's location as ``az account list-locations`` names it ("East US 2" -> eastus2)."""
    return str(value).replace(" ", "").lower() if value else None


def look_up_workspace(resource_id: str) -> FoundWorkspace:
    """The existing workspace (a plain invoke: before anything is registered)."""
    parts = WORKSPACE_ID.fullmatch(resource_id)
    if parts is None:  # config.py's rule checks the shape first
        raise pulumi.RunError(f"{_INVALID}llmops:workspaceResourceId = {resource_id!r}")
    try:
        found = azure_databricks.get_workspace(
            resource_group_name=parts["group"], workspace_name=parts["name"]
        )
    except Exception as err:  # the SDK raises a bare Exception for a failed invoke
        raise _lookup_failure("workspaceResourceId", resource_id, "workspace", err) from None
    return FoundWorkspace(
        resource_id=resource_id,
        found_id=found.id or None,
        location=_region(found.location),
        url=f"https://{found.workspace_url}" if found.workspace_url else None,
        sku=str(found.sku.name).lower() if found.sku and found.sku.name else None,
        compute_mode=found.compute_mode or None,
    )


def network_refusal(workspace_resource_id: str | None, network: str) -> str | None:
    """Why an existing workspace cannot go with ``network``, or None when it can."""
    if workspace_resource_id is None or network != "private":
        return None
    return (
        f"{_INVALID}llmops:workspaceResourceId with llmops:network private: an existing "
        "workspace cannot be moved into the new virtual network private mode makes (Azure "
        "injects a workspace into a network only when it is created); leave "
        "workspaceResourceId unset for a new private workspace, or set network public"
    )


def workspace_problem(config: LlmopsConfig, found: FoundWorkspace) -> str | None:
    """Why the existing workspace cannot hold this stack, in one line, or None when it can.

    A value the lookup could not give (the offline plan) is not held against it: ``up``
    checks it.
    """
    key = f"llmops:workspaceResourceId = {found.resource_id!r}"
    if found.found_id is not None and found.found_id.lower() != found.resource_id.lower():
        return (
            f"{_INVALID}{key}: the stack's subscription holds {found.found_id} instead; the "
            "workspace must be in the subscription the stack deploys to "
            "(azure-native:subscriptionId)"
        )
    region = found.location
    if region is not None and region not in config.allowed_regions:
        return (
            f"{_INVALID}{key} is in {region}, which llmops:allowedRegions "
            f"({', '.join(config.allowed_regions)}) does not list: the account goes to the "
            f"workspace's region, so add {region} to llmops:allowedRegions (if Azure OpenAI "
            "offers the model there) or use a workspace in an allowed region"
        )
    if region is not None and config.region is not None and config.region != region:
        return (
            f"{_INVALID}llmops:region = {config.region!r} differs from the region of the "
            f"existing workspace ({key}), {region}: the stack goes to the workspace's "
            f"region; leave llmops:region unset (or set it to {region})"
        )
    if found.sku == "standard":
        return (
            f"{_INVALID}{key} is a Standard workspace, which cannot hold the lab (it needs "
            "Premium, as llmops:workspaceSku allows premium or trial): upgrade it to Premium "
            "or name a Premium or Trial workspace"
        )
    if found.compute_mode == "Serverless" and config.compute == "cluster":
        return (
            f"{_INVALID}{key} is a serverless workspace, which has no classic compute for "
            "the lab's cluster: set llmops:compute serverless, or name a Hybrid workspace"
        )
    lacks = missing_features(region, needed_features(config)) if region is not None else ()
    if lacks:
        keys = feature_keys(config)
        needs = sorted({keys[feature] for feature in lacks})
        return (
            f"{_INVALID}{key} is in {region}, which does not offer "
            f"{', '.join(FEATURE_LABELS[f] for f in lacks)} on Azure Databricks, which "
            f"{' and '.join(needs)} {'needs' if len(needs) == 1 else 'need'} (the table of "
            "features by region, with its sources: llmops_infra/stack/region_features.py): "
            "turn the option off, or use a workspace in a region that offers it"
        )
    return None
