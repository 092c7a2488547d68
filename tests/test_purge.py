"""Purge on destroy: the provider against a fake Resource Manager, and its place in the stack."""

from __future__ import annotations

import base64
import gc
import logging
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import dill
import pytest
from azure.core.pipeline.transport import RequestsTransport
from fake_arm import TOKEN, Answer, FakeArm, FakeCredential, fake_arm
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider
from pytest_mock import MockerFixture

from llmops_infra import purge
from llmops_infra.azure_api.clients import ARM_ENDPOINT_ENV, ArmError
from llmops_infra.azure_api.credentials import ARM_TOKEN_ENV
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
#: ``serialize_provider(_PurgeProvider())`` as stacks deployed before the SDK client hold it
#: in their state (``__provider``): made with pulumi 3.272's own function from the class as it
#: was, kept here as data. It must load, and purge, for good.
OLD_PICKLE = "gASVLAAAAAAAAACMEmxsbW9wc19pbmZyYS5wdXJnZZSMDl9QdXJnZVByb3ZpZGVylJOUKYGULg=="
SECRET = "sp-secret-value-never-shown"
IDENTITY_ENV = (
    ARM_TOKEN_ENV,
    "ARM_CLIENT_ID",
    "ARM_CLIENT_SECRET",
    "ARM_TENANT_ID",
    "ARM_USE_OIDC",
    "ARM_OIDC_TOKEN",
    "ARM_OIDC_TOKEN_FILE_PATH",
    "ARM_USE_MSI",
    "ARM_OIDC_REQUEST_TOKEN",
    "ARM_OIDC_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
)


@pytest.fixture
def waits(mocker: MockerFixture) -> list[float]:
    """azure-core's own waits (retries, polling), recorded instead of slept."""
    slept: list[float] = []
    mocker.patch.object(
        RequestsTransport, "sleep", autospec=True, side_effect=lambda _self, s: slept.append(s)
    )
    return slept


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, waits: list[float]) -> Iterator[FakeArm]:
    """The fake ARM, found through LLMOPS_ARM_ENDPOINT and signed with LLMOPS_ARM_TOKEN."""
    with fake_arm() as fake:
        for name in IDENTITY_ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(ARM_ENDPOINT_ENV, fake.base)
        monkeypatch.setenv(ARM_TOKEN_ENV, TOKEN)
        yield fake


def provider() -> Any:
    """The provider as the engine runs it: unpickled from the state, then configured."""
    loaded = dill.loads(base64.b64decode(serialize_provider(purge._PurgeProvider())))
    loaded.configure(ConfigureRequest(Config({}, "llmops-databricks")))
    return loaded


def conflict(message: str = "not ready") -> Answer:
    return Answer(409, {"error": {"code": "RequestConflict", "message": message}})


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


def test_delete_purges_the_recorded_account_through_the_sdk(azure: FakeArm) -> None:
    azure.on("DELETE", PURGE_PATH, Answer(200))
    provider().delete(PURGE_PATH, STATE)
    [call] = azure.calls("DELETE", PURGE_PATH)
    # The SDK's own DeletedAccounts_Purge path is the one the state holds as the id.
    assert call.path == deleted_account_path(*STATE.values())
    assert call.query == {"api-version": ["2025-09-01"]}, "azure-mgmt-cognitiveservices 14.1"
    assert call.headers["authorization"] == f"Bearer {TOKEN}", "LLMOPS_ARM_TOKEN, over http"


def test_delete_polls_the_long_running_operation_to_its_end(
    azure: FakeArm, waits: list[float]
) -> None:
    azure.on(
        "DELETE",
        PURGE_PATH,
        Answer(202, headers={"Azure-AsyncOperation": "{base}/ops/1?api-version=x"}),
    )
    azure.on(
        "GET",
        "/ops/1",
        Answer(200, {"status": "InProgress"}, {"Retry-After": "3"}),
        Answer(200, {"status": "InProgress"}),
        Answer(200, {"status": "Succeeded"}),
    )
    provider().delete(PURGE_PATH, STATE)
    assert len(azure.calls("GET", "/ops/1")) == 3, "polled until Succeeded"
    assert 3 in waits, "the operation's Retry-After sets the next poll"


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
    with pytest.raises(ArmError, match=r"the operation failed in Azure: Conflict: busy$"):
        provider().delete(PURGE_PATH, STATE)


