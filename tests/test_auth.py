"""Keyless (entra) mode, as docs/keyless.md fixes it.

Every call goes over a real socket to the local fake Azure OpenAI set up as a
keyless account (``FakeAzureOpenAI(ad_token=...)``: local authentication off, so
an ``api-key`` header gets 403). The credentials are faked where the workload
looks for them: ``AZURE_OPENAI_AD_TOKEN``; a Databricks cluster's ``dbutils``
(``tests/fake_dbutils.py``) with ``DATABRICKS_RUNTIME_VERSION`` set; and
azure-identity's ``DefaultAzureCredential`` (pytest-mock, autospec). The
command runs end to end, traces in a real sqlite MLflow store, in one process
of its own for three scenarios, like ``tests/test_chat.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from azure.core.credentials import AccessTokenInfo
from azure.core.exceptions import ClientAuthenticationError
from command_runner import run_commands
from fake_azure_openai import JOKE, FakeAzureOpenAI, RecordedRequest, Reply
from fake_dbutils import MODULE, FakeDbutils, RemoteDbutils, as_module
from pytest_mock import MockerFixture

from llmops_infra.offline.engine import PROJECT_DIR
from workload import contract
from workload.cli import main
from workload.config.settings import resolve_settings
from workload.errors import ServiceError, SettingsError
from workload.model.auth import COGNITIVE_SERVICES_SCOPE, make_client
from workload.model.chat import _describe

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent.parent
KEY = "lab-key-that-must-stay-home-0123456789"
AD_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.ad-token-from-the-variable"
CLUSTER_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.token-of-the-access-connector"
DEFAULT_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.token-from-az-login"
CREDENTIAL = "llmops-dev-abc123"
ENDPOINT = "https://oai-llmops-dev-abc123.openai.azure.com/"


def _entra_outputs(endpoint: str = ENDPOINT) -> dict[str, Any]:
    """An entra stack's outputs: no key, no secret scope, a service credential."""
    return {
        contract.OPENAI_ENDPOINT: endpoint,
        contract.OPENAI_API_VERSION: "2024-05-01-preview",
        contract.OPENAI_DEPLOYMENT: "gpt-4o",
        contract.OPENAI_AUTH_MODE: "entra",
        contract.DATABRICKS_SERVICE_CREDENTIAL: CREDENTIAL,
        contract.MLFLOW_EXPERIMENT_PATH: "/Shared/llmops-lab",
    }


def _headers(request: RecordedRequest) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def _sent_bearer(request: RecordedRequest, token: str) -> None:
    headers = _headers(request)
    assert headers.get("authorization") == f"Bearer {token}", "the token is the bearer"
    assert "api-key" not in headers, "no api-key header in entra mode"


# --- which mode, which credential -----------------------------------------------------------


def test_an_entra_stack_needs_no_key() -> None:
    settings = resolve_settings(_entra_outputs(), {})
    assert (settings.auth_mode, settings.api_key) == ("entra", None)
    assert settings.credential == "default-azure-credential"


@pytest.mark.parametrize(
    ("output_mode", "env_mode", "expected"),
    [
        ("key", "entra", "entra"),
        ("entra", "key", "key"),
        ("entra", "", "entra"),
        ("", "", "key"),
        (None, None, "key"),
    ],
)
def test_the_environments_mode_wins_over_the_outputs(
    output_mode: str | None, env_mode: str | None, expected: str
) -> None:
    outputs = {**_entra_outputs(), contract.OPENAI_API_KEY: KEY}
    outputs.pop(contract.OPENAI_AUTH_MODE)
    if output_mode is not None:
        outputs[contract.OPENAI_AUTH_MODE] = output_mode
    env = {} if env_mode is None else {contract.ENV_AUTH_MODE: env_mode}
    settings = resolve_settings(outputs, env)
    assert settings.auth_mode == expected
    assert settings.api_key == (KEY if expected == "key" else None), "a key only in key mode"


def test_key_mode_over_an_entra_stack_asks_for_a_key() -> None:
    with pytest.raises(SettingsError, match="missing AZURE_OPENAI_API_KEY"):
        resolve_settings(_entra_outputs(), {contract.ENV_AUTH_MODE: "key"})


