"""``llmops:compute serverless`` under the mocks: no cluster, the jobs run the wheel on
serverless compute with a pinned environment, their settings given as parameters, the
key only named (read at run time with ``dbutils.secrets``).

These runs use the region table as shipped, in which eastus2 offers serverless jobs and
switzerlandwest lacks them (the lab publisher's list); the table's own tests are in
``tests/test_region_features.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Callable, Iterator

import pytest
from fake_dbutils import MODULE, FakeDbutils, as_module

from llmops_infra.offline.engine import PROJECT_DIR, ProgramFailed, ProgramRun, Secret
from llmops_infra.offline.policy_check import PolicyAnalyzer
from workload import contract, job_entry
from workload.config.settings import resolve_settings
from workload.errors import SettingsError

Run = Callable[..., ProgramRun]
JOB = "databricks:index/job:Job"
FILE = "databricks:index/workspaceFile:WorkspaceFile"
CLUSTER = "databricks:index/cluster:Cluster"
SERVERLESS = {"compute": "serverless", "region": "eastus2"}


@pytest.fixture
def serverless(run: Run) -> ProgramRun:
    return run(SERVERLESS)


def _pins() -> dict[str, str]:
    lines = (PROJECT_DIR / "requirements.txt").read_text().splitlines()
    return {m[1]: m[0] for line in lines if (m := re.fullmatch(r"([\w.-]+)==(\S+)", line.strip()))}


def _settings(parameters: list[str]) -> dict[str, str]:
    return dict(p.split("=", 1) for p in parameters if "=" in p)


def test_no_cluster_and_the_jobs_run_the_wheel_in_a_pinned_environment(
    serverless: ProgramRun,
) -> None:
    assert not serverless.by_type(CLUSTER), "serverless: no cluster at all"
    (wheel,) = serverless.by_type(FILE)
    pins = _pins()
    expected = [
        f"/Workspace{wheel.inputs['path']}",
        *(pins[name] for name in ("openai", "mlflow", "azure-identity", "databricks-sdk")),
        pins["scipy"],
        pins["matplotlib"],
    ]
    jobs = serverless.by_type(JOB)
    assert len(jobs) == 3
    for job in jobs:
        (environment,) = job.inputs["environments"]
        assert environment["environmentKey"] == "workload"
        assert environment["spec"]["environmentVersion"] == "5", "a current version, pinned"
        assert environment["spec"]["dependencies"] == expected, "the wheel and exact versions"
        (task,) = job.inputs["tasks"]
        assert task["environmentKey"] == "workload"
        assert "existingClusterId" not in task and "libraries" not in task
        assert task["pythonWheelTask"]["packageName"] == "llmops-workload"
        assert task["pythonWheelTask"]["entryPoint"] == "llmops-workload-job"
        assert wheel.urn in job.dependencies


def test_the_jobs_get_the_clusters_settings_and_only_the_secrets_name(
    run: Run, serverless: ProgramRun
) -> None:
    cluster_env = run({"region": "eastus2"}).one(CLUSTER).inputs["sparkEnvVars"]
    chat = next(j for j in serverless.by_type(JOB) if j.name == "databricks-jobs-chat")
    parameters = chat.inputs["tasks"][0]["pythonWheelTask"]["parameters"]
    assert parameters[-1] == "chat", "the command comes after the settings"
    settings = _settings(parameters)
    expected = {k: v for k, v in cluster_env.items() if k != contract.ENV_API_KEY}
    expected[contract.ENV_API_KEY_SECRET] = f"llmops/{contract.OPENAI_KEY_SECRET}"
    assert settings == expected, "what the cluster's environment carries, the key only named"
    monitor = next(j for j in serverless.by_type(JOB) if j.name == "databricks-jobs-monitor")
    assert monitor.inputs["tasks"][0]["pythonWheelTask"]["parameters"][-2:] == [
        "monitor",
        "--fail-on-drift",
    ]


def test_no_key_or_secret_reference_in_any_job(serverless: ProgramRun) -> None:
    key = serverless.one("databricks:index/secret:Secret").inputs["stringValue"]
    assert isinstance(key, Secret)
    for job in serverless.by_type(JOB):
        text = json.dumps(job.inputs, default=str)
        assert key.value not in text, f"{job.name} holds the key"
        assert "{{secrets/" not in text, f"{job.name} holds a secret reference"


def test_keyless_serverless_stops_before_any_resource_saying_why(run: Run) -> None:
    """A serverless job cannot get a service credential's token (the SDK's dbutils marks
    getServiceCredentialsProvider unsupported there): refused, as gateway with entra is."""
    with pytest.raises(ProgramFailed) as caught:
        run({**SERVERLESS, "authMode": "entra"})
    assert caught.value.registered == 0, "stopped before any resource is registered"
    message = str(caught.value)
    assert "\n" not in message, message
    for needle in ("llmops:compute = 'serverless'", "authMode entra", "dbutils.credentials"):
        assert needle in message, f"{needle!r} in {message!r}"
    assert "compute cluster" in message and "authMode key" in message, "what is allowed"


def test_serverless_jobs_through_the_gateway_name_the_endpoints_and_no_secret(run: Run) -> None:
    both = run({**SERVERLESS, "gateway": "true", "judgeModel": "gpt-4o-mini"})
    for job in both.by_type(JOB):
        settings = _settings(job.inputs["tasks"][0]["pythonWheelTask"]["parameters"])
        assert settings[contract.ENV_GATEWAY_ENDPOINT] == "llmops-gpt-4o"
        assert settings[contract.ENV_GATEWAY_JUDGE_ENDPOINT] == "llmops-gpt-4o-mini"
        assert contract.ENV_API_KEY_SECRET not in settings, "only the endpoint reads the key"
        assert contract.ENV_API_KEY not in settings
        assert "{{secrets/" not in json.dumps(job.inputs)


def test_outputs_say_serverless_and_no_cluster(serverless: ProgramRun, dev: ProgramRun) -> None:
    assert serverless.exports["databricks_compute"].value == "serverless"
    assert serverless.exports["databricks_cluster_id"].value == ""
    assert dev.exports["databricks_compute"].value == "cluster"
    assert dev.exports["databricks_cluster_id"].value != ""


def test_a_region_without_serverless_jobs_stops_before_anything(run: Run) -> None:
    with pytest.raises(ProgramFailed, match="switzerlandwest does not offer serverless jobs") as no:
        run({"compute": "serverless", "region": "switzerlandwest"})
    assert no.value.registered == 0


def test_a_second_serverless_up_with_nothing_changed_changes_nothing(run: Run) -> None:
    first = run(SERVERLESS, stack="idem")
    second = run(SERVERLESS, stack="idem", seed="another-machine", state=first)
    assert {r.urn: r.inputs for r in first.resources} == {r.urn: r.inputs for r in second.resources}


# --- the workload's side: the key read at run time -------------------------------------------


@pytest.fixture
def dbutils(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDbutils]:
    fake = FakeDbutils({}, {("llmops", contract.OPENAI_KEY_SECRET): "k" * 32})
    monkeypatch.setitem(sys.modules, MODULE, as_module(fake))
    yield fake


ENV = {
    contract.ENV_ENDPOINT: "https://oai.openai.azure.com/",
    contract.ENV_API_VERSION: "2024-05-01-preview",
    contract.ENV_DEPLOYMENT: "gpt-4o",
}


def test_the_key_is_read_from_the_secret_the_job_names(dbutils: FakeDbutils) -> None:
    env = {**ENV, contract.ENV_API_KEY_SECRET: f"llmops/{contract.OPENAI_KEY_SECRET}"}
    settings = resolve_settings({}, env)
    assert settings.api_key == "k" * 32
    assert dbutils.secrets_read == [("llmops", contract.OPENAI_KEY_SECRET)]
    assert "k" * 32 not in repr(settings)


def test_a_missing_secret_is_one_line_naming_scope_and_key(dbutils: FakeDbutils) -> None:
    with pytest.raises(SettingsError, match="'nope' of scope 'llmops' is not readable"):
        resolve_settings({}, {**ENV, contract.ENV_API_KEY_SECRET: "llmops/nope"})
    with pytest.raises(SettingsError, match="is not <scope>/<key>"):
        resolve_settings({}, {**ENV, contract.ENV_API_KEY_SECRET: "llmops"})


def test_a_key_in_the_environment_wins_and_no_secret_is_read(dbutils: FakeDbutils) -> None:
    env = {**ENV, contract.ENV_API_KEY: "e" * 32, contract.ENV_API_KEY_SECRET: "llmops/x"}
    assert resolve_settings({}, env).api_key == "e" * 32
    assert dbutils.secrets_read == []


@pytest.fixture
def environ_restored() -> Iterator[None]:
    """job_entry writes the job's settings into os.environ: put it back for the next test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.usefixtures("environ_restored")