def test_already_gone_is_success(azure: FakeArm) -> None:
    azure.on("DELETE", PURGE_PATH, Answer(404, {"error": {"code": "ResourceNotFound"}}))
    provider().delete(PURGE_PATH, STATE)  # no error
    with purge.purge_session("sub-1") as session:
        assert purge.purge_deleted_account(session, STATE) is False
        azure.on("DELETE", PURGE_PATH, Answer(200))
        assert purge.purge_deleted_account(session, STATE) is True


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried(
    azure: FakeArm, waits: list[float], status: int
) -> None:
    azure.on(
        "DELETE",
        PURGE_PATH,
        Answer(status, {"error": {"code": "Busy"}}, {"Retry-After": "7"}),
        Answer(status),
        Answer(200),
    )
    provider().delete(PURGE_PATH, STATE)
    assert len(azure.calls("DELETE", PURGE_PATH)) == 3
    assert waits[0] == 7, "Retry-After is honoured"


def test_persistent_server_errors_give_up_with_the_status(azure: FakeArm) -> None:
    azure.on("DELETE", PURGE_PATH, Answer(500, {"error": {"code": "InternalError"}}))
    with pytest.raises(ArmError, match=r"HTTP 500 InternalError$"):
        provider().delete(PURGE_PATH, STATE)
    assert len(azure.calls("DELETE", PURGE_PATH)) == purge._CONFLICT_TRIES


def test_a_conflict_right_after_the_deletion_is_tried_again(
    azure: FakeArm, waits: list[float]
) -> None:
    azure.on("DELETE", PURGE_PATH, conflict(), conflict(), Answer(200))
    provider().delete(PURGE_PATH, STATE)
    assert len(azure.calls("DELETE", PURGE_PATH)) == 3, "purged once the record was ready"
    assert waits == [4.0], "azure-core's backoff: the first retry at once, then 4 s"


def test_a_lasting_conflict_says_to_destroy_again_or_purge_by_hand(
    azure: FakeArm, waits: list[float]
) -> None:
    azure.on("DELETE", PURGE_PATH, conflict())
    with pytest.raises(ArmError) as caught:
        provider().delete(PURGE_PATH, STATE)
    message = str(caught.value)
    assert message == (
        "cannot purge the deleted account oai-llmops-dev-abc123: HTTP 409 RequestConflict: "
        "not ready (still in conflict after 6 tries). Run `pulumi destroy` again in a few "
        "minutes, or purge by hand: az cognitiveservices account purge --name "
        "oai-llmops-dev-abc123 --resource-group rg-llmops-dev-abc123 --location swedencentral"
    )
    assert len(azure.calls("DELETE", PURGE_PATH)) == purge._CONFLICT_TRIES == 6
    assert sum(waits) == 60, "about a minute for the soft-deleted record to be ready"
    gc.collect()  # an answer left open would warn here (warnings are errors)


def test_forbidden_names_the_permission_and_the_manual_command(azure: FakeArm) -> None:
    azure.on(
        "DELETE",
        PURGE_PATH,
        Answer(403, {"error": {"code": "AuthorizationFailed", "message": "no access"}}),
    )
    with pytest.raises(ArmError) as caught:
        provider().delete(PURGE_PATH, STATE)
    message = str(caught.value)
    assert "HTTP 403 AuthorizationFailed: no access." in message
    assert "deletedAccounts/delete at subscription scope" in message and "Contributor" in message
    assert (
        "az cognitiveservices account purge --name oai-llmops-dev-abc123 "
        "--resource-group rg-llmops-dev-abc123 --location swedencentral"
    ) in message
    assert "\n" not in message, "one line"
    assert TOKEN not in message, "the token is never shown"
    assert len(azure.calls("DELETE", PURGE_PATH)) == 1, "a refusal is not retried"


