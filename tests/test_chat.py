"""`python -m workload chat` end to end: the fake Azure OpenAI, a real MLflow store, read back.

The lab's cell runs exactly as a user runs it, `python -m workload chat` in a
process of its own. The other scenarios (429 and a timeout then success, a
permanent 500, a 401, an answer that is not JSON, an OpenAI-compatible server)
run one after the other in a second process through ``workload.cli.main``, what
``python -m workload`` calls, each with its own environment, server and
experiment: MLflow's start-up costs seconds a process. Both processes run at
once; each test then checks one scenario in the store.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from command_runner import run_commands, workload_env
from fake_azure_openai import JOKE, FakeAzureOpenAI, Reply

from llmops_infra.offline.engine import PROJECT_DIR, ProgramRun
from workload import contract
from workload.config.settings import resolve_settings

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

KEY = "test-key-5f1c0ffee0123456789"


@dataclass
class Scenario:
    """One run of the command: its server, its store, its result."""

    fake: FakeAzureOpenAI
    store: Path
    args: list[str]
    env: dict[str, str]
    key: str = KEY
    experiment: str = "llmops-lab"
    code: int = -1
    stdout: str = ""
    stderr: str = ""
    #: Everything the process printed, this scenario's or not (MLflow's log lines, say).
    process_output: str = ""

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.store / 'mlflow.db'}"


def _scenario(store: Path, *args: str, key: str = KEY, **env: str) -> Scenario:
    fake = FakeAzureOpenAI(api_key=key).start()
    given_key = env.get("AZURE_OPENAI_API_KEY") or key
    scenario = Scenario(fake, store, list(args), workload_env(), given_key)
    if "--experiment" in args:
        scenario.experiment = args[args.index("--experiment") + 1]
    scenario.env.update(
        {
            "MLFLOW_TRACKING_URI": scenario.tracking_uri,
            "AZURE_OPENAI_ENDPOINT": fake.endpoint,
            "AZURE_OPENAI_API_KEY": key,
            "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
            "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
            "PYTHONPATH": str(PROJECT_DIR),
        }
    )
    scenario.env.update(env)
    for variable in [k for k, v in env.items() if v == ""]:
        del scenario.env[variable]
    return scenario


@pytest.fixture(scope="module")
def outputs_file(tmp_path_factory: pytest.TempPathFactory, dev: ProgramRun) -> Path:
    """The program's exports under the mocks, as `pulumi stack output --json --show-secrets`."""
    path = tmp_path_factory.mktemp("outputs") / "outputs.json"
    path.write_text(json.dumps(dev.stack_output_json(show_secrets=True)))
    return path


#: Runs each scenario of a JSON plan through workload.cli.main; prints their results as JSON.


@pytest.fixture(scope="module")
def scenarios(
    tmp_path_factory: pytest.TempPathFactory, outputs_file: Path, empty_mlflow_store: Path
) -> Iterator[dict[str, Scenario]]:
    tmp = tmp_path_factory.mktemp("chat")
    exported = json.loads(outputs_file.read_text())
    template = empty_mlflow_store
    stores = {"lab": tmp / "lab", "shared": tmp / "shared"}
    for store in stores.values():
        store.mkdir()
        shutil.copyfile(template, store / "mlflow.db")
    shared = stores["shared"]
    runs = {
        "lab": _scenario(stores["lab"]),
        # The program's own exports feed the command; only the endpoint is redirected here.
        "contract": _scenario(
            shared,
            "--json",
            "--experiment",
            "contract",
            "--outputs",
            str(outputs_file),
            "--timeout",
            "2",
            key=exported[contract.OPENAI_API_KEY],
            AZURE_OPENAI_API_KEY="",
            AZURE_OPENAI_API_VERSION="",
            AZURE_OPENAI_DEPLOYMENT="",
        ),
        "down": _scenario(shared, "--json", "--experiment", "down", "--max-retries", "1"),
        "garbled": _scenario(shared, "--experiment", "garbled"),
        "throttled": _scenario(shared, "--experiment", "throttled"),
        "one_letter_key": _scenario(shared, "--experiment", "one-letter", AZURE_OPENAI_API_KEY="k"),
        "denied": _scenario(
            shared, "--json", "--experiment", "denied", AZURE_OPENAI_API_KEY="wrong-key-0123456789"
        ),
        "compatible": _scenario(
            shared,
            "--json",
            "--experiment",
            "compatible",
            "--model",
            "llama3",
            "--prompt",
            "Tell me a joke about cats.",
        ),
    }
    # The contract run also meets the deployment's rate limit (429) and a slow answer (cut at
    # --timeout), then succeeds.
    runs["contract"].fake.script(Reply.rate_limited(retry_after="0.01"), Reply.slow(4.0))
    runs["down"].fake.script(*[Reply.server_error(500)] * 5)
    runs["garbled"].fake.script(Reply.garbled())
    runs["throttled"].fake.script(Reply.rate_limited("0.01"), Reply.rate_limited("1"))
    compatible = runs["compatible"]
    compatible.env.update({"OPENAI_BASE_URL": compatible.fake.base_url, "OPENAI_API_KEY": KEY})

    lab = runs["lab"]
    lab_process = subprocess.Popen(
        [sys.executable, "-m", "workload", "chat", *lab.args],
        cwd=lab.store,
        env=lab.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    plan = {
        name: {"command": "chat", "args": s.args, "env": s.env}
        for name, s in runs.items()
        if name != "lab"
    }
    results, output = run_commands(
        plan, cwd=shared, env={**workload_env(), "PYTHONPATH": str(PROJECT_DIR)}, timeout=300
    )
    lab.stdout, lab.stderr = lab_process.communicate(timeout=300)
    lab.code = lab_process.returncode
    lab.process_output = lab.stdout + lab.stderr
    for name, result in results.items():
        scenario = runs[name]
        scenario.code, scenario.stdout, scenario.stderr = (
            result["code"],
            result["stdout"],
            result["stderr"],
        )
        scenario.process_output = output
    yield runs
    for scenario in runs.values():
        scenario.fake.stop()


def _client(scenario: Scenario):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=scenario.tracking_uri)


