"""Settings of the chat call: where each value comes from, and every way it can be wrong."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from workload import contract
from workload.config.outputs import load_outputs
from workload.config.settings import resolve_experiment, resolve_settings, tracking_env
from workload.errors import SettingsError

KEY = "sk-very-secret-0123456789"
OUTPUTS: dict[str, Any] = {
    contract.OPENAI_ENDPOINT: "https://oai-llmops-dev-abc123.openai.azure.com/",
    contract.OPENAI_API_KEY: KEY,
    contract.OPENAI_API_VERSION: "2024-05-01-preview",
    contract.OPENAI_DEPLOYMENT: "gpt-4o",
    contract.DATABRICKS_WORKSPACE_URL: "https://adb-1.2.azuredatabricks.net",
    contract.MLFLOW_EXPERIMENT_PATH: "/Shared/llmops-lab",
}


def test_outputs_alone_are_enough() -> None:
    settings = resolve_settings(OUTPUTS, {})
    assert settings.provider == "azure"
    assert settings.endpoint == OUTPUTS[contract.OPENAI_ENDPOINT]
    assert settings.api_key == KEY
    assert settings.api_version == "2024-05-01-preview"
    assert settings.model == "gpt-4o"
    assert KEY not in repr(settings), "the key never shows in a repr"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.api_key = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("AZURE_OPENAI_ENDPOINT", "https://other.openai.azure.com/", "endpoint"),
        ("AZURE_OPENAI_API_KEY", "another-key", "api_key"),
        ("AZURE_OPENAI_API_VERSION", "2024-10-21", "api_version"),
        ("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-mini", "model"),
    ],
)
def test_environment_overrides_outputs(variable: str, value: str, field: str) -> None:
    settings = resolve_settings(OUTPUTS, {variable: value})
    assert getattr(settings, field) == value


def test_environment_alone_is_enough() -> None:
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/",
        "AZURE_OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
    }
    assert resolve_settings({}, env).endpoint == "https://x.openai.azure.com/"


def test_every_missing_value_is_named_in_one_line() -> None:
    with pytest.raises(SettingsError) as failure:
        resolve_settings({}, {})
    message = str(failure.value)
    for name in (
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_API_VERSION",
        "AZURE_OPENAI_DEPLOYMENT",
        contract.OPENAI_ENDPOINT,
        contract.OPENAI_API_KEY,
    ):
        assert name in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"AZURE_OPENAI_ENDPOINT": "not a url"}, "AZURE_OPENAI_ENDPOINT = 'not a url'"),
        ({"AZURE_OPENAI_ENDPOINT": "http://x.openai.azure.com/"}, "not an https:// URL"),
        ({"AZURE_OPENAI_API_VERSION": "latest"}, "AZURE_OPENAI_API_VERSION = 'latest'"),
        ({"AZURE_OPENAI_DEPLOYMENT": "gpt 4o/x"}, "not a deployment name"),
        ({"AZURE_OPENAI_API_KEY": "has space"}, "white space (value not shown)"),
    ],
)
def test_malformed_values_are_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as failure:
        resolve_settings(OUTPUTS, env)
    assert needle in str(failure.value)
    assert "has space" not in str(failure.value), "a key's value is never echoed"


def test_non_string_outputs_are_named_without_their_value() -> None:
    outputs = {**OUTPUTS, contract.OPENAI_API_KEY: {"value": KEY}, contract.OPENAI_ENDPOINT: 5}
    with pytest.raises(SettingsError) as failure:
        resolve_settings(outputs, {})
    message = str(failure.value)
    assert f"stack output {contract.OPENAI_API_KEY} is not a string" in message
    assert f"stack output {contract.OPENAI_ENDPOINT} is not a string" in message
    assert KEY not in message


def test_a_key_in_the_wrong_variable_is_not_echoed() -> None:
    with pytest.raises(SettingsError, match=r"AZURE_OPENAI_ENDPOINT = '\[secret\]'") as failure:
        resolve_settings({}, {"AZURE_OPENAI_ENDPOINT": KEY, "AZURE_OPENAI_API_KEY": KEY})
    assert KEY not in str(failure.value)


def test_an_entra_token_in_the_wrong_variable_is_not_echoed() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.entra-token-pasted"
    env = {"LLMOPS_AUTH_MODE": "entra", "AZURE_OPENAI_AD_TOKEN": token}
    with pytest.raises(SettingsError, match=r"AZURE_OPENAI_ENDPOINT = '\[secret\]'") as failure:
        resolve_settings({}, {**env, "AZURE_OPENAI_ENDPOINT": token})
    assert token not in str(failure.value)


def test_masked_key_says_how_to_get_it() -> None:
    with pytest.raises(SettingsError, match="--show-secrets"):
        resolve_settings({**OUTPUTS, contract.OPENAI_API_KEY: "[secret]"}, {})


def test_loopback_http_is_allowed_for_local_servers() -> None:
    settings = resolve_settings(OUTPUTS, {"AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:8080/"})
    assert settings.endpoint == "http://127.0.0.1:8080/"


def test_openai_compatible_server_is_selected_by_base_url() -> None:
    env = {"OPENAI_BASE_URL": "http://localhost:11434/v1", "OPENAI_API_KEY": "ollama"}
    settings = resolve_settings(OUTPUTS, {**env, "OPENAI_MODEL": "llama3"})
    assert (settings.provider, settings.endpoint, settings.model) == (
        "openai",
        "http://localhost:11434/v1",
        "llama3",
    )
    assert settings.api_version is None
    flagged = resolve_settings(OUTPUTS, {**env, "OPENAI_MODEL": "llama3"}, model="qwen2")
    assert flagged.model == "qwen2", "--model beats OPENAI_MODEL"
    with pytest.raises(SettingsError, match=r"OPENAI_API_KEY.*--model or OPENAI_MODEL"):
        resolve_settings(OUTPUTS, {"OPENAI_BASE_URL": "http://localhost:11434/v1"})


def test_a_compatible_server_may_be_plain_http_but_azure_may_not() -> None:
    env = {"OPENAI_BASE_URL": "http://gpu-box:8000/v1", "OPENAI_API_KEY": "x", "OPENAI_MODEL": "m"}
    assert resolve_settings({}, env).endpoint == "http://gpu-box:8000/v1"
    with pytest.raises(SettingsError, match="is not an http:// or https:// URL"):
        resolve_settings({}, {**env, "OPENAI_BASE_URL": "gpu-box:8000"})
    with pytest.raises(SettingsError, match="is not an https:// URL"):
        resolve_settings(OUTPUTS, {"AZURE_OPENAI_ENDPOINT": "http://gpu-box:8000/"})


def test_experiment_precedence() -> None:
    assert resolve_experiment("flag", OUTPUTS, {"MLFLOW_EXPERIMENT_NAME": "env"}) == "flag"
    assert resolve_experiment(None, OUTPUTS, {"MLFLOW_EXPERIMENT_NAME": "env"}) == "env"
    assert resolve_experiment(None, OUTPUTS, {}) == "llmops-lab"
    databricks = {"MLFLOW_TRACKING_URI": "databricks"}
    assert resolve_experiment(None, OUTPUTS, databricks) == "/Shared/llmops-lab"


def test_databricks_tracking_takes_the_workspace_from_the_outputs() -> None:
    assert tracking_env(OUTPUTS, {"MLFLOW_TRACKING_URI": "databricks"}) == {
        "DATABRICKS_HOST": "https://adb-1.2.azuredatabricks.net"
    }
    assert (
        tracking_env(OUTPUTS, {"MLFLOW_TRACKING_URI": "databricks", "DATABRICKS_HOST": "h"}) == {}
    )
    assert tracking_env(OUTPUTS, {}) == {}


def test_outputs_file(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    assert load_outputs(str(path), None) == OUTPUTS
    assert load_outputs(None, None) == {}


@pytest.mark.parametrize(
    ("content", "needle"),
    [("{not json", "is not the JSON"), ("[1, 2]", "must hold a JSON object")],
)
def test_malformed_outputs_file(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(content)
    with pytest.raises(SettingsError, match=needle):
        load_outputs(str(path), None)


def test_missing_outputs_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read --outputs"):
        load_outputs(str(tmp_path / "nope.json"), None)


def test_stack_runs_pulumi_stack_output(mocker: MockerFixture) -> None:
    run = mocker.patch("workload.config.outputs.subprocess.run", autospec=True)
    run.return_value = subprocess.CompletedProcess([], 0, json.dumps(OUTPUTS), "")
    assert load_outputs(None, "dev") == OUTPUTS
    command = run.call_args.args[0]
    assert command == ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "dev"]
    assert run.call_args.kwargs["stdin"] == subprocess.DEVNULL, "never waits on a hidden prompt"


def test_stack_whose_secrets_cannot_be_decrypted(mocker: MockerFixture) -> None:
    run = mocker.patch("workload.config.outputs.subprocess.run", autospec=True)
    stderr = (
        "error: getting stack configuration: passphrase must be set with "
        "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables\n"
    )
    run.return_value = subprocess.CompletedProcess([], 255, "", stderr)
    with pytest.raises(SettingsError, match="PULUMI_CONFIG_PASSPHRASE"):
        load_outputs(None, "dev")


def test_stack_without_the_cli(mocker: MockerFixture) -> None:
    mocker.patch(
        "workload.config.outputs.subprocess.run", autospec=True, side_effect=FileNotFoundError
    )
    with pytest.raises(SettingsError, match=r"pulumi CLI is not on PATH.*--outputs FILE"):
        load_outputs(None, "dev")


def test_stack_that_does_not_exist(mocker: MockerFixture) -> None:
    run = mocker.patch("workload.config.outputs.subprocess.run", autospec=True)
    run.return_value = subprocess.CompletedProcess(
        [], 255, "", "error: no stack named 'prod' found\n"
    )
    with pytest.raises(SettingsError, match=r"no stack named 'prod' found.*pulumi up"):
        load_outputs(None, "prod")


def test_stack_not_deployed(mocker: MockerFixture) -> None:
    run = mocker.patch("workload.config.outputs.subprocess.run", autospec=True)
    run.return_value = subprocess.CompletedProcess([], 0, "{}", "")
    with pytest.raises(SettingsError, match="has no outputs: run `pulumi up` first"):
        load_outputs(None, "dev")
