"""Purge on destroy: the provider against a fake Resource Manager, and its place in the stack."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_arm import TOKEN, Answer, FakeArm, FakeCredential, fake_arm
from pytest_mock import MockerFixture

from llmops_infra import arm, purge
from llmops_infra.arm import API_VERSION, ARM_ENDPOINT_ENV, ArmClient, ArmError
from llmops_infra.offline.engine import FAKE_SUBSCRIPTION_ID, ProgramRun
from llmops_infra.purge import PURGE_TYPE, DeletedAccountPurge, deleted_account_path

ACCOUNT = "azure-native:cognitiveservices:Account"
GROUP = "azure-native:resources:ResourceGroup"
STATE = {
    "subscription_id": "sub-1",
    "resource_group_name": "rg-llmops-dev-abc123",
    "location": "swedencentral",
    "account_name": "oai-llmops-dev-abc123",
}
PURGE_PATH = (
    "/subscriptions/sub-1/providers/Microsoft.CognitiveServices/locations/swedencentral"
    "/resourceGroups/rg-llmops-dev-abc123/deletedAccounts/oai-llmops-dev-abc123"
)


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, mocker: MockerFixture) -> Iterator[FakeArm]:
    """The fake ARM, found through LLMOPS_ARM_ENDPOINT; a fake credential; no real waiting."""
    with fake_arm() as fake:
        monkeypatch.setenv(ARM_ENDPOINT_ENV, fake.base)
        mocker.patch.object(arm, "default_credential", autospec=True, return_value=FakeCredential())
        mocker.patch.object(arm, "_sleep", autospec=True)
        yield fake


def provider() -> Any:
    """The provider exactly as Pulumi would run it: taken from a resource's class."""
    return purge._PurgeProvider()


def test_create_records_the_account_without_calling_azure(azure: FakeArm) -> None:
    result = provider().create({**STATE, "__provider": "pickled"})
    assert result.id == PURGE_PATH
    assert result.outs == STATE, "the state holds exactly the account to purge"
    assert azure.requests == [], "create makes no Azure call"


def test_diff_reports_no_change_for_equal_inputs_and_replaces_on_another_account() -> None:
    same = provider().diff(PURGE_PATH, {**STATE, "__provider": "a"}, {**STATE, "__provider": "b"})
    assert not same.changes, "equal inputs are no change"
    other = provider().diff(PURGE_PATH, STATE, {**STATE, "account_name": "oai-other"})
    assert other.changes and other.replaces == ["account_name"]


def test_delete_purges_with_the_documented_path_and_api_version(azure: FakeArm) -> None:
    azure.on("DELETE", PURGE_PATH, Answer(200))
    provider().delete(PURGE_PATH, STATE)
    [call] = azure.calls("DELETE", PURGE_PATH)
    assert call.query == {"api-version": [API_VERSION]}, "DeletedAccounts_Purge, stable API"
    assert API_VERSION == "2025-06-01"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"


def test_delete_polls_the_long_running_operation_to_its_end(azure: FakeArm) -> None:
    azure.on(
        "DELETE",
        PURGE_PATH,
        Answer(202, headers={"Azure-AsyncOperation": "{base}/ops/1?api-version=x"}),
    )
    azure.on(
        "GET",
        "/ops/1",
        Answer(200, {"status": "InProgress"}, {"Retry-After": "0"}),
        Answer(200, {"status": "InProgress"}),
        Answer(200, {"status": "Succeeded"}),
    )
    provider().delete(PURGE_PATH, STATE)
    assert len(azure.calls("GET", "/ops/1")) == 3, "polled until Succeeded"


def test_delete_follows_a_location_header_when_there_is_no_async_operation(
    azure: FakeArm,
) -> None:
    azure.on("DELETE", PURGE_PATH, Answer(202, headers={"Location": "{base}/loc/1"}))
    azure.on("GET", "/loc/1", Answer(202), Answer(204))
    provider().delete(PURGE_PATH, STATE)
    assert len(azure.calls("GET", "/loc/1")) == 2


def test_a_failed_operation_is_an_error_with_azures_message(azure: FakeArm) -> None:
    azure.on("DELETE", PURGE_PATH, Answer(202, headers={"Azure-AsyncOperation": "{base}/ops/2"}))
    azure.on(
        "GET",
        "/ops/2",
        Answer(200, {"status": "Failed", "error": {"code": "Conflict", "message": "busy"}}),
    )
    with pytest.raises(ArmError, match=r"Conflict: busy.*failed"):
        provider().delete(PURGE_PATH, STATE)


def test_already_gone_is_success(azure: FakeArm) -> None:
    azure.on("DELETE", PURGE_PATH, Answer(404, {"error": {"code": "ResourceNotFound"}}))
    provider().delete(PURGE_PATH, STATE)  # no error
    assert purge.purge_deleted_account(ArmClient(FakeCredential()), STATE) is False


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried(azure: FakeArm, status: int) -> None:
    azure.on(
        "DELETE",
        PURGE_PATH,
        Answer(status, {"error": {"code": "Busy"}}, {"Retry-After": "7"}),
        Answer(status),
        Answer(200),
    )
    provider().delete(PURGE_PATH, STATE)
    assert len(azure.calls("DELETE", PURGE_PATH)) == 3
    waits = [c.args[0] for c in arm._sleep.call_args_list]  # type: ignore[attr-defined]
    assert waits[0] == 7, "Retry-After is honoured"