# --- the identity: the engine's configuration, never the state --------------------------------


class _RecordingSecretCredential(FakeCredential):
    """Stands in for azure-identity's ClientSecretCredential; keeps what it was given."""

    made: ClassVar[list[tuple[str, str, str]]] = []

    def __init__(self, tenant_id: str, client_id: str, client_secret: str, **_: Any) -> None:
        super().__init__()
        self.made.append((tenant_id, client_id, client_secret))


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch, mocker: MockerFixture) -> type[FakeCredential]:
    """No LLMOPS_ARM_TOKEN: the identity comes from configuration or ARM_*; AAD is faked."""
    from azure import identity

    monkeypatch.delenv(ARM_TOKEN_ENV, raising=False)
    _RecordingSecretCredential.made = []
    mocker.patch.object(identity, "ClientSecretCredential", _RecordingSecretCredential)
    mocker.patch.object(
        identity, "DefaultAzureCredential", side_effect=AssertionError("not this one")
    )
    return _RecordingSecretCredential


def configured(config: dict[str, str]) -> Any:
    """The old pickle, loaded and configured as the engine does at each destroy."""
    loaded = dill.loads(base64.b64decode(OLD_PICKLE))
    loaded.configure(ConfigureRequest(Config(config, "llmops-databricks")))
    return loaded


SP_CONFIG = {
    "azure-native:clientId": "app-1",
    "azure-native:clientSecret": SECRET,
    "azure-native:tenantId": "tenant-1",
    "azure-native:subscriptionId": "sub-1",
    "llmops:region": "swedencentral",
}