def test_an_unknown_mode_is_named_with_its_source() -> None:
    with pytest.raises(
        SettingsError, match=r"LLMOPS_AUTH_MODE = 'keyless' is not one of key, entra"
    ):
        resolve_settings(_entra_outputs(), {contract.ENV_AUTH_MODE: "keyless"})
    outputs = {**_entra_outputs(), contract.OPENAI_AUTH_MODE: "managed"}
    with pytest.raises(SettingsError, match=r"stack output openai_auth_mode = 'managed'"):
        resolve_settings(outputs, {})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # The token variable wins over the service credential, which wins over azure-identity.
        (
            {"AZURE_OPENAI_AD_TOKEN": AD_TOKEN, "DATABRICKS_RUNTIME_VERSION": "16.4"},
            "ad-token",
        ),
        ({"DATABRICKS_RUNTIME_VERSION": "16.4"}, "service-credential"),
        (
            {"DATABRICKS_RUNTIME_VERSION": "16.4", "LLMOPS_SERVICE_CREDENTIAL": "other"},
            "service-credential",
        ),
        # Off a cluster there is no dbutils: the credential's name is not used.
        ({"LLMOPS_SERVICE_CREDENTIAL": CREDENTIAL}, "default-azure-credential"),
        ({}, "default-azure-credential"),
    ],
)
def test_credential_precedence(env: dict[str, str], expected: str) -> None:
    settings = resolve_settings(_entra_outputs(), env)
    assert settings.credential == expected
    if expected == "service-credential":
        assert settings.service_credential == env.get("LLMOPS_SERVICE_CREDENTIAL", CREDENTIAL), (
            "LLMOPS_SERVICE_CREDENTIAL, else the stack's databricks_service_credential"
        )
    assert AD_TOKEN not in repr(settings), "the token never shows in a repr"


# --- the credentials, over a real socket ----------------------------------------------------


@pytest.fixture
def keyless() -> Iterator[FakeAzureOpenAI]:
    """The fake as a keyless account; the key below is the lab's, left in the environment."""
    with FakeAzureOpenAI(api_key=KEY) as fake:
        fake.ad_token = AD_TOKEN
        yield fake


@pytest.fixture
def default_credential(mocker: MockerFixture) -> MagicMock:
    """azure-identity's DefaultAzureCredential, faked (autospec): it hands out DEFAULT_TOKEN."""
    credential_class = mocker.patch("azure.identity.DefaultAzureCredential", autospec=True)
    credential_class.return_value.get_token_info.return_value = AccessTokenInfo(
        DEFAULT_TOKEN, int(time.time()) + 3600
    )
    return credential_class


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeDbutils:
    """A Databricks cluster's dbutils holding the stack's service credential."""
    dbutils = FakeDbutils({CREDENTIAL: CLUSTER_TOKEN})
    monkeypatch.setitem(sys.modules, MODULE, as_module(dbutils))
    return dbutils


def _call(fake: FakeAzureOpenAI, env: dict[str, str]) -> str:
    settings = resolve_settings(_entra_outputs(fake.endpoint), env)
    client = make_client(settings, max_retries=0, timeout=5.0)
    response = client.chat.completions.create(model=settings.model, messages=[])
    return response.choices[0].message.content or ""


