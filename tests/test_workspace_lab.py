"""Issue 6 under the mocks: the key as a secret, the experiment, the workload as jobs."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from llmops_infra.errors import ConfigError
from llmops_infra.offline.engine import (
    FAKE_USER,
    PROJECT_DIR,
    ProgramFailed,
    ProgramRun,
    RecordedResource,
    Secret,
    is_unknown,
)
from llmops_infra.stack.config import parse_config
from workload import contract, job_entry

SCOPE = "databricks:index/secretScope:SecretScope"
SECRET = "databricks:index/secret:Secret"
EXPERIMENT = "databricks:index/mlflowExperiment:MlflowExperiment"
FILE = "databricks:index/workspaceFile:WorkspaceFile"
JOB = "databricks:index/job:Job"
CLUSTER = "databricks:index/cluster:Cluster"
DEPLOYMENT = "azure-native:cognitiveservices:Deployment"
PROVIDER = "pulumi:providers:databricks"
FOLDER = f"/Users/{FAKE_USER}/llmops-workload"

Run = Callable[..., ProgramRun]


def _job(run: ProgramRun, command: str) -> RecordedResource:
    jobs = [j for j in run.by_type(JOB) if j.inputs["tasks"][0]["taskKey"] == command]
    assert len(jobs) == 1, f"one job runs `workload {command}`"
    return jobs[0]


def _clear_strings(value: Any) -> Iterator[str]:
    """Every string in a recorded value that is not inside a Pulumi secret."""
    if isinstance(value, Secret):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _clear_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _clear_strings(item)


def _pins() -> dict[str, str]:
    lines = (PROJECT_DIR / "requirements.txt").read_text().splitlines()
    return {m[1]: m[0] for line in lines if (m := re.fullmatch(r"([\w.-]+)==(\S+)", line.strip()))}


# --- the secret --------------------------------------------------------------------------------


def test_secret_scope_is_databricks_backed_and_named_by_config(dev: ProgramRun) -> None:
    scope = dev.one(SCOPE)
    assert scope.inputs["name"] == "llmops", "llmops:secretScope defaults to llmops"
    assert scope.inputs["backendType"] == "DATABRICKS", "Databricks-backed, no Key Vault"


def test_secret_holds_the_accounts_key_as_a_pulumi_secret(dev: ProgramRun) -> None:
    secret = dev.one(SECRET)
    value = secret.inputs["stringValue"]
    assert isinstance(value, Secret), "the key is sent to the provider as a secret"
    assert value.value == dev.exports[contract.OPENAI_API_KEY].value, "the account's key"
    assert secret.inputs["scope"] == dev.one(SCOPE).outputs["name"], "stored in the new scope"
    assert dev.one(SCOPE).urn in secret.dependencies, "the scope exists first"


def test_no_other_resource_holds_the_key_in_clear_text(dev: ProgramRun) -> None:
    key = dev.exports[contract.OPENAI_API_KEY].value
    for resource in dev.resources:
        leaked = [s for s in _clear_strings(resource.inputs) if key in s]
        assert not leaked, f"{resource.type} {resource.name} has the key in clear text"


def test_cluster_env_carries_the_labs_variables_with_the_key_only_as_a_reference(
    dev: ProgramRun,
) -> None:
    env = dev.one(CLUSTER).inputs["sparkEnvVars"]
    values = {name: export.value for name, export in dev.exports.items()}
    assert env == {
        "AZURE_OPENAI_API_KEY": "{{secrets/llmops/azure-openai-api-key}}",
        "AZURE_OPENAI_ENDPOINT": values[contract.OPENAI_ENDPOINT],
        "AZURE_OPENAI_API_VERSION": values[contract.OPENAI_API_VERSION],
        "AZURE_OPENAI_DEPLOYMENT": values[contract.OPENAI_DEPLOYMENT],
        "MLFLOW_EXPERIMENT_NAME": values[contract.MLFLOW_EXPERIMENT_PATH],
        # What `workload eval` paces by (docs/eval.md: the job needs no flags).
        "LLMOPS_TOKENS_PER_MINUTE": "10000",
        "LLMOPS_JUDGE_DEPLOYMENT": "",
        "LLMOPS_JUDGE_TOKENS_PER_MINUTE": "0",
    }, "the lab's first cell, as the cluster's environment"
    assert env["AZURE_OPENAI_API_KEY"] == dev.one(SECRET).outputs["configReference"]


def test_cluster_waits_for_its_secret_and_for_nothing_it_does_not_need(dev: ProgramRun) -> None:
    cluster = dev.one(CLUSTER)
    assert dev.one(SECRET).urn in cluster.dependencies, "secret before cluster"
    # Not needed to start it: these would only lengthen `pulumi up` (bench/up_critical_path).
    assert dev.one(EXPERIMENT).urn not in cluster.dependencies
    assert dev.one(DEPLOYMENT).urn not in cluster.dependencies


def test_cluster_installs_the_workloads_pinned_openai_and_mlflow(dev: ProgramRun) -> None:
    pins = _pins()
    libraries = dev.one(CLUSTER).inputs["libraries"]
    assert libraries == [
        {"pypi": {"package": pins["openai"]}},
        {"pypi": {"package": pins["mlflow"]}},
    ], "the versions requirements.txt pins, so the cluster runs what the tests ran"


# --- the experiment ----------------------------------------------------------------------------


def test_experiment_is_created_at_the_configured_path(dev: ProgramRun) -> None:
    experiment = dev.one(EXPERIMENT)
    assert experiment.inputs["name"] == "/Shared/llmops-lab"
    assert dev.exports[contract.MLFLOW_EXPERIMENT_PATH].value == "/Shared/llmops-lab"


# --- the workload and its jobs -----------------------------------------------------------------


def test_the_workload_is_uploaded_as_one_wheel_under_its_contents_hash(dev: ProgramRun) -> None:
    (uploaded,) = dev.by_type(FILE)
    source = PROJECT_DIR / uploaded.inputs["source"]
    content = source.read_bytes()
    assert source.name == "llmops_workload-0.1.0-py3-none-any.whl", "a wheel pip can install"
    digest = hashlib.sha256(content).hexdigest()[:16]
    assert uploaded.inputs["path"] == f"{FOLDER}/wheel-{digest}/{source.name}", (
        "the path carries the wheel's hash: a changed wheel is a new path the jobs follow"
    )
    assert uploaded.inputs["md5"] == hashlib.md5(content, usedforsecurity=False).hexdigest()
    assert not Path(uploaded.inputs["source"]).is_absolute(), "same input on every machine"
    names = zipfile.ZipFile(source).namelist()
    assert "workload/job_entry.py" in names
    assert "workload/evaluation/datasets/lab_prompts.jsonl" in names, "the eval job's dataset"
    assert "workload/prompts/lab_chat.json" in names, "the packaged prompt"
    assert not [n for n in names if n.startswith(("llmops_infra/", "tests/"))], "workload only"


@pytest.mark.parametrize("command", ["chat", "monitor"])
def test_jobs_run_the_wheel_on_the_labs_cluster(dev: ProgramRun, command: str) -> None:
    job = _job(dev, command)
    (task,) = job.inputs["tasks"]
    assert task["existingClusterId"] == dev.one(CLUSTER).outputs["clusterId"], "on the cluster"
    (uploaded,) = dev.by_type(FILE)
    assert task["libraries"] == [{"whl": f"/Workspace{uploaded.inputs['path']}"}]
    wheel = task["pythonWheelTask"]
    assert wheel["packageName"] == "llmops-workload"
    assert wheel["entryPoint"] == "llmops-workload-job"
    arguments = ["--fail-on-drift"] if command == "monitor" else []
    assert wheel["parameters"] == [command, *arguments], "the cluster's environment has the rest"
    assert "environments" not in job.inputs and "environmentKey" not in task
    assert uploaded.urn in job.dependencies, "created after the wheel it installs"
    assert job.inputs["maxConcurrentRuns"] == 1


def test_chat_job_runs_on_demand_and_monitor_job_on_a_paused_schedule(dev: ProgramRun) -> None:
    assert "schedule" not in _job(dev, "chat").inputs, "chat runs when submitted"
    schedule = _job(dev, "monitor").inputs["schedule"]
    assert schedule["pauseStatus"] == "PAUSED", "created paused"
    assert (schedule["quartzCronExpression"], schedule["timezoneId"]) == ("0 0 6 * * ?", "UTC"), (
        "daily at 06:00 UTC"
    )


def test_lab_resources_live_in_the_new_workspace(dev: ProgramRun) -> None:
    provider = dev.one(PROVIDER)
    components = {r.name: r.urn for r in dev.resources if not r.custom}
    for type_, parent in [
        (SCOPE, "databricks-lab"),
        (SECRET, "databricks-lab"),
        (EXPERIMENT, "databricks-lab"),
        (FILE, "databricks-jobs"),
        (JOB, "databricks-jobs"),
    ]:
        for resource in dev.by_type(type_):
            assert resource.provider.startswith(provider.urn + "::"), resource.name
            assert resource.parent == components[parent], resource.name
    stack_urn = "urn:pulumi:dev::llmops::pulumi:pulumi:Stack::llmops-dev"
    for name in ("databricks-lab", "databricks-jobs"):
        assert dev.by_urn(components[name]).parent == stack_urn, (
            "each lab step composed in the stack"
        )


def test_new_outputs_name_the_scope_experiment_and_jobs(dev: ProgramRun) -> None:
    values = {name: export.value for name, export in dev.exports.items()}
    assert values[contract.DATABRICKS_SECRET_SCOPE] == "llmops"
    assert values[contract.MLFLOW_EXPERIMENT_PATH] == dev.one(EXPERIMENT).inputs["name"]
    assert values[contract.DATABRICKS_CHAT_JOB_ID] == _job(dev, "chat").id
    assert values[contract.DATABRICKS_MONITOR_JOB_ID] == _job(dev, "monitor").id
    for name in (
        "mlflow_experiment_path",
        "databricks_secret_scope",
        "databricks_chat_job_id",
        "databricks_monitor_job_id",
    ):
        assert not dev.exports[name].secret, f"{name} is not a secret"


# --- configuration -----------------------------------------------------------------------------


def test_configured_scope_and_experiment_reach_the_workspace(run: Run) -> None:
    result = run({"secretScope": "lab.keys_1", "experimentPath": "/Users/me@example.com/lab"})
    assert result.one(SCOPE).inputs["name"] == "lab.keys_1"
    assert result.one(CLUSTER).inputs["sparkEnvVars"]["AZURE_OPENAI_API_KEY"] == (
        "{{secrets/lab.keys_1/azure-openai-api-key}}"
    )
    assert result.one(EXPERIMENT).inputs["name"] == "/Users/me@example.com/lab"
    assert result.exports[contract.DATABRICKS_SECRET_SCOPE].value == "lab.keys_1"


def test_preview_shows_what_is_known_and_leaves_cloud_ids_unknown(run: Run) -> None:
    preview = run(preview=True)
    env = preview.one(CLUSTER).inputs["sparkEnvVars"]
    assert is_unknown(env["AZURE_OPENAI_API_KEY"]), "the reference exists once the secret does"
    assert preview.one(SCOPE).inputs["name"] == "llmops"
    assert len(preview.by_type(FILE)) == 1, "the workload's one wheel"
    assert is_unknown(preview.exports[contract.DATABRICKS_CHAT_JOB_ID].value)
    assert is_unknown(preview.exports[contract.DATABRICKS_MONITOR_JOB_ID].value)
    assert preview.exports[contract.MLFLOW_EXPERIMENT_PATH].value == "/Shared/llmops-lab"


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("secretScope", "my scope"),
        ("secretScope", "x" * 129),
        ("secretScope", "key/vault"),
        ("experimentPath", "llmops-lab"),
        ("experimentPath", "/Shared/"),
        ("experimentPath", "/Shared/llmops-lab/"),
        ("experimentPath", "/Repos/me/lab"),
        ("experimentPath", "/Users/me@example.com"),
        ("experimentPath", "/Shared//lab"),
    ],
)
def test_bad_scope_or_experiment_path_is_refused_with_what_is_allowed(key: str, bad: str) -> None:
    with pytest.raises(ConfigError, match=rf"llmops:{key} = .* is not valid: must") as failure:
        parse_config({key: bad}.get)
    assert repr(bad) in str(failure.value), "the message names the bad value"


def test_bad_lab_configuration_stops_before_any_resource(run: Run) -> None:
    with pytest.raises(ProgramFailed, match="llmops:experimentPath") as failure:
        run({"experimentPath": "lab"})
    assert failure.value.registered == 0


# --- the job's entry point ---------------------------------------------------------------------


def test_job_entry_puts_the_jobs_settings_in_the_environment_and_runs_the_command(
    mocker: MockerFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMOPS_TOKENS_PER_MINUTE", raising=False)
    seen: dict[str, str | None] = {}

    def cli(argv: list[str]) -> int:
        seen["tpm"] = os.environ.get("LLMOPS_TOKENS_PER_MINUTE")
        return 3

    mocker.patch("workload.cli.main", side_effect=cli)
    parameters = contract.job_parameters(
        ["monitor", "--fail-on-drift"], {"LLMOPS_TOKENS_PER_MINUTE": "10000"}
    )
    assert parameters == ["LLMOPS_TOKENS_PER_MINUTE=10000", "monitor", "--fail-on-drift"]
    assert job_entry.main(parameters) == 3, "the command's status"
    assert seen["tpm"] == "10000", "the setting is in the environment when the command runs"


def test_the_console_script_fails_the_run_only_on_failure(
    mocker: MockerFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = mocker.patch("workload.job_entry.main", autospec=True, return_value=0)
    monkeypatch.setattr(sys, "argv", ["llmops-workload-job", "chat"])
    assert job_entry.run() is None, "success raises nothing (not even SystemExit(0))"
    main.assert_called_once_with(["chat"])
    main.return_value = 1
    with pytest.raises(SystemExit) as failed:
        job_entry.run()
    assert failed.value.code == 1


def test_job_entry_without_arguments_says_how_to_call_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert job_entry.main([]) == 2
    assert "usage" in capsys.readouterr().err