def _traces(scenario: Scenario, **search: str) -> list:  # type: ignore[type-arg]
    # The client, not mlflow.search_traces: mlflow.set_tracking_uri would leak into other tests.
    client = _client(scenario)
    experiment = client.get_experiment_by_name(scenario.experiment)
    assert experiment is not None, f"experiment {scenario.experiment} was created"
    return list(client.search_traces(locations=[experiment.experiment_id], **search))


def _only_run(scenario: Scenario):  # type: ignore[no-untyped-def]
    client = _client(scenario)
    experiment = client.get_experiment_by_name(scenario.experiment)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, "one run per call"
    return runs[0]


def test_lab_cell_end_to_end(scenarios: dict[str, Scenario]) -> None:
    lab = scenarios["lab"]
    assert lab.code == 0, lab.stderr
    assert lab.stdout.strip() == JOKE, "the reply is printed, bare"
    request = lab.fake.requests[0]
    assert request.path == "/openai/deployments/gpt-4o/chat/completions"
    assert request.query["api-version"] == ["2024-05-01-preview"]
    assert request.body["messages"] == [
        {"role": "system", "content": "Assistant is a large language model trained by OpenAI."},
        {"role": "user", "content": "Tell me a joke about animals."},
    ]

    run = _only_run(lab)
    assert run.info.status == "FINISHED"
    usage = lab.fake.completion(request.body)["usage"]
    assert run.data.params == {"completion_tokens": str(usage["completion_tokens"])}
    assert run.data.metrics == {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
    }

    (trace,) = _traces(lab)
    assert trace.info.state.value == "OK"
    assert trace.info.trace_metadata["mlflow.sourceRun"] == run.info.run_id, "trace in the run"
    assert [t.info.trace_id for t in _traces(lab, run_id=run.info.run_id)] == [
        trace.info.trace_id
    ], "the run finds its trace"
    assert "Tell me a joke about animals." in trace.info.request_preview
    (span,) = trace.data.spans
    assert span.span_type == "CHAT_MODEL"
    assert span.inputs["messages"][1]["content"] == "Tell me a joke about animals."
    assert span.outputs["choices"][0]["message"]["content"] == JOKE
    assert trace.info.token_usage == {
        "input_tokens": usage["prompt_tokens"],
        "output_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
    }


def test_rate_limit_and_timeout_are_retried_then_succeed(scenarios: dict[str, Scenario]) -> None:
    retry = scenarios["contract"]
    assert retry.code == 0, retry.stderr
    result = json.loads(retry.stdout)
    assert {"reply", "run_id", "trace_id", "completion_tokens"} <= set(result)
    assert result["reply"] == JOKE
    assert len(retry.fake.requests) == 3, "a 429, a reply slower than --timeout, then success"
    assert _only_run(retry).info.run_id == result["run_id"]
    (trace,) = _traces(retry)
    assert trace.info.trace_id == result["trace_id"]


