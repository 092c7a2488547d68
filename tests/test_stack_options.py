"""The stack's options under the offline engine: judge deployment, keyless mode, eval job,
the deploying identity, the preview's empty lookups, and a second `up` that changes nothing."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import Run

from llmops_infra.offline.engine import ProgramFailed, ProgramRun, Secret, World, is_unknown
from llmops_infra.offline.resource_types import VSCODE_CLIENT_ID
from llmops_infra.stack.azure_identity import principal_type_of_token

ACCOUNT = "azure-native:cognitiveservices:Account"
DEPLOYMENT = "azure-native:cognitiveservices:Deployment"
ROLE = "azure-native:authorization:RoleAssignment"
CONNECTOR = "azure-native:databricks:AccessConnector"
CREDENTIAL = "databricks:index/credential:Credential"
CLUSTER = "databricks:index/cluster:Cluster"
SCOPE = "databricks:index/secretScope:SecretScope"
SECRET = "databricks:index/secret:Secret"
JOB = "databricks:index/job:Job"
FILE = "databricks:index/workspaceFile:WorkspaceFile"
PROVIDER = "pulumi:providers:databricks"
OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"

EVERY_OPTION = {
    "region": "swedencentral",
    "modelVersion": "2024-11-20",
    "capacity": "20",
    "judgeModel": "gpt-4o-mini",
    "judgeModelVersion": "2024-07-18",
    "judgeCapacity": "30",
    "authMode": "entra",
    "workspaceSku": "trial",
    "autoterminationMinutes": "60",
    "purgeOnDestroy": "false",
    "clusterNoWait": "true",
    "tags": '{"owner": "ml-team"}',
    "experimentPath": "/Users/me@example.com/lab",
}


def _deployment(run: ProgramRun, name: str) -> dict:
    return next(r for r in run.by_type(DEPLOYMENT) if r.inputs["deploymentName"] == name).inputs


# --- the judge deployment -----------------------------------------------------------------------


def test_no_judge_deployment_by_default(dev: ProgramRun) -> None:
    assert [r.inputs["deploymentName"] for r in dev.by_type(DEPLOYMENT)] == ["gpt-4o"]
    assert dev.exports["openai_judge_deployment"].value == ""
    assert dev.exports["openai_judge_tokens_per_minute"].value == 0
    assert dev.exports["openai_tokens_per_minute"].value == 10000


def test_judge_deployment_is_standard_filtered_and_waits_for_the_chat_deployment(run: Run) -> None:
    result = run({"judgeModel": "gpt-4o-mini", "judgeCapacity": "30"})
    judge = _deployment(result, "gpt-4o-mini")
    assert judge["sku"] == {"name": "Standard", "capacity": 30}
    assert judge["properties"]["model"] == {"format": "OpenAI", "name": "gpt-4o-mini"}
    assert judge["properties"]["raiPolicyName"] == "Microsoft.DefaultV2"
    assert judge["properties"]["versionUpgradeOption"] == "OnceNewDefaultVersionAvailable"
    assert "dynamicThrottlingEnabled" not in judge["properties"]
    chat = next(r for r in result.by_type(DEPLOYMENT) if r.inputs["deploymentName"] == "gpt-4o")
    judge_resource = next(
        r for r in result.by_type(DEPLOYMENT) if r.name.endswith("judge-deployment")
    )
    # As the engine records it: two operations on one account never run at once.
    assert chat.urn in judge_resource.dependencies, "the judge deployment waits for the chat one"
    assert judge_resource.urn not in chat.dependencies
    assert result.exports["openai_judge_deployment"].value == "gpt-4o-mini"
    assert result.exports["openai_judge_tokens_per_minute"].value == 30000
    env = result.one(CLUSTER).inputs["sparkEnvVars"]
    assert env["LLMOPS_JUDGE_DEPLOYMENT"] == "gpt-4o-mini"
    assert env["LLMOPS_JUDGE_TOKENS_PER_MINUTE"] == "30000"


def test_a_pinned_judge_version_does_not_follow_the_default(run: Run) -> None:
    judge = _deployment(
        run({"judgeModel": "gpt-4o-mini", "judgeModelVersion": "2024-07-18"}), "gpt-4o-mini"
    )
    assert judge["properties"]["model"]["version"] == "2024-07-18"
    assert judge["properties"]["versionUpgradeOption"] == "NoAutoUpgrade"


def test_a_judge_named_like_the_chat_deployment_is_refused_before_anything(run: Run) -> None:
    with pytest.raises(ProgramFailed, match=r"llmops:judgeModel = 'gpt-4o'.*deploymentName") as err:
        run({"judgeModel": "gpt-4o"})
    assert err.value.registered == 0


# --- keyless mode -------------------------------------------------------------------------------


def test_key_mode_lists_a_key_keeps_it_secret_and_says_key_access_is_on(dev: ProgramRun) -> None:
    account = dev.one(ACCOUNT).inputs
    assert account["properties"]["disableLocalAuth"] is False, "stated, not left out"
    assert [i.token for i in dev.invokes].count(
        "azure-native:cognitiveservices:listAccountKeys"
    ) == 1
    assert dev.exports["openai_api_key"].secret
    assert isinstance(dev.one(SECRET).inputs["stringValue"], Secret)
    assert dev.exports["openai_auth_mode"].value == "key"
    assert dev.exports["databricks_service_credential"].value == ""
    assert not dev.by_type(ROLE) and not dev.by_type(CONNECTOR) and not dev.by_type(CREDENTIAL)


@pytest.fixture(scope="module")
def keyless(run: Run) -> ProgramRun:
    return run({"authMode": "entra"})


def test_keyless_account_has_local_auth_disabled_and_no_key_anywhere(keyless: ProgramRun) -> None:
    assert keyless.one(ACCOUNT).inputs["properties"]["disableLocalAuth"] is True
    assert "azure-native:cognitiveservices:listAccountKeys" not in [
        i.token for i in keyless.invokes
    ]
    assert not keyless.by_type(SCOPE) and not keyless.by_type(SECRET), "no scope, no secret"
    assert "openai_api_key" not in keyless.exports
    assert "databricks_secret_scope" not in keyless.exports
    assert keyless.exports["openai_auth_mode"].value == "entra"
    assert not any(export.secret for export in keyless.exports.values()), "nothing secret at all"


def test_keyless_roles_give_the_deployer_and_the_connector_openai_user_on_the_account(
    keyless: ProgramRun,
) -> None:
    account_id = keyless.one(ACCOUNT).id
    roles = {r.name: r.inputs for r in keyless.by_type(ROLE)}
    assert set(roles) == {"openai-deployer-openai-user", "databricks-credential-openai-user"}
    for inputs in roles.values():
        assert inputs["roleDefinitionId"] == (
            "/subscriptions/00000000-0000-0000-0000-000000000000/providers/"
            f"Microsoft.Authorization/roleDefinitions/{OPENAI_USER}"
        ), "Cognitive Services OpenAI User"
        assert inputs["scope"] == account_id, "on the account, nothing wider"
    deployer = roles["openai-deployer-openai-user"]
    # The client configuration (az login): the CLI's application id, so a user.
    assert deployer["principalId"] == "22222222-2222-2222-2222-222222222222"
    assert deployer["principalType"] == "User"
    connector = keyless.one(CONNECTOR)
    assert connector.inputs["identity"] == {"type": "SystemAssigned"}
    connector_role = roles["databricks-credential-openai-user"]
    assert connector_role["principalId"] == connector.outputs["identity"]["principalId"]
    assert connector_role["principalType"] == "ServicePrincipal"


def test_the_service_credential_is_bound_to_the_connector_and_named_for_the_stack(
    keyless: ProgramRun,
) -> None:
    credential = keyless.one(CREDENTIAL)
    assert credential.inputs["purpose"] == "SERVICE"
    assert credential.inputs["azureManagedIdentity"] == {
        "accessConnectorId": keyless.one(CONNECTOR).id
    }
    suffix = keyless.one("random:index/randomString:RandomString").outputs["result"]
    assert credential.inputs["name"] == f"llmops_dev_{suffix}_openai", "unique in the metastore"
    assert credential.provider.startswith(keyless.one(PROVIDER).urn + "::"), "in the workspace"
    assert keyless.exports["databricks_service_credential"].value == credential.inputs["name"]


def test_the_keyless_cluster_names_its_credential_and_holds_no_key(keyless: ProgramRun) -> None:
    cluster = keyless.one(CLUSTER).inputs
    env = cluster["sparkEnvVars"]
    assert env["LLMOPS_AUTH_MODE"] == "entra"
    assert env["LLMOPS_SERVICE_CREDENTIAL"] == keyless.one(CREDENTIAL).inputs["name"]
    assert "AZURE_OPENAI_API_KEY" not in env
    packages = [lib["pypi"]["package"] for lib in cluster["libraries"]]
    assert "azure-identity==1.27.0" in packages, "the credential provider's library, pinned"


EXISTING = {
    "serviceCredential": "lab_openai",
    "accessConnectorId": (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-admin/"
        "providers/Microsoft.Databricks/accessConnectors/dbac-admin"
    ),
}


def _deployer_role(run: ProgramRun) -> dict:
    return next(r for r in run.by_type(ROLE) if r.name == "openai-deployer-openai-user").inputs


def test_a_user_signed_in_through_another_app_than_the_azure_cli_is_a_user(run: Run) -> None:
    # Visual Studio Code's app id, not the Azure CLI's: the token's scp still says a user.
    result = run({"authMode": "entra"}, world=World(user_client_id=VSCODE_CLIENT_ID))
    (token,) = [i for i in result.invokes if i.token == "azure-native:authorization:getClientToken"]
    assert token.result and "." in token.result["token"], "the engine answered with a JWT"
    assert _deployer_role(result)["principalType"] == "User"


@pytest.mark.parametrize(
    "identity",
    [
        {"azure-native:clientId": "app-id"},
        {"azure-native:useMsi": "true"},
        {"ARM_CLIENT_ID": "app-id"},
        {"ARM_USE_MSI": "true"},
    ],
)
def test_an_applications_token_makes_the_deployer_a_service_principal(
    run: Run, identity: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = dict(identity)
    for name, value in identity.items():
        if name.startswith("ARM_"):  # the machine's variables, as azure-native reads them
            monkeypatch.setenv(name, value)
            del config[name]
    result = run({"authMode": "entra", **EXISTING, **config})
    assert _deployer_role(result)["principalType"] == "ServicePrincipal"


def test_the_configured_principal_type_overrides_the_token(run: Run) -> None:
    result = run({"authMode": "entra", "deployerPrincipalType": "ServicePrincipal", **EXISTING})
    assert _deployer_role(result)["principalType"] == "ServicePrincipal"
    assert not [i for i in result.invokes if i.token.endswith("getClientToken")], "not asked"


def test_group_can_never_be_the_deployers_type(run: Run) -> None:
    with pytest.raises(ProgramFailed, match=r"deployerPrincipalType = 'Group'.*User or Service"):
        run({"authMode": "entra", "deployerPrincipalType": "Group"})


def test_key_mode_never_asks_for_the_deployers_token(dev: ProgramRun) -> None:
    assert not [i for i in dev.invokes if i.token.endswith("getClientToken")]
    assert not [i for i in dev.invokes if i.token.endswith("getCurrentMetastore")]


# --- a service principal and the existing service credential ----------------------------------


def test_a_service_principal_without_an_existing_credential_stops_before_anything(
    run: Run,
) -> None:
    with pytest.raises(ProgramFailed, match="cannot create its Unity Catalog service cred") as err:
        run({"authMode": "entra", "azure-native:clientId": "app-id"})
    assert "llmops:serviceCredential" in str(err.value) and "accessConnectorId" in str(err.value)
    assert err.value.registered == 0, "nothing registered, nothing changed in Azure"


def test_an_existing_credential_is_named_to_the_cluster_and_its_connector_gets_the_role(
    run: Run,
) -> None:
    result = run({"authMode": "entra", "azure-native:clientId": "app-id", **EXISTING})
    assert not result.by_type(CONNECTOR) and not result.by_type(CREDENTIAL), "neither created"
    (lookup,) = [i for i in result.invokes if i.token.endswith("getAccessConnector")]
    assert lookup.args == {"connectorName": "dbac-admin", "resourceGroupName": "rg-admin"}
    assert lookup.result is not None
    role = next(r for r in result.by_type(ROLE) if r.name == "databricks-credential-openai-user")
    assert role.inputs["principalId"] == lookup.result["identity"]["principalId"]
    assert role.inputs["principalType"] == "ServicePrincipal"
    assert role.inputs["scope"] == result.one(ACCOUNT).id
    assert result.one(CLUSTER).inputs["sparkEnvVars"]["LLMOPS_SERVICE_CREDENTIAL"] == "lab_openai"
    assert result.exports["databricks_service_credential"].value == "lab_openai"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"serviceCredential": "lab_openai"}, "go together"),
        ({"accessConnectorId": EXISTING["accessConnectorId"]}, "go together"),
        ({"serviceCredential": "x", "accessConnectorId": "dbac-admin"}, "resource id"),
    ],
)
def test_the_existing_credential_needs_both_keys_and_a_resource_id(
    run: Run, config: dict[str, str], message: str
) -> None:
    with pytest.raises(ProgramFailed, match=f"accessConnectorId = .*{message}") as err:
        run({"authMode": "entra", **config})
    assert err.value.registered == 0


# --- the workspace's metastore ------------------------------------------------------------------


def test_a_workspace_without_a_metastore_stops_before_the_keyless_resources(run: Run) -> None:
    with pytest.raises(ProgramFailed, match=r"no Unity Catalog metastore.*account admin") as err:
        run({"authMode": "entra"}, world=World(metastore_assigned=False))
    assert "azure-native:databricks:Workspace" in err.value.types, "it is found after the workspace"
    made = set(err.value.types) & {ROLE, CONNECTOR, CREDENTIAL}
    assert not made, f"created before the metastore was known: {made}"


def test_the_metastore_is_asked_through_the_workspaces_provider(keyless: ProgramRun) -> None:
    (lookup,) = [i for i in keyless.invokes if i.token.endswith("getCurrentMetastore")]
    assert lookup.provider.startswith(keyless.one(PROVIDER).urn + "::")
    assert lookup.result and lookup.result["id"] != "no_metastore"


# --- switching modes ----------------------------------------------------------------------------


def test_switching_to_keyless_and_back_turns_key_access_off_and_on_again(run: Run) -> None:
    key = run({}, stack="switch")
    entra = run({"authMode": "entra"}, stack="switch", state=key)
    back = run({}, stack="switch", state=entra)
    states = [r.one(ACCOUNT).outputs["properties"]["disableLocalAuth"] for r in (key, entra, back)]
    assert states == [False, True, False], "as Azure holds it after each up"
    assert back.one(ACCOUNT).id == key.one(ACCOUNT).id, "the same account, updated in place"
    assert not back.by_type(CONNECTOR) and "openai_api_key" in back.exports


# --- the deploying identity reaches the Databricks provider ------------------------------------


def test_a_service_principal_in_stack_configuration_reaches_the_databricks_provider(
    run: Run,
) -> None:
    result = run(
        {
            "azure-native:clientId": "11112222-3333-4444-5555-666677778888",
            "azure-native:tenantId": "99990000-1111-2222-3333-444455556666",
            "azure-native:clientSecret": "do-not-print-me",
        }
    )
    provider = result.one(PROVIDER).inputs
    assert provider["azureClientId"] == "11112222-3333-4444-5555-666677778888"
    assert provider["azureTenantId"] == "99990000-1111-2222-3333-444455556666"
    assert isinstance(provider["azureClientSecret"], Secret), "the secret stays a secret"
    assert provider["azureClientSecret"].value == "do-not-print-me"
    dumped = json.dumps([repr(r) for r in result.resources]) + repr(result.exports)
    assert "do-not-print-me" not in dumped


OIDC = {
    "azure-native:clientId": "app",
    "azure-native:tenantId": "t",
    "azure-native:useOidc": "true",
}


def test_oidc_with_a_token_request_in_configuration_reaches_the_databricks_provider(
    run: Run,
) -> None:
    provider = (
        run(
            {
                **OIDC,
                "azure-native:oidcRequestUrl": "https://runner.example/token",
                "azure-native:oidcRequestToken": "runner-bearer",
            }
        )
        .one(PROVIDER)
        .inputs
    )
    assert provider["authType"] == "github-oidc-azure"
    assert provider["actionsIdTokenRequestUrl"] == "https://runner.example/token"
    assert isinstance(provider["actionsIdTokenRequestToken"], Secret), "the bearer stays secret"
    assert "azureClientSecret" not in provider


def test_oidc_on_github_actions_lets_the_provider_read_the_runners_request(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "https://runner.example/token")
    provider = run(OIDC).one(PROVIDER).inputs
    assert provider["authType"] == "github-oidc-azure"
    assert "actionsIdTokenRequestUrl" not in provider


def test_a_bare_oidc_token_stops_before_anything_it_could_not_finish(run: Run) -> None:
    with pytest.raises(
        ProgramFailed, match=r"useOidc or ARM_USE_OIDC\) needs a token request"
    ) as err:
        run({**OIDC, "azure-native:oidcTokenFilePath": "/var/run/token"})
    assert "az login" in str(err.value)


def test_oidc_from_arm_variables_outside_github_actions_stops_too(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARM_USE_OIDC", "true")
    monkeypatch.setenv("ARM_OIDC_TOKEN_FILE_PATH", "/var/run/token")
    with pytest.raises(ProgramFailed, match="needs a token request"):
        run()
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "https://runner.example/token")
    assert run().one(PROVIDER).inputs["authType"] == "github-oidc-azure"


def test_without_stack_identity_the_provider_finds_the_cli_login_itself(dev: ProgramRun) -> None:
    provider = dev.one(PROVIDER).inputs
    assert not {"azureClientId", "azureClientSecret", "azureTenantId", "authType"} & set(provider)


# --- the preview ----------------------------------------------------------------------------------


def test_a_preview_shows_the_users_cluster_and_paths_as_known_after_up(run: Run) -> None:
    preview = run(preview=True)
    (lookup,) = [i for i in preview.invokes if i.token.endswith("getCurrentUser")]
    assert lookup.provider.startswith(preview.one(PROVIDER).urn + "::")
    assert lookup.result == {}, "the engine's answer through an unconfigured provider: empty"
    (after_up,) = [i for i in run().invokes if i.token.endswith("getCurrentUser")]
    assert after_up.result and after_up.result["userName"], "after up the provider answers"
    cluster = preview.one(CLUSTER).inputs
    assert is_unknown(cluster["clusterName"]) and is_unknown(cluster["singleUserName"])
    for resource in preview.by_type(FILE):
        assert is_unknown(resource.inputs["path"]), resource.name
    text = json.dumps([r.inputs for r in preview.resources], default=str)
    assert "None" not in text, "the engine's empty lookup never shows as None"


def test_the_eval_job_runs_eval_on_the_cluster_with_the_shipped_dataset(dev: ProgramRun) -> None:
    job = next(r for r in dev.by_type(JOB) if r.name == "databricks-jobs-eval")
    task = job.inputs["tasks"][0]
    assert task["existingClusterId"] == dev.one(CLUSTER).outputs["clusterId"]
    assert task["pythonWheelTask"]["parameters"] == ["eval"], "no flags: the env has them"
    assert dev.exports["databricks_eval_job_id"].value == job.id


# --- a second `up` ------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [{}, EVERY_OPTION], ids=["default", "every-option"])
def test_a_second_up_with_nothing_changed_changes_nothing(run: Run, config: dict[str, str]) -> None:
    first = run(config, stack="idem")
    # The second run answers from the first run's state; its own draws would differ.
    second = run(config, stack="idem", seed="another-machine", state=first)
    before = {r.urn: r.inputs for r in first.resources}
    after = {r.urn: r.inputs for r in second.resources}
    assert set(after) == set(before), "the same resources"
    changed = [urn for urn in before if before[urn] != after[urn]]
    assert not changed, f"inputs that would change on a second up: {changed}"
    steps = {r.name: (r.change, r.diff) for r in second.resources if r.change != "same"}
    assert steps == {}, (
        "no diff against what each provider holds (a Terraform-based one reads back)"
    )
    assert {k: v.value for k, v in first.exports.items()} == {
        k: v.value for k, v in second.exports.items()
    }


def _jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (_jwt({"oid": "o", "scp": "user_impersonation", "appid": VSCODE_CLIENT_ID}), "User"),
        (_jwt({"oid": "o", "idtyp": "app", "roles": ["x"]}), "ServicePrincipal"),
        (_jwt({"oid": "o", "appid": "a"}), "ServicePrincipal"),  # no scp: not delegated
        (_jwt({"aud": "x"}), None),  # not an Entra ID token this can read
        ("not-a-token", None),
        ("a.!!!.c", None),
    ],
)
def test_the_tokens_claims_say_user_or_application(token: str, expected: str | None) -> None:
    assert principal_type_of_token(token) == expected
