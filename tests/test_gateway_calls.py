"""`chat` and `eval` through the stack's AI Gateway: the fake workspace over a real socket.

Each scenario has its own fake Azure OpenAI behind its own fake Databricks
workspace (``tests/fake_databricks.py``), whose serving endpoints forward to it
with the Azure key as the real endpoints do. The commands run one after the other
in one child process (``tests/command_runner.py``), signed in with a
``DATABRICKS_TOKEN`` only; the stores are read back with MLflow's own client.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from command_runner import run_commands, workload_env
from fake_azure_openai import JOKE, FakeAzureOpenAI, Reply
from fake_databricks import FakeDatabricks, GatewayRequest

from llmops_infra.offline.engine import PROJECT_DIR
from workload import contract
from workload.config.settings import resolve_settings
from workload.errors import SettingsError

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

KEY = "azure-key-0123456789abcdef0123"
CHAT_ENDPOINT = "llmops-gpt-4o"
JUDGE_ENDPOINT = "llmops-gpt-4o-mini"
#: The gateway's limit for one user, and the deployments' own (much higher) limits.
GATEWAY_TPM = 30_000
DEPLOYMENT_TPM = 600_000
TAG = "llmops.via"

ROWS = [
    {
        "inputs": {"prompt": "Tell me a joke about cats."},
        "expectations": {"guidelines": ["Funny."]},
    },
    {"inputs": {"prompt": "Mail the joke to jane.doe@example.com, please."}},
    {
        "inputs": {"prompt": "Tell me a joke about owls."},
        "expectations": {"guidelines": ["Short."]},
    },
]


def _outputs(workspace: FakeDatabricks) -> dict[str, Any]:
    """A key-mode stack deployed with llmops:gateway true and a judge, as its outputs say."""
    return {
        contract.OPENAI_ENDPOINT: workspace.upstream.endpoint,
        contract.OPENAI_API_KEY: KEY,
        contract.OPENAI_API_VERSION: "2024-05-01-preview",
        contract.OPENAI_DEPLOYMENT: "gpt-4o",
        contract.OPENAI_TOKENS_PER_MINUTE: DEPLOYMENT_TPM,
        contract.OPENAI_JUDGE_DEPLOYMENT: "gpt-4o-mini",
        contract.OPENAI_JUDGE_TOKENS_PER_MINUTE: DEPLOYMENT_TPM,
        contract.DATABRICKS_WORKSPACE_URL: workspace.host,
        contract.DATABRICKS_SERVING_ENDPOINT: CHAT_ENDPOINT,
        contract.DATABRICKS_JUDGE_SERVING_ENDPOINT: JUDGE_ENDPOINT,
        contract.DATABRICKS_GATEWAY_TOKENS_PER_MINUTE: GATEWAY_TPM,
    }


@dataclass
class Scenario:
    """One command against its own workspace, its result and its store."""

    command: str
    args: list[str]
    workspace: FakeDatabricks
    user: str
    store: Path
    env: dict[str, str] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> list[GatewayRequest]:
        return self.workspace.requests

    def traces(self) -> list[Any]:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{self.store / 'mlflow.db'}")
        experiment = client.get_experiment_by_name(self.args[self.args.index("--experiment") + 1])
        assert experiment is not None, "the experiment was created"
        return list(client.search_traces(locations=[experiment.experiment_id]))


@pytest.fixture(scope="module")
def scenarios(
    tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[dict[str, Scenario]]:
    tmp = tmp_path_factory.mktemp("gateway")
    template = empty_mlflow_store
    dataset = tmp / "rows.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    runs: dict[str, Scenario] = {}

    def scenario(
        name: str, command: str, *args: str, can_query: bool = True, **fake: Any
    ) -> Scenario:
        azure = FakeAzureOpenAI(api_key=KEY, judge_deployment="gpt-4o-mini").start()
        workspace = FakeDatabricks(azure, **fake).start()
        workspace.add_endpoint(CHAT_ENDPOINT, "gpt-4o")
        workspace.add_endpoint(JUDGE_ENDPOINT, "gpt-4o-mini")
        user = f"{name}@example.com"
        token = workspace.add_user(user, can_query=can_query)
        store = tmp / name
        store.mkdir()
        shutil.copyfile(template, store / "mlflow.db")
        outputs = store / "outputs.json"
        outputs.write_text(json.dumps(_outputs(workspace)))
        run = Scenario(
            command,
            ["--outputs", str(outputs), "--experiment", name, *args],
            workspace,
            user,
            store,
            env={
                **workload_env(),
                "PYTHONPATH": str(PROJECT_DIR),
                "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
                "DATABRICKS_TOKEN": token,
            },
        )
        runs[name] = run
        return run

    scenario("chat", "chat", "--json")
    direct = scenario("direct", "chat", "--json", "--via", "direct")
    # The first answer is the per-user limit's 429 with Retry-After: 2.
    limited = scenario("limited", "chat", "--json", user_tpm=60_000)
    limited.workspace.spend(limited.user, CHAT_ENDPOINT, 60_000 + 2_000)
    # A 429 without Retry-After: the client backs off by itself.
    bare = scenario("bare", "chat", "--json")
    bare.workspace.script(Reply(429, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow"}))
    scenario("denied", "chat", can_query=False)
    scenario("refused", "chat", "--prompt", "Write to jane.doe@example.com", guardrails=True)
    scenario(
        "eval",
        "eval",
        "--json",
        "--dataset",
        str(dataset),
        "--max-tokens",
        "16",
        # The gateway's limit: 500 tokens a second, at most 50 at once, per endpoint.
        user_tpm=GATEWAY_TPM,
        window=0.1,
        guardrails=True,
    )
    scenario(
        "eval-denied", "eval", "--dataset", str(dataset), "--concurrency", "1", can_query=False
    )
    # The laptop reaching the model directly: the key from the outputs, not the gateway.
    direct.env["AZURE_OPENAI_ENDPOINT"] = direct.workspace.upstream.endpoint

    plan = {name: {"command": s.command, "args": s.args, "env": s.env} for name, s in runs.items()}
    results, _ = run_commands(plan, cwd=tmp, env={**workload_env(), "PYTHONPATH": str(PROJECT_DIR)})
    for name, result in results.items():
        runs[name].result = result
    yield runs
    for run in runs.values():
        run.workspace.stop()
        run.workspace.upstream.stop()


def _ok(run: Scenario) -> dict[str, Any]:
    assert run.result["code"] == 0, run.result["stderr"]
    parsed: dict[str, Any] = json.loads(run.result["stdout"])
    return parsed


def test_chat_goes_through_the_endpoint_with_the_callers_databricks_token(
    scenarios: dict[str, Scenario],
) -> None:
    run = scenarios["chat"]
    result = _ok(run)
    assert result["reply"] == JOKE and result["model"] == CHAT_ENDPOINT
    (request,) = run.requests
    assert request.path == "/serving-endpoints/chat/completions"
    assert request.body["model"] == CHAT_ENDPOINT, "the endpoint's name is the model"
    assert request.user == run.user, "signed in with DATABRICKS_TOKEN"
    assert request.headers["authorization"] == f"Bearer {run.env['DATABRICKS_TOKEN']}"
    assert "api-key" not in request.headers, "no api-key header through the gateway"
    assert not any(KEY in value for value in request.headers.values()), "the Azure key stays"
    (upstream,) = run.workspace.upstream.requests
    assert upstream.headers["Api-Key"] == KEY, "only the endpoint uses the key"
    (trace,) = run.traces()
    assert trace.info.tags[TAG] == "gateway"
    assert trace.info.trace_id == result["trace_id"]
    (span,) = trace.data.spans
    assert span.span_type == "CHAT_MODEL", "the trace keeps the chat call's shape"


def test_direct_chat_goes_to_azure_and_says_so(scenarios: dict[str, Scenario]) -> None:
    run = scenarios["direct"]
    assert _ok(run)["model"] == "gpt-4o"
    assert run.requests == [], "--via direct leaves the gateway alone"
    (upstream,) = run.workspace.upstream.requests
    assert upstream.path == "/openai/deployments/gpt-4o/chat/completions"
    (trace,) = run.traces()
    assert trace.info.tags[TAG] == "direct"


def test_the_per_user_limit_is_waited_out_as_retry_after_says(
    scenarios: dict[str, Scenario],
) -> None:
    run = scenarios["limited"]
    _ok(run)
    first, second = run.requests
    assert run.workspace.throttled == 1
    assert second.at - first.at >= 2.0, "the retry waited the 2 s Retry-After asked for"
    (trace,) = run.traces()
    assert trace.info.tags[TAG] == "gateway"


def test_a_429_without_retry_after_is_backed_off_and_retried(
    scenarios: dict[str, Scenario],
) -> None:
    run = scenarios["bare"]
    _ok(run)
    first, second = run.requests
    assert second.at > first.at


def test_a_caller_without_can_query_exits_1_saying_what_to_check(
    scenarios: dict[str, Scenario],
) -> None:
    run = scenarios["denied"]
    assert run.result["code"] == 1
    stderr = run.result["stderr"]
    line = stderr.splitlines()[-1]  # (MLflow's own line about the new experiment is above)
    assert "HTTP 403" in line and "CAN_QUERY" in line and CHAT_ENDPOINT in line, stderr
    assert "Traceback" not in stderr
    assert len(run.requests) == 1, "a 403 is not retried"
    assert run.workspace.upstream.requests == []


def test_a_request_the_guardrails_block_exits_1_saying_so(scenarios: dict[str, Scenario]) -> None:
    run = scenarios["refused"]
    assert run.result["code"] == 1
    assert "the gateway's guardrails refused it" in run.result["stderr"], run.result["stderr"]
    assert len(run.requests) == 1 and run.workspace.upstream.requests == []
    (trace,) = run.traces()
    assert trace.info.state.value == "ERROR" and trace.info.tags[TAG] == "gateway"


def test_eval_paces_by_the_gateways_limit_and_judges_on_the_judge_endpoint(
    scenarios: dict[str, Scenario],
) -> None:
    run = scenarios["eval"]
    result = _ok(run)
    assert (result["rows"], result["errors"]) == (3, 1)
    assert "the gateway's guardrails refused it" in result["last_error"], "the row's error"
    assert run.workspace.throttled == 0, "paced within the gateway's per-user limit"
    assert all(r.user == run.user and "api-key" not in r.headers for r in run.requests)
    rows = [r for r in run.requests if r.body["model"] == CHAT_ENDPOINT]
    judges = [r for r in run.requests if r.body["model"] == JUDGE_ENDPOINT]
    assert len(rows) == 3, "one request per row"
    assert len(judges) == 2, "the judges ask the judge endpoint about each row's guidelines"
    assert all("<guidelines>" in r.body["messages"][-1]["content"] for r in judges)
    traces = run.traces()
    assert len(traces) == 3, "one trace per row, none of the judges"
    assert {t.info.tags[TAG] for t in traces} == {"gateway"}

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run.store / 'mlflow.db'}")
    params = client.get_run(result["run_id"]).data.params
    # The pacer's budget (its spacing is proved in test_pacing.py on a clock the tests own:
    # arrival times here are the wall clock's, which a busy machine stretches unevenly).
    assert params["tokens_per_minute"] == str(GATEWAY_TPM), "the gateway's limit, not Azure's"
    assert params["requests_per_minute"] == str(GATEWAY_TPM * 6 // 1000), "Azure's ratio"
    assert params["deployment"] == CHAT_ENDPOINT and params["via"] == "gateway"


def test_eval_without_can_query_stops_at_once(scenarios: dict[str, Scenario]) -> None:
    run = scenarios["eval-denied"]
    assert run.result["code"] == 1
    assert "CAN_QUERY" in run.result["stderr"] and "HTTP 403" in run.result["stderr"]
    assert len(run.requests) == 1, "nothing more is sent after a 403"


def test_no_secret_reaches_the_output_or_the_store(scenarios: dict[str, Scenario]) -> None:
    for name, run in scenarios.items():
        token = run.env["DATABRICKS_TOKEN"]
        said = run.result["stdout"] + run.result["stderr"]
        assert KEY not in said and token not in said, name
        stored = (run.store / "mlflow.db").read_bytes()
        assert KEY.encode() not in stored and token.encode() not in stored, name


# --- the rules, without a process --------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "outputs", "expected"),
    [
        ({}, {contract.DATABRICKS_SERVING_ENDPOINT: "llmops-x"}, "gateway"),
        ({contract.ENV_GATEWAY_ENDPOINT: "llmops-x"}, {}, "gateway"),
        (
            {contract.ENV_VIA: "direct"},
            {contract.DATABRICKS_SERVING_ENDPOINT: "llmops-x"},
            "direct",
        ),
        ({}, {contract.DATABRICKS_SERVING_ENDPOINT: ""}, "direct"),
    ],
)
def test_the_default_way_follows_the_named_endpoint(
    env: dict[str, str], outputs: dict[str, Any], expected: str
) -> None:
    base = {
        "AZURE_OPENAI_ENDPOINT": "https://a.openai.azure.com/",
        "AZURE_OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
        "DATABRICKS_HOST": "https://adb-1.2.azuredatabricks.net",
    }
    assert resolve_settings(outputs, {**base, **env}).via == expected


def test_the_clusters_endpoint_wins_and_no_azure_setting_is_needed() -> None:
    settings = resolve_settings(
        {contract.DATABRICKS_SERVING_ENDPOINT: "llmops-a"},
        {contract.ENV_GATEWAY_ENDPOINT: "llmops-b", "DATABRICKS_RUNTIME_VERSION": "16.4.x"},
    )
    assert (settings.model, settings.endpoint, settings.api_key) == ("llmops-b", "", None)


@pytest.mark.parametrize(
    ("flag", "env", "message"),
    [
        ("gateway", {}, "LLMOPS_GATEWAY_ENDPOINT (or the stack output databricks_serving_endpoint"),
        (None, {contract.ENV_VIA: "sideways"}, "LLMOPS_VIA = 'sideways' is not one of gateway"),
        ("gateway", {"OPENAI_BASE_URL": "http://localhost:1"}, "OPENAI_BASE_URL selects"),
    ],
)
def test_a_way_that_cannot_work_is_exit_2_before_anything_is_sent(
    flag: str | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        resolve_settings(
            {contract.DATABRICKS_WORKSPACE_URL: "https://adb-1.azuredatabricks.net"}, env, via=flag
        )


def test_the_token_is_asked_for_before_every_request_even_after_a_client_copy(
    fake_azure_openai: FakeAzureOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expiring token (OAuth, az login) is renewed: the SDK's header factory is asked
    before each attempt, also by the copy the eval makes with its paced transport."""
    from databricks.sdk.core import Config

    from workload.model.auth import make_client

    with FakeDatabricks(fake_azure_openai) as workspace:
        workspace.add_endpoint(CHAT_ENDPOINT, fake_azure_openai.deployment)
        tokens = [workspace.add_user(f"user{i}@example.com") for i in range(3)]
        monkeypatch.setenv("DATABRICKS_TOKEN", tokens[0])
        handed = itertools.cycle(tokens)
        monkeypatch.setattr(
            Config, "authenticate", lambda self: {"Authorization": f"Bearer {next(handed)}"}
        )
        settings = resolve_settings(
            {
                contract.DATABRICKS_WORKSPACE_URL: workspace.host,
                contract.DATABRICKS_SERVING_ENDPOINT: CHAT_ENDPOINT,
            },
            {},
        )
        client = make_client(settings, max_retries=0, timeout=10)
        copy = client.with_options(timeout=5)
        for each in (client, copy, client):
            each.chat.completions.create(model=settings.model, messages=[])
        users = [r.user for r in workspace.requests]
        assert users == ["user1@example.com", "user2@example.com", "user0@example.com"]