def test_each_retry_is_said_on_stderr_as_it_waits(scenarios: dict[str, Scenario]) -> None:
    throttled = scenarios["throttled"]
    assert throttled.code == 0, throttled.stderr
    assert [line for line in throttled.stderr.splitlines() if "retrying" in line] == [
        "429, retrying in 0.01 s (1/5)",
        "429, retrying in 1 s (2/5)",
    ], "one line per retry: what the attempt met, the SDK's wait (Retry-After), the count"
    assert len(throttled.fake.requests) == 3
    contract_lines = [
        line for line in scenarios["contract"].stderr.splitlines() if "retrying" in line
    ]
    assert contract_lines[0] == "429, retrying in 0.01 s (1/5)"
    assert re.fullmatch(r"timed out, retrying in [0-9.]+ s \(2/5\)", contract_lines[1])


def test_a_one_letter_key_masks_no_letter_inside_a_word(scenarios: dict[str, Scenario]) -> None:
    refused = scenarios["one_letter_key"]
    assert refused.code == 1
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "[secret]" not in line, "no k inside 'key' or 'check' is taken for the key"
    assert line.endswith("(check the API key)"), line


def test_permanent_server_error_fails_the_run_and_keeps_the_error(
    scenarios: dict[str, Scenario],
) -> None:
    down = scenarios["down"]
    assert down.code == 1
    assert down.stdout == ""
    assert "HTTP 500" in down.stderr
    assert "Traceback" not in down.stderr
    assert len(down.fake.requests) == 2, "the first try and one retry"
    assert _only_run(down).info.status == "FAILED", "the run is ended, as FAILED"
    (trace,) = _traces(down)
    assert trace.info.state.value == "ERROR"
    events = [e for span in trace.data.spans for e in span.events]
    assert any(e.name == "exception" and "500" in str(e.attributes) for e in events), (
        "the trace keeps the error"
    )


def test_an_answer_that_is_not_json_fails_cleanly(scenarios: dict[str, Scenario]) -> None:
    garbled = scenarios["garbled"]
    assert garbled.code == 1
    assert "not JSON" in garbled.stderr and "Traceback" not in garbled.stderr, garbled.stderr
    assert len(garbled.fake.requests) == 1, "a 200 is not retried"
    assert _only_run(garbled).info.status == "FAILED"
    (trace,) = _traces(garbled)
    assert trace.info.state.value == "ERROR", "the trace keeps the parse error"


def test_unauthorized_fails_at_once(scenarios: dict[str, Scenario]) -> None:
    denied = scenarios["denied"]
    assert denied.code == 1
    assert "HTTP 401" in denied.stderr and "check the API key" in denied.stderr
    assert len(denied.fake.requests) == 1, "401 is not retried"
    assert _only_run(denied).info.status == "FAILED"
    (trace,) = _traces(denied)
    assert trace.info.state.value == "ERROR"


def test_openai_compatible_server_is_traced_the_same_way(scenarios: dict[str, Scenario]) -> None:
    compatible = scenarios["compatible"]
    assert compatible.code == 0, compatible.stderr
    request = compatible.fake.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "llama3"
    assert request.body["messages"][1]["content"] == "Tell me a joke about cats."
    assert request.headers["authorization"] == f"Bearer {KEY}"
    run = _only_run(compatible)
    assert (run.info.status, set(run.data.params)) == ("FINISHED", {"completion_tokens"})
    (trace,) = _traces(compatible)
    assert trace.info.trace_metadata["mlflow.sourceRun"] == run.info.run_id
    assert trace.data.spans[0].span_type == "CHAT_MODEL"


def test_the_programs_exports_are_what_the_workload_reads(
    scenarios: dict[str, Scenario], outputs_file: Path
) -> None:
    exported = json.loads(outputs_file.read_text())
    assert set(exported) <= set(contract.ALL_OUTPUTS), "the program exports only contract names"
    assert contract.OPENAI_API_KEY in exported, "a key-mode stack exports its key"
    settings = resolve_settings(exported, {})
    assert settings.endpoint == exported[contract.OPENAI_ENDPOINT]
    assert settings.api_key == exported[contract.OPENAI_API_KEY]
    assert settings.model == exported[contract.OPENAI_DEPLOYMENT]
    run = scenarios["contract"]
    assert run.code == 0, run.stderr
    request = run.fake.requests[-1]
    assert request.headers["api-key"] == exported[contract.OPENAI_API_KEY]
    assert (
        request.path
        == f"/openai/deployments/{exported[contract.OPENAI_DEPLOYMENT]}/chat/completions"
    )
    assert request.query["api-version"] == [exported[contract.OPENAI_API_VERSION]]