def test_a_provider_pickled_the_old_way_still_loads_and_purges(
    azure: FakeArm, no_token: type[_RecordingSecretCredential], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    loaded = configured(SP_CONFIG)
    assert type(loaded) is purge._PurgeProvider
    azure.on("DELETE", PURGE_PATH, Answer(200))
    loaded.delete(PURGE_PATH, STATE)
    assert no_token.made == [("tenant-1", "app-1", SECRET)], "the stack's service principal"
    [call] = azure.calls("DELETE", PURGE_PATH)
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    azure.on("DELETE", PURGE_PATH, Answer(403, {"error": {"code": "AuthorizationFailed"}}))
    with pytest.raises(ArmError) as caught:
        loaded.delete(PURGE_PATH, STATE)
    assert SECRET not in str(caught.value) and TOKEN not in str(caught.value)
    assert SECRET not in caplog.text and TOKEN not in caplog.text, "nothing secret is logged"


def test_the_provider_pickle_is_unchanged_and_holds_no_identity() -> None:
    # Today's class still pickles to the bytes old stacks hold: nothing new in the state.
    assert serialize_provider(purge._PurgeProvider()) == OLD_PICKLE
    loaded = configured(SP_CONFIG)
    assert serialize_provider(purge._PurgeProvider()) == OLD_PICKLE, "configure is per object"
    assert loaded._config == {
        "azure-native:clientId": "app-1",
        "azure-native:clientSecret": SECRET,
        "azure-native:tenantId": "tenant-1",
    }, "only the identity settings are kept, in the provider process's memory"


def test_without_configuration_the_arm_variables_sign_in(
    azure: FakeArm, no_token: type[_RecordingSecretCredential], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("ARM_CLIENT_ID", "env-app"), ("ARM_TENANT_ID", "env-tenant")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ARM_CLIENT_SECRET", SECRET)
    azure.on("DELETE", PURGE_PATH, Answer(200))
    configured({}).delete(PURGE_PATH, STATE)
    configured(SP_CONFIG).delete(PURGE_PATH, STATE)
    assert no_token.made == [("env-tenant", "env-app", SECRET), ("tenant-1", "app-1", SECRET)], (
        "ARM_* when the stack has no identity; the stack's own when it has one"
    )


@pytest.fixture
def assertions(mocker: MockerFixture) -> list[tuple[str, str, str]]:
    """Stands in for azure-identity's ClientAssertionCredential; asks for the assertion once."""
    from azure import identity

    made: list[tuple[str, str, str]] = []

    class Assertion(FakeCredential):
        def __init__(self, tenant_id: str, client_id: str, func: Callable[[], str]) -> None:
            super().__init__()
            made.append((tenant_id, client_id, func()))

    mocker.patch.object(identity, "ClientAssertionCredential", Assertion)
    return made


OIDC = {
    "azure-native:clientId": "app-1",
    "azure-native:tenantId": "tenant-1",
    "azure-native:useOidc": "true",
}


def test_oidc_federation_with_a_token_file_from_the_stack_configuration(
    azure: FakeArm,
    no_token: type[_RecordingSecretCredential],
    assertions: list[tuple[str, str, str]],
    tmp_path: Any,
) -> None:
    token_file = tmp_path / "oidc"
    token_file.write_text("federated-jwt\n")
    azure.on("DELETE", PURGE_PATH, Answer(200))
    configured({**OIDC, "azure-native:oidcTokenFilePath": str(token_file)}).delete(
        PURGE_PATH, STATE
    )
    assert assertions == [("tenant-1", "app-1", "federated-jwt")]
    assert no_token.made == [], "no client secret involved"


def test_a_missing_token_file_is_one_line_and_nothing_is_sent(
    azure: FakeArm, no_token: type[_RecordingSecretCredential], tmp_path: Any
) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(ArmError, match=r"^no usable Azure credentials: .*cannot read the OIDC "):
        configured({**OIDC, "azure-native:oidcTokenFilePath": str(missing)}).delete(
            PURGE_PATH, STATE
        )
    assert azure.requests == []


def test_oidc_federation_asks_the_ci_runner_for_its_token(
    azure: FakeArm,
    no_token: type[_RecordingSecretCredential],
    assertions: list[tuple[str, str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GitHub Actions' variables; the runner's endpoint is played by the fake server.
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{azure.base}/runner?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-bearer")
    azure.on("GET", "/runner", Answer(200, {"count": 1, "value": "runner-jwt"}))
    azure.on("DELETE", PURGE_PATH, Answer(200))
    configured(OIDC).delete(PURGE_PATH, STATE)
    assert assertions == [("tenant-1", "app-1", "runner-jwt")]
    [asked] = azure.calls("GET", "/runner")
    assert asked.query == {"api-version": ["2.0"], "audience": ["api://AzureADTokenExchange"]}
    assert asked.headers["authorization"] == "Bearer runner-bearer"


def test_a_failing_token_request_is_one_line_without_the_runners_token(
    azure: FakeArm, no_token: type[_RecordingSecretCredential], monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure import identity

    def assertion(tenant_id: str, client_id: str, func: Callable[[], str]) -> FakeCredential:
        fake = FakeCredential()
        fake.get_token = lambda *scopes, **kwargs: (_ for _ in ()).throw(  # type: ignore[method-assign]
            identity.CredentialUnavailableError(func())
        )
        return fake

    monkeypatch.setattr(identity, "ClientAssertionCredential", assertion)
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{azure.base}/runner?secret=q")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-bearer")
    azure.on("GET", "/runner", Answer(403, {"message": "no"}))
    with pytest.raises(ArmError) as caught:
        configured(OIDC).delete(PURGE_PATH, STATE)
    message = str(caught.value)
    assert message.startswith("no usable Azure credentials"), message
    assert "cannot get an OIDC token from 127.0.0.1 (HTTP Error 403" in message
    assert "runner-bearer" not in message and "secret=q" not in message
    assert azure.calls("DELETE", PURGE_PATH) == [], "nothing sent unsigned"


def test_the_provider_pickles_by_reference_to_this_module() -> None:
    # Pulumi stores this in the state; the provider process imports llmops_infra.purge.
    assert len(serialize_provider(purge._PurgeProvider())) < 200, "no captured state, no closures"
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