def test_persistent_server_errors_give_up_with_the_status(azure: FakeArm) -> None:
    azure.on("DELETE", PURGE_PATH, Answer(500, {"error": {"code": "InternalError"}}))
    client = ArmClient(FakeCredential(), max_attempts=3, sleep=lambda _: None)
    with pytest.raises(ArmError, match=r"HTTP 500 InternalError \(still failing after 3 tries\)"):
        purge.purge_deleted_account(client, STATE)


def test_a_conflict_right_after_the_deletion_is_tried_again(azure: FakeArm) -> None:
    azure.on(
        "DELETE",
        PURGE_PATH,
        Answer(409, {"error": {"code": "RequestConflict", "message": "not ready"}}),
        Answer(409, {"error": {"code": "RequestConflict", "message": "not ready"}}),
        Answer(200),
    )
    provider().delete(PURGE_PATH, STATE)
    assert len(azure.calls("DELETE", PURGE_PATH)) == 3, "purged once the record was ready"


def test_a_lasting_conflict_says_to_destroy_again_or_purge_by_hand(azure: FakeArm) -> None:
    azure.on("DELETE", PURGE_PATH, Answer(409, {"error": {"code": "RequestConflict"}}))
    with pytest.raises(ArmError, match=r"HTTP 409 RequestConflict \(still in conflict") as caught:
        provider().delete(PURGE_PATH, STATE)
    assert "az cognitiveservices account purge --name oai-llmops-dev-abc123" in str(caught.value)
    assert len(azure.calls("DELETE", PURGE_PATH)) == purge._CONFLICT_TRIES


def test_forbidden_names_the_permission_and_the_manual_command(azure: FakeArm) -> None:
    azure.on(
        "DELETE",
        PURGE_PATH,
        Answer(403, {"error": {"code": "AuthorizationFailed", "message": "no access"}}),
    )
    with pytest.raises(ArmError) as caught:
        provider().delete(PURGE_PATH, STATE)
    message = str(caught.value)
    assert "HTTP 403 AuthorizationFailed: no access" in message
    assert "deletedAccounts/delete at subscription scope" in message and "Contributor" in message
    assert (
        "az cognitiveservices account purge --name oai-llmops-dev-abc123 "
        "--resource-group rg-llmops-dev-abc123 --location swedencentral"
    ) in message
    assert TOKEN not in message, "the token is never shown"
    assert len(azure.calls("DELETE", PURGE_PATH)) == 1, "a refusal is not retried"


def test_arm_service_principal_variables_become_a_client_secret_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    for name in ("ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_TENANT_ID"):
        monkeypatch.setenv(name, "11111111-1111-1111-1111-111111111111")
    assert isinstance(arm.default_credential(), ClientSecretCredential)
    monkeypatch.delenv("ARM_CLIENT_SECRET")
    assert isinstance(arm.default_credential(), DefaultAzureCredential)


def test_the_provider_pickles_by_reference_to_this_module() -> None:
    from pulumi.dynamic.dynamic import serialize_provider

    # Pulumi stores this in the state; the provider process imports llmops_infra.purge.
    assert len(serialize_provider(provider())) < 200, "no captured state, no closures"
    assert DeletedAccountPurge._resource_type_name == "dynamic/llmops:DeletedAccountPurge"
    assert f"pulumi-python:{DeletedAccountPurge._resource_type_name}" == PURGE_TYPE


# --- the resource in the stack, under the mocks -----------------------------------------------

Run = Callable[..., ProgramRun]


def test_the_account_depends_on_a_purge_of_exactly_itself(run: Run) -> None:
    stack = run()
    resource = stack.one(PURGE_TYPE)
    account = stack.one(ACCOUNT)
    assert resource.urn in account.dependencies, (
        "the account depends on the purge, so destroy deletes the account first"
    )
    inputs = resource.inputs
    assert inputs["account_name"] == account.inputs["accountName"] == account.outputs["name"]
    assert inputs["resource_group_name"] == account.inputs["resourceGroupName"]
    assert inputs["location"] == account.inputs["location"]
    assert inputs["subscription_id"] == FAKE_SUBSCRIPTION_ID
    assert resource.id == deleted_account_path(
        FAKE_SUBSCRIPTION_ID,
        stack.one(GROUP).outputs["name"],
        account.inputs["location"],
        account.outputs["name"],
    )


def test_purge_on_destroy_false_creates_no_purge(run: Run) -> None:
    stack = run({"llmops:purgeOnDestroy": "false"})
    assert stack.by_type(PURGE_TYPE) == [], "nothing would be purged"
    assert stack.by_type(ACCOUNT), "the account is still created"