def test_the_key_appears_nowhere(scenarios: dict[str, Scenario]) -> None:
    for name, scenario in scenarios.items():
        if len(scenario.key) < 8:
            continue  # a one-letter key is in every word: its own test is the one above
        sent = scenario.fake.requests[0].headers.values()
        assert any(scenario.key in value for value in sent), f"{name}: the key was sent"
        assert scenario.key not in scenario.process_output, name
        # The whole store: the sqlite file (runs, params, tags, spans) and any artifacts.
        stored = [path.read_bytes() for path in scenario.store.rglob("*") if path.is_file()]
        assert any(b"Tell me a joke about" in data for data in stored), f"{name}: trace stored"
        assert not any(scenario.key.encode() in data for data in stored), name


def test_missing_settings_exit_2_and_send_nothing(tmp_path: Path) -> None:
    with FakeAzureOpenAI() as fake:
        env = workload_env()
        env["AZURE_OPENAI_ENDPOINT"] = fake.endpoint
        env["PYTHONPATH"] = str(PROJECT_DIR)
        done = subprocess.run(
            [sys.executable, "-m", "workload", "chat"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert "AZURE_OPENAI_API_KEY" in done.stderr and "AZURE_OPENAI_DEPLOYMENT" in done.stderr
        assert fake.requests == [], "no request is sent"
        assert not (tmp_path / "mlflow.db").exists(), "no run is started"


def test_malformed_outputs_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "outputs.json"
    bad.write_text("{ this is not json")
    env = workload_env()
    env["PYTHONPATH"] = str(PROJECT_DIR)
    done = subprocess.run(
        [sys.executable, "-m", "workload", "chat", "--outputs", str(bad)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "is not the JSON of `pulumi stack output" in done.stderr
    assert done.stderr.count("\n") == 1


def test_help_does_not_import_mlflow_or_openai() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from workload.cli import main\n"
        "for argv in (['--help'], ['chat', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "print(sorted(m for m in ('mlflow', 'openai') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.strip() == "[]", "--help stays quick: no mlflow, no openai"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply.rate_limited(), "HTTP 429 Too Many Requests: Requests to the ChatCompletions"),
        (Reply.server_error(503), "HTTP 503 Service Unavailable: boom"),
        (Reply(401, {"error": {"code": "401", "message": "Access denied"}}), "check the API key"),
        (Reply(404, {"error": {"code": "DeploymentNotFound"}}), "check the endpoint, the deploy"),
        (Reply.slow(3.0), "the chat call timed out"),
        (Reply.garbled(), "the service answered with a body that is not JSON"),
    ],
)
def test_a_failed_call_is_one_line_with_its_status(
    fake_azure_openai: FakeAzureOpenAI, reply: Reply, expected: str
) -> None:
    import openai

    from workload.model.chat import _describe, make_client

    settings = resolve_settings(
        {},
        {
            "AZURE_OPENAI_ENDPOINT": fake_azure_openai.endpoint,
            "AZURE_OPENAI_API_KEY": fake_azure_openai.api_key,
            "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
            "AZURE_OPENAI_DEPLOYMENT": fake_azure_openai.deployment,
        },
    )
    client = make_client(settings, max_retries=0, timeout=1.0)
    fake_azure_openai.script(reply)
    with pytest.raises((openai.OpenAIError, ValueError)) as failure:  # what traced_chat catches
        client.chat.completions.create(model=settings.model, messages=[])
    line = _describe(failure.value, settings.api_key)
    assert expected in line
    assert "\n" not in line and settings.api_key not in line


def test_an_unreachable_service_is_named(tmp_path: Path) -> None:
    import socket

    import openai

    from workload.model.chat import _describe, make_client

    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "AZURE_OPENAI_ENDPOINT": f"http://127.0.0.1:{port}/",
        "AZURE_OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
    }
    settings = resolve_settings({}, env)
    client = make_client(settings, max_retries=0, timeout=5.0)
    with pytest.raises(openai.APIConnectionError) as failure:
        client.chat.completions.create(model=settings.model, messages=[])
    line = _describe(failure.value, KEY)
    assert line.startswith("could not reach the service: ConnectError"), line


def test_an_unknown_option_shows_the_commands_own_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from workload.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["chat", "--bogus"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "python -m workload chat: error: unrecognized arguments: --bogus" in err
    assert "--prompt TEXT" in err, "chat's usage, not the list of commands"
