"""The stack's options under the offline engine: judge deployment, keyless mode, eval job,
the deploying identity, the preview's empty lookups, and a second `up` that changes nothing."""

from __future__ import annotations

import json

import pytest
from conftest import Run

from llmops_infra.offline.engine import ProgramFailed, ProgramRun, Secret, is_unknown

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


def test_key_mode_lists_a_key_keeps_it_secret_and_leaves_local_auth_alone(dev: ProgramRun) -> None:
    account = dev.one(ACCOUNT).inputs
    assert "disableLocalAuth" not in account["properties"]
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


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"deployerPrincipalType": "ServicePrincipal"}, "ServicePrincipal"),
        ({"azure-native:clientId": "app-id"}, "ServicePrincipal"),
        ({"azure-native:useMsi": "true"}, "ServicePrincipal"),
        ({"ARM_CLIENT_ID": "app-id"}, "ServicePrincipal"),
        ({"ARM_USE_MSI": "true"}, "ServicePrincipal"),
    ],
)
def test_the_deployers_principal_type_follows_its_identity_or_the_configuration(
    run: Run, config: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in list(config.items()):
        if name.startswith("ARM_"):  # the machine's variables, as azure-native reads them
            monkeypatch.setenv(name, value)
            del config[name]
    result = run({"authMode": "entra", **config})
    role = next(r for r in result.by_type(ROLE) if r.name == "openai-deployer-openai-user")
    assert role.inputs["principalType"] == expected


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
    assert {k: v.value for k, v in first.exports.items()} == {
        k: v.value for k, v in second.exports.items()
    }