def test_the_ad_token_variable_is_the_bearer_and_the_key_is_never_sent(
    keyless: FakeAzureOpenAI, default_credential: MagicMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client would read these two by itself if it were left to.
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", AD_TOKEN)
    env = {"AZURE_OPENAI_AD_TOKEN": AD_TOKEN, "AZURE_OPENAI_API_KEY": KEY}
    assert _call(keyless, env) == JOKE
    (request,) = keyless.requests
    _sent_bearer(request, AD_TOKEN)
    assert KEY not in json.dumps(request.headers)
    default_credential.assert_not_called()


def test_default_azure_credential_gives_the_token(
    keyless: FakeAzureOpenAI, default_credential: MagicMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    keyless.ad_token = DEFAULT_TOKEN
    settings = resolve_settings(_entra_outputs(keyless.endpoint), {"AZURE_OPENAI_API_KEY": KEY})
    client = make_client(settings, max_retries=0, timeout=5.0)
    for _ in range(2):
        client.chat.completions.create(model=settings.model, messages=[])
    for request in keyless.requests:
        _sent_bearer(request, DEFAULT_TOKEN)
    token_info = default_credential.return_value.get_token_info
    assert token_info.call_args.args == (COGNITIVE_SERVICES_SCOPE,), "Azure OpenAI's scope"
    assert token_info.call_count == 1, "the token is cached between calls (azure-identity's)"


def test_a_token_that_cannot_be_renewed_fails_the_call_in_one_line(
    keyless: FakeAzureOpenAI, default_credential: MagicMock
) -> None:
    keyless.ad_token = DEFAULT_TOKEN
    token_info = default_credential.return_value.get_token_info
    # A token about to expire is renewed before the next call; the renewal fails.
    token_info.side_effect = [
        AccessTokenInfo(DEFAULT_TOKEN, int(time.time()) + 5),
        AccessTokenInfo(DEFAULT_TOKEN, int(time.time()) + 5),
        ClientAuthenticationError("AADSTS700082: The refresh token has expired."),
    ]
    settings = resolve_settings(_entra_outputs(keyless.endpoint), {})
    client = make_client(settings, max_retries=0, timeout=5.0)  # the first token, checked
    client.chat.completions.create(model=settings.model, messages=[])
    with pytest.raises(ServiceError, match="could not renew the token") as failure:
        client.chat.completions.create(model=settings.model, messages=[])
    _says_what_to_check(str(failure.value) + "\n")
    assert len(keyless.requests) == 1, "the call without a token is not sent"


def test_on_a_cluster_the_service_credential_gives_the_token(
    keyless: FakeAzureOpenAI, default_credential: MagicMock, cluster: FakeDbutils
) -> None:
    keyless.ad_token = CLUSTER_TOKEN
    env = {"DATABRICKS_RUNTIME_VERSION": "16.4.x-cpu-ml-scala2.12"}
    assert _call(keyless, env) == JOKE
    _sent_bearer(keyless.requests[0], CLUSTER_TOKEN)
    assert cluster.asked == [CREDENTIAL], "the stack's credential, from dbutils"
    assert cluster.providers[CREDENTIAL].scopes == [(COGNITIVE_SERVICES_SCOPE,)]
    default_credential.assert_not_called()


def test_the_ad_token_variable_wins_over_the_service_credential(
    keyless: FakeAzureOpenAI, default_credential: MagicMock, cluster: FakeDbutils
) -> None:
    env = {"DATABRICKS_RUNTIME_VERSION": "16.4", "AZURE_OPENAI_AD_TOKEN": AD_TOKEN}
    assert _call(keyless, env) == JOKE
    _sent_bearer(keyless.requests[0], AD_TOKEN)
    assert cluster.asked == [], "dbutils is not asked"
    default_credential.assert_not_called()


def test_key_mode_still_sends_the_key(keyless: FakeAzureOpenAI) -> None:
    keyless.ad_token = None  # the lab's account, keys allowed
    outputs = {**_entra_outputs(keyless.endpoint), contract.OPENAI_API_KEY: KEY}
    settings = resolve_settings(outputs, {"LLMOPS_AUTH_MODE": "key"})
    client = make_client(settings, max_retries=0, timeout=5.0)
    client.chat.completions.create(model=settings.model, messages=[])
    headers = _headers(keyless.requests[0])
    assert headers["api-key"] == KEY and "authorization" not in headers


# --- errors: one line, what to check ----------------------------------------------------------


def _chat(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> tuple[int, str]:
    """``python -m workload chat`` in this process (it stops before MLflow), with only ``env``."""
    for name in list(os.environ):
        if name.startswith(("AZURE_", "OPENAI_", "MLFLOW_", "DATABRICKS_", "LLMOPS_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["chat"])
    return code, err.getvalue()


def _says_what_to_check(line: str) -> None:
    assert line.count("\n") == 1 and "Traceback" not in line, line
    for needle in ("Cognitive Services OpenAI User", "minutes", "az login", "service credential"):
        assert needle in line, f"{needle!r} in {line!r}"


def _lab_env(fake: FakeAzureOpenAI) -> dict[str, str]:
    return {
        "LLMOPS_AUTH_MODE": "entra",
        "AZURE_OPENAI_ENDPOINT": fake.endpoint,
        "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
        "AZURE_OPENAI_API_KEY": KEY,
    }


def test_no_credential_exits_2_and_sends_nothing(
    keyless: FakeAzureOpenAI, default_credential: MagicMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    default_credential.return_value.get_token_info.side_effect = ClientAuthenticationError(
        "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
        "Attempted credentials:\n\tAzureCliCredential: Please run 'az login' to set up an account"
    )
    code, err = _chat(monkeypatch, _lab_env(keyless))
    assert code == 2
    assert "DefaultAzureCredential failed to retrieve a token" in err
    _says_what_to_check(err)
    assert keyless.requests == [], "nothing is sent"
    assert KEY not in err


def test_a_service_credential_out_of_reach_exits_2_and_sends_nothing(
    keyless: FakeAzureOpenAI,
    default_credential: MagicMock,
    cluster: FakeDbutils,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        **_lab_env(keyless),
        "DATABRICKS_RUNTIME_VERSION": "16.4",
        "LLMOPS_SERVICE_CREDENTIAL": "gone",
    }
    code, err = _chat(monkeypatch, env)
    assert code == 2
    assert "'gone'" in err and "PERMISSION_DENIED" in err
    _says_what_to_check(err)
    assert keyless.requests == [] and cluster.asked == ["gone"]
    default_credential.assert_not_called()


def test_a_runtime_without_service_credentials_exits_2(
    keyless: FakeAzureOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_runtime = types.ModuleType(MODULE)
    old_runtime.dbutils = types.SimpleNamespace(credentials=types.SimpleNamespace())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, old_runtime)
    env = {
        **_lab_env(keyless),
        "DATABRICKS_RUNTIME_VERSION": "15.4",
        "LLMOPS_SERVICE_CREDENTIAL": "c",
    }
    code, err = _chat(monkeypatch, env)
    assert code == 2 and err.count("\n") == 1
    assert "Databricks Runtime 16.2 or later" in err
    assert keyless.requests == []


@pytest.mark.parametrize(
    ("cluster_id", "raised"),
    [
        ("", "cluster_id is required in the configuration"),
        ("0101-serverless", "is not supported in the SDK version of DBUtils"),
    ],
)
def test_on_serverless_a_dbutils_that_raises_valueerror_exits_2_in_one_line(
    keyless: FakeAzureOpenAI,
    default_credential: MagicMock,
    monkeypatch: pytest.MonkeyPatch,
    cluster_id: str,
    raised: str,
) -> None:
    """The SDK's remote dbutils raises ValueError, not AttributeError, on attribute access."""
    monkeypatch.setitem(sys.modules, MODULE, as_module(RemoteDbutils(cluster_id=cluster_id)))
    env = {
        **_lab_env(keyless),
        "DATABRICKS_RUNTIME_VERSION": "client.1.13",
        "LLMOPS_SERVICE_CREDENTIAL": CREDENTIAL,
    }
    code, err = _chat(monkeypatch, env)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert raised in err and "`llmops:compute cluster`" in err, "why, and what to set"
    assert keyless.requests == [], "nothing is sent"
    default_credential.assert_not_called()


@pytest.mark.parametrize(
    "reply",
    [
        Reply(401, {"error": {"code": "PermissionDenied", "message": "Unauthorized."}}),
        Reply(
            403, {"error": {"code": "PermissionDenied", "message": "The principal lacks the role."}}
        ),
    ],
)
def test_refusals_in_entra_mode_say_what_to_check(keyless: FakeAzureOpenAI, reply: Reply) -> None:
    import openai

    settings = resolve_settings(
        _entra_outputs(keyless.endpoint), {"AZURE_OPENAI_AD_TOKEN": AD_TOKEN}
    )
    client = make_client(settings, max_retries=0, timeout=5.0)
    keyless.script(reply)
    with pytest.raises(openai.APIStatusError) as failure:
        client.chat.completions.create(model=settings.model, messages=[])
    line = _describe(failure.value, AD_TOKEN, settings.auth_mode)
    assert f"HTTP {reply.status}" in line
    _says_what_to_check(line + "\n")
    assert "API key" not in line, "no key to check in entra mode"


# --- end to end: the command, its trace, no secret anywhere -----------------------------------


@dataclass
class Scenario:
    fake: FakeAzureOpenAI
    args: list[str]
    env: dict[str, str]
    dbutils: dict[str, str] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[tuple[dict[str, Scenario], str]]:
    tmp = tmp_path_factory.mktemp("auth")
    shutil.copyfile(empty_mlflow_store, tmp / "mlflow.db")  # its tables made already
    outputs = tmp / "outputs.json"
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "OPENAI_", "MLFLOW_", "DATABRICKS_", "LLMOPS_"))
    }
    base.update(
        {
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false",
            # The lab's key, left in the environment: entra mode must not send it.
            "AZURE_OPENAI_API_KEY": KEY,
            "PYTHONPATH": str(PROJECT),
        }
    )
    fakes = {
        "laptop": FakeAzureOpenAI(api_key=KEY, ad_token=AD_TOKEN).start(),
        "cluster": FakeAzureOpenAI(api_key=KEY, ad_token=CLUSTER_TOKEN).start(),
        "denied": FakeAzureOpenAI(api_key=KEY, ad_token="the-token-azure-expects").start(),
    }
    # A laptop with an entra stack's outputs file and a token in AZURE_OPENAI_AD_TOKEN.
    outputs.write_text(json.dumps(_entra_outputs(fakes["laptop"].endpoint)))
    scenarios = {
        "laptop": Scenario(
            fakes["laptop"],
            ["--outputs", str(outputs), "--experiment", "laptop"],
            {**base, "AZURE_OPENAI_AD_TOKEN": AD_TOKEN},
        ),
        # The cluster's environment as the stack sets it in entra mode: no key anywhere
        # but the leftover one, the mode and the credential's name.
        "cluster": Scenario(
            fakes["cluster"],
            ["--experiment", "cluster"],
            {
                **_lab_env(fakes["cluster"]),
                **base,
                "DATABRICKS_RUNTIME_VERSION": "16.4.x-cpu-ml-scala2.12",
                "LLMOPS_SERVICE_CREDENTIAL": CREDENTIAL,
            },
            dbutils={CREDENTIAL: CLUSTER_TOKEN},
        ),
        "denied": Scenario(
            fakes["denied"],
            ["--experiment", "denied"],
            {**_lab_env(fakes["denied"]), **base, "AZURE_OPENAI_AD_TOKEN": AD_TOKEN},
        ),
    }
    plan = {
        name: {
            "command": "chat",
            "args": ["--json", *s.args],
            "env": s.env,
            "dbutils": s.dbutils,
        }
        for name, s in scenarios.items()
    }
    results, output = run_commands(plan, cwd=tmp, env=base)
    for name, result in results.items():
        scenarios[name].result = result
    yield scenarios, output
    for fake in fakes.values():
        fake.stop()


def _stored(scenarios: dict[str, Scenario]) -> list[bytes]:
    uri = next(iter(scenarios.values())).env["MLFLOW_TRACKING_URI"]
    folder = Path(uri.removeprefix("sqlite:///")).parent
    return [path.read_bytes() for path in folder.rglob("*") if path.is_file()]


def _traces(scenarios: dict[str, Scenario], experiment: str) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=scenarios["laptop"].env["MLFLOW_TRACKING_URI"])
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"experiment {experiment} was created"
    return list(client.search_traces(locations=[found.experiment_id]))


@pytest.mark.parametrize(("name", "token"), [("laptop", AD_TOKEN), ("cluster", CLUSTER_TOKEN)])
def test_the_chat_command_in_entra_mode_is_traced(
    runs: tuple[dict[str, Scenario], str], name: str, token: str
) -> None:
    scenario = runs[0][name]
    assert scenario.result["code"] == 0, scenario.result["stderr"]
    assert json.loads(scenario.result["stdout"])["reply"] == JOKE
    (request,) = scenario.fake.requests
    _sent_bearer(request, token)
    (trace,) = _traces(runs[0], name)
    assert trace.info.state.value == "OK"
    if name == "cluster":
        assert scenario.result["asked"] == [CREDENTIAL], "the credential the stack named"


def test_a_refused_token_exits_1_saying_what_to_check(
    runs: tuple[dict[str, Scenario], str],
) -> None:
    denied = runs[0]["denied"]
    assert denied.result["code"] == 1
    # MLflow logs its own lines (a new experiment) on stderr too; the error is one line.
    (line,) = [line for line in denied.result["stderr"].splitlines() if line.startswith("error:")]
    assert "HTTP 401" in line
    _says_what_to_check(line + "\n")
    assert len(denied.fake.requests) == 1, "a 401 is not retried"
    (trace,) = _traces(runs[0], "denied")
    assert trace.info.state.value == "ERROR", "the failed call is traced"


def test_neither_the_key_nor_a_token_appears_anywhere(
    runs: tuple[dict[str, Scenario], str],
) -> None:
    scenarios, process_output = runs
    stored = _stored(scenarios)
    assert any(b"Tell me a joke about" in data for data in stored), "the traces are stored"
    for secret in (KEY, AD_TOKEN, CLUSTER_TOKEN):
        assert secret not in process_output, "nothing printed holds a secret"
        assert not any(secret.encode() in data for data in stored), "nor does the store"
    for scenario in scenarios.values():
        for request in scenario.fake.requests:
            assert KEY not in json.dumps(request.headers), "the key is never sent"


def test_keyless_chat_without_any_credential_prints_one_line(tmp_path: Path) -> None:
    """The real DefaultAzureCredential, with nothing to find: no AZURE_* variable, no Azure
    CLI on PATH, an empty home; azure-identity's multi-line account of its attempts stays
    out of the user's way."""
    env = {
        "PATH": os.path.dirname(sys.executable),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(PROJECT_DIR),
        "LLMOPS_AUTH_MODE": "entra",
        "AZURE_OPENAI_ENDPOINT": "https://oai-x.openai.azure.com/",
        "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "workload", "chat"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: entra mode found no token for Azure OpenAI from "), line
    assert "az login" in line