def test_no_databricks_credential_is_exit_2(
    fake_azure_openai: FakeAzureOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from workload.model.auth import make_client

    for name in [n for n in os.environ if n.startswith(("DATABRICKS_", "ARM_", "AZURE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.databrickscfg
    monkeypatch.setenv("PATH", str(tmp_path))  # no az CLI
    with FakeDatabricks(fake_azure_openai) as workspace:
        settings = resolve_settings(
            {
                contract.DATABRICKS_WORKSPACE_URL: workspace.host,
                contract.DATABRICKS_SERVING_ENDPOINT: CHAT_ENDPOINT,
            },
            {},
        )
        with pytest.raises(SettingsError, match=r"no Databricks credential .* DATABRICKS_TOKEN"):
            make_client(settings, max_retries=0, timeout=5)
        assert [r.path for r in workspace.requests] == [], "nothing is sent to an endpoint"


def test_the_fake_serves_invocations_like_chat_completions(
    fake_azure_openai: FakeAzureOpenAI,
) -> None:
    """The endpoint's own REST path answers as the OpenAI-style one (the fake's contract)."""
    import httpx2

    with FakeDatabricks(fake_azure_openai) as workspace:
        workspace.add_endpoint(CHAT_ENDPOINT, fake_azure_openai.deployment)
        token = workspace.add_user("ann@example.com")
        body = {"messages": [{"role": "user", "content": "hi"}]}
        url = f"{workspace.host}/serving-endpoints/{CHAT_ENDPOINT}/invocations"
        answer = httpx2.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
        assert httpx2.post(url, json=body).status_code == 401, "no token, no answer"