def test_a_serverless_jobs_parameters_reach_the_settings(
    dbutils: FakeDbutils, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [*ENV, contract.ENV_API_KEY, contract.ENV_API_KEY_SECRET]:
        monkeypatch.delenv(name, raising=False)
    seen: dict[str, object] = {}

    def cli(argv: list[str]) -> int:
        seen["key"] = resolve_settings({}, dict(os.environ)).api_key
        seen["argv"] = argv
        return 0

    monkeypatch.setattr("workload.cli.main", cli)
    settings = {**ENV, contract.ENV_API_KEY_SECRET: f"llmops/{contract.OPENAI_KEY_SECRET}"}
    assert job_entry.main(contract.job_parameters(["chat"], settings)) == 0
    assert seen == {"key": "k" * 32, "argv": ["chat"]}


def test_the_policy_pack_wants_a_serverless_environment_pinned(serverless: ProgramRun) -> None:
    with PolicyAnalyzer(PROJECT_DIR / "policy") as pack:
        assert not [v for v in pack.analyze(serverless.resources) if v.level == "mandatory"]
        chat = next(j for j in serverless.by_type(JOB) if j.name == "databricks-jobs-chat")
        (environment,) = chat.inputs["environments"]
        loose = {
            **environment,
            "spec": {"dependencies": [*environment["spec"]["dependencies"], "openai"]},
        }
        resources = [
            dataclasses.replace(r, inputs={**r.inputs, "environments": [loose]}) if r is chat else r
            for r in serverless.resources
        ]
        violations = [v for v in pack.analyze(resources) if v.level == "mandatory"]
    assert {v.policy for v in violations} == {"serverless-pinned-dependencies"}
    text = " ".join(v.message for v in violations)
    assert "'openai' unpinned" in text and "no environmentVersion" in text
