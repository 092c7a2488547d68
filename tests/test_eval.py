"""`python -m workload eval` end to end: the fake Azure OpenAI enforcing Azure's rate limits,
a real MLflow store read back with MLflow's client.

The judged evaluation runs as a user runs it, `python -m workload eval` in a
process of its own (stdout must hold the JSON alone). The other scenarios run one
after the other in a second process through ``workload.cli.main``, each with its
own server and experiment in one shared store (MLflow's start-up costs seconds a
process); both processes run at once, then each test checks one scenario.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from command_runner import run_commands, workload_env
from fake_azure_openai import FakeAzureOpenAI, Reply, is_judge_prompt

from llmops_infra.offline.engine import PROJECT_DIR
from workload.config.defaults import LAB_USER_PROMPT
from workload.errors import SettingsError
from workload.evaluation.dataset import load_dataset, parse_dataset

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

KEY = "test-key-eval-0123456789abcdef"
#: The Entra ID token of the keyless scenarios (AZURE_OPENAI_AD_TOKEN).
AD_TOKEN = "entra-token-eval-0123456789abcdef"
JUDGE = "gpt-4o-judge"
#: Limits of the fake in the scenarios that must see no 429: 1,000 tokens and 60 requests a
#: second, each bucket holding one second's worth (Azure's windows, scaled down in time).
TPM = 60_000

#: Six rows; five carry guidelines, one of them one the fake's judge says "no" to.
ROWS = [
    {"inputs": {"prompt": "Tell me a joke about cats."}, "expectations": {"guidelines": [
        "The response is a joke about cats."]}},
    {"inputs": {"prompt": "Tell me a joke about dogs."}, "expectations": {"guidelines": [
        "The response is a joke about dogs."]}},
    {"inputs": {"prompt": "Tell me a joke about owls.", "system_prompt": "You are terse."},
     "expectations": {"guidelines": ["The response is short."]}},
    {"inputs": {"prompt": "Tell me a joke about penguins."}, "expectations": {"guidelines": [
        "The response is about PENGUINS only."]}},
    {"inputs": {"prompt": "Tell me a joke about fish."}, "expectations": {"guidelines": [
        "The response is suitable for all ages."]}},
    {"inputs": {"prompt": "Tell me a joke about frogs."}},
]  # fmt: skip


#: The fake's service time in the latency scenario (seconds), and its calls on each side.
SERVICE = 0.3
LATENCY_CALLS = 8
#: The eval's pacing there: one request every 60/120 = 0.5 s, eight rows in flight at once,
#: so the last row waits 3.5 s for its slot, over ten times the service time.
LATENCY_RPM = 120


def _says_no_to_penguins(prompt: str) -> bool:
    return "PENGUINS" not in prompt


@dataclass
class Scenario:
    """One run of a command: its server, its arguments, its result."""

    fake: FakeAzureOpenAI
    args: list[str]
    env: dict[str, str]
    experiment: str
    command: str = "eval"
    code: int = -1
    stdout: str = ""
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def _scenario(
    store: Path, experiment: str, fake: FakeAzureOpenAI, *args: str, **env: str
) -> Scenario:
    scenario = Scenario(fake, ["--experiment", experiment, *args], workload_env(), experiment)
    scenario.env.update(
        {
            "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
            "AZURE_OPENAI_ENDPOINT": fake.endpoint,
            "AZURE_OPENAI_API_KEY": KEY,
            "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
            "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
            "PYTHONPATH": str(PROJECT_DIR),
            **env,
        }
    )
    return scenario


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def scenarios(
    tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[dict[str, Scenario]]:
    tmp = tmp_path_factory.mktemp("eval")
    template = empty_mlflow_store
    stores = {"judged": tmp / "judged", "shared": tmp / "shared"}
    for store in stores.values():
        store.mkdir()
        shutil.copyfile(template, store / "mlflow.db")
    shared = stores["shared"]
    dataset = str(_write(tmp / "rows.jsonl", ROWS))
    no_judge_rows = str(_write(tmp / "plain.jsonl", [{"inputs": r["inputs"]} for r in ROWS]))
    bad = tmp / "bad.jsonl"
    bad.write_text(
        json.dumps(ROWS[0]) + "\n\n" + '{"inputs": {"question": "no prompt"}}\n{not json\n'
    )
    big = str(_write(tmp / "big.jsonl", [{"inputs": r["inputs"]} for r in ROWS + ROWS]))
    lab = str(_write(tmp / "lab.jsonl", [{"inputs": {"prompt": LAB_USER_PROMPT}}] * LATENCY_CALLS))

    def fake(**limits: Any) -> FakeAzureOpenAI:
        return FakeAzureOpenAI(api_key=KEY, window=1.0, **limits).start()

    small = ("--max-tokens", "32", "--judge-max-tokens", "64", "--json")
    # For a fake without limits: the default budget (10K TPM) would only make the test slow.
    unpaced = ("--tpm", "6000000")
    runs: dict[str, Scenario] = {
        # A judge deployment of its own, each deployment with its own budget.
        "judged": _scenario(
            stores["judged"],
            "judged",
            fake(
                tpm=TPM,
                judge_deployment=JUDGE,
                judge_tpm=TPM,
                judge_verdict=_says_no_to_penguins,
            ),
            "--dataset",
            dataset,
            "--tpm",
            str(TPM),
            "--judge-tpm",
            str(TPM),
            "--guideline",
            "The response is kind.",
            "--fail-under",
            "reply_received=1.0",
            *small,
            LLMOPS_JUDGE_DEPLOYMENT=JUDGE,
        ),
        "no_judge": _scenario(
            shared,
            "no_judge",
            fake(tpm=TPM),
            "--dataset",
            dataset,
            "--tpm",
            str(TPM),
            "--no-judge",
            "--fail-under",
            "within_completion_budget=1",
            *small,
        ),
        # Told ten times the fake's budget, the pacer lets bursts through: 429s, then
        # Retry-After is honoured and every row still succeeds.
        "burst": _scenario(
            shared,
            "burst",
            fake(tpm=30_000),
            "--dataset",
            big,
            "--tpm",
            "300000",
            "--concurrency",
            "8",
            "--max-retries",
            "20",
            "--no-judge",
            "--max-tokens",
            "200",
            "--json",
        ),
        "gate_fails": _scenario(
            shared,
            "gate_fails",
            fake(),
            *unpaced,
            "--dataset",
            no_judge_rows,
            "--no-judge",
            "--max-tokens",
            "5",
            "--fail-under",
            "within_completion_budget=0.5",
            "--json",
        ),
        "unknown_gate": _scenario(
            shared,
            "unknown_gate",
            fake(),
            "--dataset",
            dataset,
            "--no-judge",
            "--fail-under",
            "expectations_guidelines=0.9",
        ),
        "bad_line": _scenario(shared, "bad_line", fake(), "--dataset", str(bad)),
        "row_error": _scenario(
            shared,
            "row_error",
            fake(),
            *unpaced,
            "--dataset",
            no_judge_rows,
            "--no-judge",
            "--concurrency",
            "1",
            "--max-retries",
            "1",
            "--json",
        ),
        "all_failed": _scenario(
            shared,
            "all_failed",
            fake(),
            *unpaced,
            "--dataset",
            no_judge_rows,
            "--no-judge",
            "--max-retries",
            "0",
        ),
        "denied": _scenario(
            shared,
            "denied",
            fake(),
            *unpaced,
            "--dataset",
            dataset,
            "--concurrency",
            "1",
            AZURE_OPENAI_API_KEY="wrong-key-0123456789",
        ),
        # Two evaluations into one experiment, the judge's verdicts turning from yes to no;
        # then the monitor compares them.
        "quality_before": _scenario(
            shared,
            "quality",
            fake(tpm=TPM),
            "--dataset",
            dataset,
            "--tpm",
            str(TPM),
            *small,
        ),
        "quality_after": _scenario(
            shared,
            "quality",
            fake(tpm=TPM, judge_verdict=lambda prompt: False),
            "--dataset",
            dataset,
            "--tpm",
            str(TPM),
            *small,
        ),
    }
    runs["monitor"] = _scenario(
        shared, "quality", runs["quality_after"].fake, "--json", "--plot", str(tmp / "drift.png")
    )
    runs["monitor"].command = "monitor"
    # Keyless (entra mode, AZURE_OPENAI_AD_TOKEN): a service that echoes the bearer token in
    # its error text, once in a row's failure, once in a judge's.
    one_row = str(_write(tmp / "one.jsonl", [{"inputs": ROWS[0]["inputs"]}]))
    for name in ("entra_row", "entra_judge"):
        keyless = _scenario(
            shared,
            name,
            FakeAzureOpenAI(ad_token=AD_TOKEN).start(),
            *unpaced,
            "--dataset",
            one_row,
            "--guideline",
            "The response is kind.",
            "--max-retries",
            "0",
            "--json",
            LLMOPS_AUTH_MODE="entra",
            AZURE_OPENAI_AD_TOKEN=AD_TOKEN,
        )
        del keyless.env["AZURE_OPENAI_API_KEY"]
        runs[name] = keyless
    echo = {"error": {"code": "BadRequest", "message": f"token {AD_TOKEN} was not expected"}}
    runs["entra_row"].fake.script(Reply(500, echo))
    runs["entra_judge"].fake.script(Reply(), Reply(400, echo))
    # The chat command's traces, then an evaluation of the same prompt paced so that rows
    # queue behind our own rate limit, into one experiment; then the daily drift check.
    # Last in the runner: the chat command ends MLflow's background export, so traces are
    # written synchronously here.
    served = fake(tpm=600_000, delay=SERVICE)
    synchronous = {"MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false"}
    for number in range(LATENCY_CALLS):
        chat = _scenario(shared, "latency", served, "--json", **synchronous)
        chat.command = "chat"
        runs[f"chat_era_{number}"] = chat
    runs["paced"] = _scenario(
        shared,
        "latency",
        served,
        "--dataset",
        lab,
        "--no-judge",
        "--tpm",
        "600000",
        "--rpm",
        str(LATENCY_RPM),
        "--concurrency",
        str(LATENCY_CALLS),
        "--json",
        **synchronous,
    )
    runs["daily_check"] = _scenario(
        shared,
        "latency",
        served,
        "--baseline",
        str(LATENCY_CALLS),
        "--recent",
        str(LATENCY_CALLS),
        "--fail-on-drift",
        "--json",
    )
    runs["daily_check"].command = "monitor"
    runs["row_error"].fake.script(Reply.server_error(500), Reply.server_error(503))
    runs["all_failed"].fake.script(*[Reply.server_error(500)] * len(ROWS))

    judged = runs["judged"]
    process = subprocess.Popen(
        [sys.executable, "-m", "workload", "eval", *judged.args],
        cwd=stores["judged"],
        env=judged.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    plan = {
        name: {"args": s.args, "env": s.env, "command": s.command}
        for name, s in runs.items()
        if name != "judged"
    }
    results, _ = run_commands(
        plan, cwd=shared, env={**workload_env(), "PYTHONPATH": str(PROJECT_DIR)}, timeout=600
    )
    judged.stdout, judged.stderr = process.communicate(timeout=600)
    judged.code = process.returncode
    for name, result in results.items():
        runs[name].code, runs[name].stdout, runs[name].stderr = (
            result["code"],
            result["stdout"],
            result["stderr"],
        )
        runs[name].extra["seconds"] = result["seconds"]
    yield runs
    for scenario in {id(s.fake): s for s in runs.values()}.values():
        scenario.fake.stop()


def _client(scenario: Scenario):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=scenario.env["MLFLOW_TRACKING_URI"])


def _traces(scenario: Scenario) -> list[Any]:
    client = _client(scenario)
    experiment = client.get_experiment_by_name(scenario.experiment)
    assert experiment is not None, f"experiment {scenario.experiment} was created"
    return list(client.search_traces(locations=[experiment.experiment_id], max_results=500))


def _feedback(trace: Any, name: str) -> Any:
    from mlflow.entities import Feedback

    found = [a for a in trace.info.assessments if isinstance(a, Feedback) and a.name == name]
    return found[0] if found else None


def _rates(summary: dict[str, Any]) -> dict[str, tuple[float | None, int]]:
    return {s["name"]: (s["pass_rate"], s["n"]) for s in summary["scorers"]}


# --- the judged evaluation ---------------------------------------------------------------------


def test_judged_eval_prints_only_its_json_and_scores_every_row(
    scenarios: dict[str, Scenario],
) -> None:
    judged = scenarios["judged"]
    assert judged.code == 0, judged.stderr
    summary = judged.json  # stdout is the JSON and nothing else
    assert summary["rows"] == len(ROWS) and summary["errors"] == 0
    assert summary["passed"] is True
    assert _rates(summary) == {
        "reply_received": (1.0, 6),
        "within_completion_budget": (1.0, 6),
        "expectations_guidelines": (pytest.approx(4 / 5), 5),
        "guidelines": (1.0, 6),
    }, "one row's guidelines are judged 'no'; the row without guidelines is not judged on them"
    assert KEY not in judged.stdout + judged.stderr, "the key is never printed"


def test_each_request_goes_once_to_its_deployment_and_none_is_refused(
    scenarios: dict[str, Scenario],
) -> None:
    judged = scenarios["judged"]
    fake = judged.fake
    assert fake.throttled == 0, "paced within the limits the fake enforces: no 429"
    paths = [r.path for r in fake.requests]
    rows = [p for p in paths if p == "/openai/deployments/gpt-4o/chat/completions"]
    judges = [p for p in paths if p == f"/openai/deployments/{JUDGE}/chat/completions"]
    assert len(rows) == len(ROWS), "one request per row, no validation call"
    assert len(judges) == 5 + 6, "each row's guidelines (5 rows) and --guideline (6 rows)"
    assert all(is_judge_prompt(r.body["messages"]) for r in fake.requests if JUDGE in r.path)
    assert judged.json["requests"] == len(fake.requests)
    judge_body = next(r.body for r in fake.requests if JUDGE in r.path)
    assert judge_body["max_tokens"] == 64 and judge_body["response_format"] == {
        "type": "json_object"
    }


def test_scores_are_on_the_row_traces_and_the_judges_leave_no_trace(
    scenarios: dict[str, Scenario],
) -> None:
    judged = scenarios["judged"]
    traces = _traces(judged)
    assert len(traces) == len(ROWS), "one trace per row; the judges' calls left none"
    run_id = judged.json["run_id"]
    verdicts = []
    for trace in traces:
        assert trace.info.state.value == "OK"
        assert [s.span_type for s in trace.data.spans] == ["CHAT_MODEL"], "the lab's autolog span"
        assert trace.info.trace_metadata["mlflow.sourceRun"] == run_id
        for name in ("reply_received", "within_completion_budget"):
            code = _feedback(trace, name)
            assert code is not None and code.value is True
            assert code.source.source_type == "CODE"
        kind = _feedback(trace, "guidelines")
        assert kind is not None and kind.value == "yes"
        assert kind.source.source_type == "LLM_JUDGE" and kind.source.source_id == f"azure:/{JUDGE}"
        assert kind.metadata["guideline"] == "The response is kind."
        assert kind.rationale.startswith("Let's think step by step.")
        own = _feedback(trace, "expectations_guidelines")
        if "frogs" in trace.data.spans[0].inputs["messages"][1]["content"]:
            assert own is None, "a row without guidelines gets no verdict on them"
        else:
            assert own is not None and own.source.source_type == "LLM_JUDGE"
            verdicts.append(own.value)
    assert sorted(verdicts) == ["no", "yes", "yes", "yes", "yes"]
    run = _client(judged).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["judge_deployment"] == JUDGE
    assert run.data.params["tokens_per_minute"] == str(TPM)
    assert run.data.params["requests_per_minute"] == str(TPM * 6 // 1000)
    stored = json.dumps([t.to_dict() for t in traces]) + json.dumps(run.data.params)
    assert KEY not in stored, "the key is nowhere in the store"


def test_row_requests_carry_the_prompts_and_the_completion_budget(
    scenarios: dict[str, Scenario],
) -> None:
    fake = scenarios["judged"].fake
    rows = [r.body for r in fake.requests if "gpt-4o/" in r.path]
    assert {b["messages"][1]["content"] for b in rows} == {r["inputs"]["prompt"] for r in ROWS}
    systems = {b["messages"][1]["content"]: b["messages"][0]["content"] for b in rows}
    assert systems["Tell me a joke about owls."] == "You are terse."
    assert systems["Tell me a joke about cats."] == (
        "Assistant is a large language model trained by OpenAI."
    ), "the lab's system prompt when a row has none"
    assert all(b["max_tokens"] == 32 for b in rows)


# --- without judges, gates, errors ---------------------------------------------------------


def test_no_judge_makes_no_judge_call_and_a_passing_gate_exits_0(
    scenarios: dict[str, Scenario],
) -> None:
    plain = scenarios["no_judge"]
    assert plain.code == 0, plain.stderr
    assert len(plain.fake.requests) == len(ROWS), "the rows' calls and nothing else"
    assert not any(is_judge_prompt(r.body["messages"]) for r in plain.fake.requests)
    assert plain.fake.throttled == 0
    assert set(_rates(plain.json)) == {"reply_received", "within_completion_budget"}
    assert plain.json["passed"] is True
    assert all(_feedback(t, "guidelines") is None for t in _traces(plain))


def test_a_burst_beyond_the_limit_meets_429_and_retry_after_is_honoured(
    scenarios: dict[str, Scenario],
) -> None:
    burst = scenarios["burst"]
    assert burst.code == 0, burst.stderr
    assert burst.fake.throttled > 0, "told 10x the fake's budget, the burst is refused"
    assert burst.json["throttled"] == burst.fake.throttled, "every 429 was seen and waited out"
    assert burst.json["errors"] == 0, "after Retry-After every row succeeded"
    assert len(_traces(burst)) == 2 * len(ROWS), "a retried row is still one trace"


def test_a_failing_gate_exits_3_after_printing_the_result(scenarios: dict[str, Scenario]) -> None:
    gate = scenarios["gate_fails"]
    assert gate.code == 3, gate.stderr
    assert gate.json["passed"] is False
    assert _rates(gate.json)["within_completion_budget"] == (0.0, 6), "5 tokens cut every joke"
    assert _rates(gate.json)["reply_received"] == (1.0, 6)
    assert "within_completion_budget 0% < 50%" in gate.stderr


def test_a_gate_naming_no_scorer_of_the_run_exits_2_before_sending(
    scenarios: dict[str, Scenario],
) -> None:
    gate = scenarios["unknown_gate"]
    assert gate.code == 2
    assert "expectations_guidelines" in gate.stderr and "--fail-under" in gate.stderr
    assert gate.fake.requests == [], "nothing was sent"
    assert gate.stdout == ""


def test_a_bad_dataset_line_exits_2_naming_it_before_sending(
    scenarios: dict[str, Scenario],
) -> None:
    bad = scenarios["bad_line"]
    assert bad.code == 2
    assert "line 3: " in bad.stderr and "inputs.prompt" in bad.stderr
    assert "line 4: not JSON" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert bad.fake.requests == []


def test_a_row_failing_after_retries_is_an_error_and_the_run_goes_on(
    scenarios: dict[str, Scenario],
) -> None:
    failing = scenarios["row_error"]
    assert failing.code == 0, failing.stderr
    summary = failing.json
    assert summary["errors"] == 1 and summary["rows"] == len(ROWS)
    assert len(failing.fake.requests) == len(ROWS) + 1, "the failed row: a try and one retry"
    assert _rates(summary)["reply_received"] == (pytest.approx(5 / 6), 6), "counted as failed"
    assert _rates(summary)["within_completion_budget"] == (pytest.approx(5 / 6), 6)
    states = sorted(t.info.state.value for t in _traces(failing))
    assert states == ["ERROR"] + ["OK"] * 5, "the failed row's trace keeps its error"


def test_every_row_failing_exits_1(scenarios: dict[str, Scenario]) -> None:
    failing = scenarios["all_failed"]
    assert failing.code == 1
    assert "every row failed" in failing.stderr and "HTTP 500" in failing.stderr
    assert failing.stdout.startswith("run "), "the table is printed before the exit"
    assert "reply_received" in failing.stdout and "0%" in failing.stdout
    footer = failing.stdout.splitlines()[-2:]
    assert footer[0].startswith(
        "pass rate: the run's metric <scorer>/pass_rate, the one "
        "--fail-under gates; a row whose own call failed counts as failed"
    )
    assert footer[1].endswith(
        f"MLflow's own <scorer>/mean beside it leaves those rows out: "
        f"{len(ROWS)} failed here, so /mean reads higher."
    ), "the footer says which rate gates and that MLflow's differs in this run"


def test_401_stops_the_run_at_once(scenarios: dict[str, Scenario]) -> None:
    denied = scenarios["denied"]
    assert denied.code == 1
    assert "stopped at once" in denied.stderr and "HTTP 401" in denied.stderr
    assert len(denied.fake.requests) == 1, "nothing more is sent after the 401"
    assert "wrong-key-0123456789" not in denied.stderr
    assert "Traceback" not in denied.stderr
    client = _client(denied)
    experiment = client.get_experiment_by_name("denied")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"


def test_in_entra_mode_the_token_is_masked_in_a_rows_error(
    scenarios: dict[str, Scenario],
) -> None:
    failed = scenarios["entra_row"]
    assert failed.code == 1, failed.stderr
    assert len(failed.fake.requests) == 1
    headers = {k.lower(): v for k, v in failed.fake.requests[0].headers.items()}
    assert headers["authorization"] == f"Bearer {AD_TOKEN}" and "api-key" not in headers
    assert "every row failed" in failed.stderr and "HTTP 500: token [secret] was" in failed.stderr
    assert AD_TOKEN not in failed.stdout + failed.stderr, "the Entra token is never printed"
    # Nor stored: autolog records the SDK's own exception on the row's trace, built from the
    # answer after the transport masked it. The whole store, every scenario's traces too.
    (trace,) = _traces(failed)
    assert "[secret]" in trace.to_json(), "the row's trace holds the service's (masked) error"
    store = Path(failed.env["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///")).parent
    stored = [path.read_bytes() for path in store.rglob("*") if path.is_file()]
    assert stored and not any(AD_TOKEN.encode() in data for data in stored), "nowhere stored"


def test_in_entra_mode_the_token_is_masked_in_a_judges_error(
    scenarios: dict[str, Scenario],
) -> None:
    judged = scenarios["entra_judge"]
    assert judged.code == 1, "every judge call of the scorer failed: the service failed"
    assert "every judge call of guidelines failed" in judged.stderr
    assert len(judged.fake.requests) == 2, "the row, then its judge"
    (guidelines,) = [s for s in judged.json["scorers"] if s["name"] == "guidelines"]
    assert (guidelines["pass_rate"], guidelines["n"], guidelines["judge_errors"]) == (None, 0, 1), (
        "a judge's failure is a judge error, in no pass rate"
    )
    (trace,) = _traces(judged)
    verdict = _feedback(trace, "guidelines")
    assert verdict is not None and verdict.error is not None
    assert "token [secret] was not expected" in verdict.error.error_message
    run = _client(judged).get_run(judged.json["run_id"])
    stored = trace.to_json() + json.dumps(run.to_dictionary())
    assert AD_TOKEN not in stored + judged.stdout + judged.stderr, "nowhere, printed or stored"


# --- quality drift -------------------------------------------------------------------------


def test_monitor_finds_the_drop_of_a_judges_pass_rate(scenarios: dict[str, Scenario]) -> None:
    before, after = scenarios["quality_before"], scenarios["quality_after"]
    assert before.code == 0 and after.code == 0, before.stderr + after.stderr
    assert _rates(after.json)["expectations_guidelines"][0] == 0.0, "the judge now says no"
    assert before.fake.throttled == after.fake.throttled == 0, (
        "judges on the chat deployment share its budget: no 429"
    )
    monitor = scenarios["monitor"]
    assert monitor.code == 0, monitor.stderr
    report = json.loads(monitor.stdout)
    metrics = {m["name"]: m for m in report["metrics"]}
    judge = metrics["assessment:expectations_guidelines"]
    assert judge["test"] == "fisher" and judge["summary"] == "rate"
    assert (judge["baseline"], judge["recent"]) == (1.0, 0.0)
    assert judge["baseline_count"] == 5 and judge["recent_count"] == 5, "rows with guidelines"
    assert judge["drift"] is True
    assert "assessment:expectations_guidelines" in report["drifted"]
    assert metrics["assessment:reply_received"]["drift"] is False, "replies kept coming"
    assert metrics["latency_ms"]["baseline_count"] == 6
    assert Path(report["plot"]).read_bytes()[:4] == b"\x89PNG", "drawn with the judges' panels"


def test_an_eval_traces_latency_is_the_services_time_not_its_wait_for_the_pacer(
    scenarios: dict[str, Scenario],
) -> None:
    from workload.monitoring.traces import PACING_WAIT_MS, record_from_trace

    paced = scenarios["paced"]
    assert paced.code == 0, paced.stderr
    assert paced.fake.throttled == 0
    run_id = paced.json["run_id"]
    rows = [t for t in _traces(paced) if t.info.trace_metadata.get("mlflow.sourceRun") == run_id]
    assert len(rows) == LATENCY_CALLS
    durations = sorted(t.info.execution_duration for t in rows)
    assert durations[-1] >= 0.8 * (LATENCY_CALLS - 1) * 60_000 / LATENCY_RPM, (
        "the pacer made the last rows wait seconds, inside their autologged spans"
    )
    for trace in rows:
        (span,) = trace.data.spans
        assert span.get_attribute(PACING_WAIT_MS) is not None, "each row's wait is on its span"
    # Each row's latency is its span's time less the pacer's wait recorded on it: the
    # service's time, however long the row queued. (No upper bound on it: the wall clock a
    # busy machine stretches adds to the service's 300 ms; the wait is the pacer's figure.)
    service_ms = SERVICE * 1000
    waits = []
    for trace in rows:
        (span,) = trace.data.spans
        wait = float(span.get_attribute(PACING_WAIT_MS))
        latency = record_from_trace(trace).latency_ms
        assert latency is not None and latency >= service_ms - 2, "at least the fake's time"
        assert abs(latency - (trace.info.execution_duration - wait)) <= 1, "the wait left out"
        waits.append(wait)
    assert max(waits) >= 1000, f"the last rows waited seconds for their slots: {waits}"


def test_the_daily_drift_check_sees_no_latency_drift_from_chat_calls_to_an_eval(
    scenarios: dict[str, Scenario],
) -> None:
    chats = [s for name, s in scenarios.items() if name.startswith("chat_era_")]
    assert [s.code for s in chats] == [0] * LATENCY_CALLS, chats[0].stderr
    check = scenarios["daily_check"]
    report = json.loads(check.stdout)
    metrics = {m["name"]: m for m in report["metrics"]}
    latency = metrics["latency_ms"]
    assert latency["baseline_count"] == latency["recent_count"] == LATENCY_CALLS
    assert abs(latency["recent"] - latency["baseline"]) < 200, (
        "the same model at the same service time: the medians agree",
        latency,
    )
    assert latency["drift"] is False
    assert check.code == 0 and report["drift"] is False, (
        "the same prompts, model and service time: --fail-on-drift passes",
        report.get("drifted"),
    )


# --- the dataset ------------------------------------------------------------------------------


def test_the_shipped_lab_set_has_about_twenty_prompts_each_with_guidelines() -> None:
    rows = load_dataset(None)
    assert 20 <= len(rows) <= 30
    assert all(row.guidelines for row in rows), "every row says what a good answer is"
    assert sum("animal" in row.prompt.lower() or "joke" in row.prompt.lower() for row in rows) >= 18
    declines = [r for r in rows if any("decline" in g for g in r.guidelines)]
    assert len(declines) >= 3, "a few prompts a careful model declines or steers back"


def test_dataset_rows_keep_mlflows_shape() -> None:
    (row,) = parse_dataset(json.dumps(ROWS[2]), "x")
    assert row.as_record() == ROWS[2]
    (plain,) = parse_dataset('{"inputs": {"prompt": "hi"}}', "x")
    assert plain.as_record() == {"inputs": {"prompt": "hi"}}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1, 2]", "not a JSON object"),
        ('{"inputs": {"prompt": ""}}', "inputs.prompt"),
        ('{"inputs": {"prompt": "a", "extra": 1}}', "unknown keys"),
        ('{"inputs": {"prompt": "a"}, "expectations": {"guidelines": [1]}}', "guidelines"),
        ('{"inputs": {"prompt": "a"}, "expectations": []}', "expectations"),
    ],
)
def test_each_bad_line_is_named_with_its_problem(line: str, problem: str) -> None:
    good = json.dumps(ROWS[0])
    with pytest.raises(SettingsError, match=rf"line 2: .*{problem}") as info:
        parse_dataset(f"{good}\n{line}\n{good}\n", "x.jsonl")
    assert info.value.exit_code == 2


# --- budgets, verdicts, progress (no service involved) -------------------------------------


def _args(*argv: str) -> Any:
    from workload.cli import build_parser

    return build_parser().parse_args(["eval", *argv])


def test_budgets_come_from_the_cluster_environment_then_the_outputs_then_the_default() -> None:
    from workload.commands.evaluate import resolve_budgets

    outputs = {
        "openai_tokens_per_minute": 20000,
        "openai_judge_deployment": "judge",
        "openai_judge_tokens_per_minute": 30000,
    }
    budgets = resolve_budgets(_args(), outputs, {}, "gpt-4o")
    assert (budgets.chat_tpm, budgets.chat_rpm) == (20000, 120), "6 RPM per 1,000 TPM"
    assert (budgets.judge_deployment, budgets.judge_tpm, budgets.judge_rpm) == (
        "judge",
        30000,
        180,
    )
    env = {"LLMOPS_TOKENS_PER_MINUTE": "50000", "LLMOPS_JUDGE_DEPLOYMENT": ""}
    cluster = resolve_budgets(_args(), {}, env, "gpt-4o")
    assert (cluster.chat_tpm, cluster.judge_deployment, cluster.shared) == (50000, "gpt-4o", True)
    lab = resolve_budgets(_args(), {}, {}, "gpt-4o")
    assert (lab.chat_tpm, lab.chat_rpm, lab.shared) == (10000, 60, True), "the lab's 10K TPM"
    flags = resolve_budgets(
        _args("--tpm", "1000", "--rpm", "2", "--judge-tpm", "5000"), outputs, {}, "gpt-4o"
    )
    assert (flags.chat_tpm, flags.chat_rpm, flags.judge_tpm, flags.judge_rpm) == (
        1000,
        2,
        5000,
        30,
    )


@pytest.mark.parametrize(
    ("argv", "env", "problem"),
    [
        ((), {"LLMOPS_TOKENS_PER_MINUTE": "lots"}, "LLMOPS_TOKENS_PER_MINUTE = 'lots'"),
        (("--judge-tpm", "5000"), {}, "there is no judge deployment"),
    ],
)
def test_bad_budgets_are_settings_errors(
    argv: tuple[str, ...], env: dict[str, str], problem: str
) -> None:
    from workload.commands.evaluate import resolve_budgets

    with pytest.raises(SettingsError, match=problem):
        resolve_budgets(_args(*argv), {}, env, "gpt-4o")


def test_guideline_without_judges_is_refused_before_anything_runs() -> None:
    from workload.commands.evaluate import run

    with pytest.raises(SettingsError, match="--guideline needs the judges"):
        run(_args("--no-judge", "--guideline", "Be kind."))


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ('{"rationale": "fine", "result": "yes"}', ("yes", "fine")),
        ('```json\n{"result": "No", "rationale": "rude"}\n```', ("no", "rude")),
    ],
)
def test_mlflows_judge_answer_is_read(answer: str, verdict: tuple[str, str]) -> None:
    from workload.evaluation.judges import parse_verdict

    assert parse_verdict(answer) == verdict


@pytest.mark.parametrize(
    ("answer", "problem"),
    [("yes", "not JSON"), ('{"result": "maybe"}', 'not "yes" or "no"'), ("[1]", "object")],
)
def test_an_answer_not_in_mlflows_judge_format_is_refused(answer: str, problem: str) -> None:
    from workload.evaluation.judges import parse_verdict

    with pytest.raises(ValueError, match=problem):
        parse_verdict(answer)


def test_progress_shows_rows_tokens_and_rate_only_on_a_terminal() -> None:
    import io

    from workload.model.pacing import Budget, Pacer
    from workload.progress import Progress

    pacer = Pacer(Budget("d", 10000, 60))
    pacer.reserve(300)
    pacer.hold_off(0)
    progress = Progress(4, [pacer, pacer], stream=io.StringIO())
    progress.row_done(error=False)
    progress.row_done(error=True)
    line = progress.line()
    assert line.startswith("rows 2/4 (1 failed), 1 requests, 300 tokens admitted, ")
    assert "tokens/min" in line and line.endswith(", 1 x 429")
    assert Progress.for_terminal(4, [pacer]) is None, "stderr here is not a terminal"


class _StubClient:
    """Answers every judge question with ``content``; counts the questions."""

    def __init__(self, content: str) -> None:
        self.content = content
        self.asked: list[dict[str, Any]] = []

    def post(self, path: str, *, body: dict[str, Any], cast_to: Any) -> Any:
        self.asked.append(body)
        return cast_to.model_validate(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": self.content},
                    }
                ],
            }
        )


def _judge(content: str) -> tuple[Any, _StubClient, list[Any]]:
    from workload.evaluation.judges import JudgeClient, guidelines_judge
    from workload.model.paced_client import RunControl

    stub = _StubClient(content)
    seen: list[Any] = []
    judge = JudgeClient(stub, "judge-dep", RunControl(1), 64)  # type: ignore[arg-type]
    scorer = guidelines_judge(
        judge, guidelines=["Be kind."], record=lambda name, feedback: seen.append(feedback)
    )
    return scorer, stub, seen


def test_a_judge_asks_mlflows_own_prompt_and_answers_as_an_llm_judge() -> None:
    from mlflow.genai.judges.prompts.guidelines import get_prompt

    scorer, stub, seen = _judge('{"result": "yes", "rationale": "kind"}')
    feedback = scorer.run(inputs={"prompt": "Tell me a joke."}, outputs="A kind joke.")
    (asked,) = stub.asked
    assert asked["messages"] == [
        {
            "role": "user",
            "content": get_prompt(
                ["Be kind."],
                # MLflow's Guidelines scorer renders the inputs dict as it is
                {"request": "{'prompt': 'Tell me a joke.'}", "response": "A kind joke."},
            ),
        }
    ], "MLflow's Guidelines prompt, filled in as MLflow fills it"
    assert asked["model"] == "judge-dep" and asked["max_tokens"] == 64
    assert (feedback.name, feedback.value, feedback.rationale) == ("guidelines", "yes", "kind")
    assert feedback.source.source_type == "LLM_JUDGE"
    assert feedback.source.source_id == "azure:/judge-dep"
    assert seen == [feedback]


def test_a_judge_answer_out_of_format_is_an_error_not_a_verdict() -> None:
    from workload.evaluation.runner import _summarise

    scorer, _, seen = _judge("I think it is fine")
    assert scorer.run(inputs={"prompt": "p"}, outputs="r").error is not None
    assert seen[0].error is not None, "the failure is recorded for the pass rate"
    feedback = scorer.run(inputs={"prompt": "p"}, outputs="r")
    assert feedback.value is None and feedback.error.error_code == "JUDGE_FAILED"
    assert feedback.source.source_type == "LLM_JUDGE"
    assert _summarise("guidelines", [None, "yes"], 2).pass_rate == 0.5, "a failed row fails"
    errored = _summarise("guidelines", ["yes"], 2, judge_errors=1)
    assert (errored.pass_rate, errored.n, errored.judge_errors) == (1.0, 1, 1), (
        "a judge error is in no pass rate"
    )


def test_a_failed_row_is_not_judged_and_counts_as_failed() -> None:
    scorer, stub, seen = _judge('{"result": "yes", "rationale": "kind"}')
    feedback = scorer.run(inputs={"prompt": "p"}, outputs=None)
    assert stub.asked == [], "nothing to judge, nobody asked"
    assert feedback.error.error_code == "NO_RESPONSE" and seen == [feedback]


def test_numeric_scores_are_averaged_and_verdicts_are_pass_rates() -> None:
    from workload.evaluation.runner import _summarise

    assert _summarise("score", [0.5, 1.0, None], 3) == _summarise("score", [0.5, 1.0], 3)
    numbers = _summarise("score", [0.5, 1.0], 3)
    assert (numbers.pass_rate, numbers.mean, numbers.n) == (None, 0.75, 2)
    verdicts = _summarise("reply_received", [True, False, True], 4)
    assert (verdicts.pass_rate, verdicts.mean, verdicts.n) == (0.5, None, 4), (
        "a row that got no score counts as failed"
    )
