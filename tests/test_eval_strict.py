"""`eval` and `compare` against the fake made stricter, as a real gpt-4o and Azure limiter are.

The stricter fake (``tests/fake_azure_openai.py`` options): limits over sliding
10-second windows, a token estimate of its own (a CJK character one token,
English more per character than characters / 4), answers after 1 to 1.5 s,
judge answers long enough to be cut off at a low ``max_tokens``, judges that
answer 503. Every scenario runs in one child process, one after another
(``tests/command_runner.py``: MLflow's start-up costs seconds a process): first
the lab's limits in real time, English with a judge deployment and Japanese with
judges on the chat deployment (two rows each, so each takes about ten seconds;
the window logic over many requests is tested with time scaled in
``tests/test_pacing.py``); then the judge-error, pass-rate, tracing and
comparison scenarios on unlimited fakes, and the `compare` commands on the runs
they made.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from command_runner import run_commands, workload_env
from fake_azure_openai import FakeAzureOpenAI, Reply, is_judge_prompt
from test_eval import KEY, _scenario, _write

from llmops_infra.offline.engine import PROJECT_DIR

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

JUDGE = "gpt-4o-judge"
DATASETS = PROJECT_DIR / "workload" / "evaluation" / "datasets"

#: Nine rows with guidelines, the tenth without: the comparison's dataset.
ANIMALS = ["cats", "dogs", "owls", "bees", "frogs", "fish", "cows", "bats", "yaks"]
#: The judge's verdicts in the comparison: before, every animal but owls passes; after,
#: seven of them fail and owls pass: 7 flips down, 1 up.
BEFORE_FAILS = {"owls"}
AFTER_PASSES = {"owls", "yaks"}


def _rows(animals: list[str], plain: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "inputs": {"prompt": f"Tell me a joke about {animal}."},
            "expectations": {"guidelines": [f"The response is a joke about {animal}."]},
        }
        for animal in animals
    ]
    return [*rows, {"inputs": {"prompt": f"Tell me a joke about {plain}."}}]


#: Both runs' last rows: two with one prompt and different guidelines (the judge passes the
#: first and fails the second, in both runs), and one row twice, which cannot be told apart.
TWINS = [
    {
        "inputs": {"prompt": "Tell me a joke about twins."},
        "expectations": {"guidelines": ["The response is a joke."]},
    },
    {
        "inputs": {"prompt": "Tell me a joke about twins."},
        "expectations": {"guidelines": ["The response is SHORTER than three words."]},
    },
    {"inputs": {"prompt": "Tell me a joke about echoes."}},
    {"inputs": {"prompt": "Tell me a joke about echoes."}},
]


def _verdict(passing: set[str] | None, failing: set[str] | None) -> Any:
    def judge(prompt: str) -> bool:
        if "twins" in prompt:
            return "SHORTER" not in prompt
        animal = next((a for a in ANIMALS if f"joke about {a}" in prompt), "")
        if passing is not None:
            return animal in passing
        return animal not in (failing or set())

    return judge


def _numbered(passing: int) -> Any:
    """A judge passing the rows about animal0 .. animal<passing - 1>."""

    def judge(prompt: str) -> bool:
        found = re.search(r"joke about animal(\d+)\.", prompt)
        return found is not None and int(found.group(1)) < passing

    return judge


def _plan(
    store: Path, experiment: str, fake: FakeAzureOpenAI, *args: str, **env: str
) -> dict[str, Any]:
    """An ``eval`` scenario for ``run_commands`` (test_eval's scenario, as plain data)."""
    scenario = _scenario(store, experiment, fake, *args, **env)
    return {"command": "eval", "args": scenario.args, "env": scenario.env}


def _strict(**options: Any) -> FakeAzureOpenAI:
    """The lab's limits (10K TPM, 60 RPM) over sliding 10 s windows, answers in 1-1.5 s."""
    return FakeAzureOpenAI(
        api_key=KEY,
        tpm=10_000,
        limiter="sliding",
        estimate="strict",
        latency=(1.0, 1.5),
        **options,
    ).start()


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("strict")
    # One store, each scenario its own experiment.
    store = tmp / "store"
    store.mkdir()
    shutil.copyfile(empty_mlflow_store, store / "mlflow.db")
    two = _write(tmp / "two.jsonl", _rows(["cats", "dogs"], "owls")[:2])
    japanese = DATASETS / "lab_prompts_ja.jsonl"
    ja_two = _write(
        tmp / "ja.jsonl", [json.loads(x) for x in japanese.read_text().splitlines()[:2]]
    )
    small = ("--max-tokens", "64", "--judge-max-tokens", "200", "--json")
    fakes: dict[str, FakeAzureOpenAI] = {
        "english": _strict(judge_deployment=JUDGE, judge_tpm=10_000, judge_rationale_words=30),
        "japanese": _strict(judge_rationale_words=30),
    }
    # The lab's limits first, in a process fresh as a user's.
    plan = {
        "english": _plan(
            store,
            "english",
            fakes["english"],
            "--dataset",
            str(two),
            "--tpm",
            "10000",
            "--judge-tpm",
            "10000",
            *small,
            LLMOPS_JUDGE_DEPLOYMENT=JUDGE,
        ),
        "japanese": _plan(store, "japanese", fakes["japanese"], "--dataset", str(ja_two), *small),
    }
    # The judge scenarios: unlimited fakes.
    three = str(_write(tmp / "three.jsonl", _rows(["cats", "dogs", "bees"], "owls")[:3]))
    unpaced = ("--tpm", "6000000", "--dataset", three, "--json")
    fakes["outage"] = FakeAzureOpenAI(api_key=KEY, judge_status=503).start()
    fakes["truncated"] = FakeAzureOpenAI(api_key=KEY, judge_rationale_words=400).start()
    fakes["retried"] = FakeAzureOpenAI(api_key=KEY, judge_rationale_words=100).start()
    fakes["row_failed"] = FakeAzureOpenAI(api_key=KEY).start()
    fakes["row_failed"].script(Reply.server_error(500), Reply.server_error(500))
    fakes["tracing"] = FakeAzureOpenAI(api_key=KEY).start()
    fakes["before"] = FakeAzureOpenAI(
        api_key=KEY, judge_verdict=_verdict(None, BEFORE_FAILS)
    ).start()
    fakes["after"] = FakeAzureOpenAI(
        api_key=KEY, judge_verdict=_verdict(AFTER_PASSES, None)
    ).start()
    fakes["chat"] = FakeAzureOpenAI(api_key=KEY).start()
    # The monitor's verdicts: two 23-row runs of one dataset, 22 passing then 16, and between
    # them a run of another dataset whose every verdict is "no".
    drift_rows = str(
        _write(tmp / "drift.jsonl", _rows([f"animal{i}" for i in range(23)], "x")[:23])
    )
    fakes["drift_before"] = FakeAzureOpenAI(api_key=KEY, judge_verdict=_numbered(22)).start()
    fakes["drift_other"] = FakeAzureOpenAI(api_key=KEY, judge_verdict=lambda p: False).start()
    fakes["drift_after"] = FakeAzureOpenAI(api_key=KEY, judge_verdict=_numbered(16)).start()
    before_rows = str(_write(tmp / "before.jsonl", _rows(ANIMALS, "frogs at night") + TWINS))
    # Run B's twins in the other order: each must still pair with its own guidelines.
    after_rows = str(
        _write(tmp / "after.jsonl", _rows(ANIMALS, "lions") + TWINS[1::-1] + TWINS[2:])
    )
    retries = ("--max-retries", "1")
    plan |= {
        "outage": _plan(store, "outage", fakes["outage"], *unpaced, *retries),
        "outage_gated": _plan(
            store,
            "outage_gated",
            fakes["outage"],
            *unpaced,
            *retries,
            "--fail-under",
            "expectations_guidelines=0.8",
        ),
        "truncated": _plan(
            store, "truncated", fakes["truncated"], *unpaced, "--judge-max-tokens", "50"
        ),
        "retried": _plan(store, "retried", fakes["retried"], *unpaced, "--judge-max-tokens", "50"),
        # The first row's call fails twice (and so for good); the others pass their judge.
        "row_failed": _plan(
            store,
            "row_failed",
            fakes["row_failed"],
            *unpaced,
            *retries,
            "--concurrency",
            "1",
            "--fail-under",
            "expectations_guidelines=0.6",
        ),
        "tracing": _plan(
            store,
            "tracing",
            fakes["tracing"],
            *unpaced,
            MLFLOW_GENAI_EVAL_ENABLE_SCORER_TRACING="true",
        ),
        "before": _plan(
            store,
            "compare",
            fakes["before"],
            "--tpm",
            "6000000",
            "--dataset",
            before_rows,
            "--json",
        ),
        "after": _plan(
            store, "compare", fakes["after"], "--tpm", "6000000", "--dataset", after_rows, "--json"
        ),
        "chat": {**_plan(store, "compare", fakes["chat"], "--json"), "command": "chat"},
        "drift_before": _plan(
            store, "drift", fakes["drift_before"], "--tpm", "6000000", "--dataset", drift_rows
        ),
        "drift_other": _plan(store, "drift", fakes["drift_other"], *unpaced),
        "drift_after": _plan(
            store,
            "drift",
            fakes["drift_after"],
            "--tpm",
            "6000000",
            "--dataset",
            drift_rows,
            "--json",
        ),
        "drift_monitor": {**_plan(store, "drift", fakes["chat"], "--json"), "command": "monitor"},
    }
    # Then `compare` on the runs those made (their run ids read from their JSON).
    compare_env = _plan(store, "compare", fakes["chat"])["env"]
    run_a, run_b, chat_run = ({"of": name, "key": "run_id"} for name in ("before", "after", "chat"))

    def compare(*args: str | dict[str, str]) -> dict[str, Any]:
        return {"command": "compare", "args": list(args), "env": compare_env}

    plan |= {
        "compare_table": compare(run_a, run_b),
        "compare_default_alpha": compare(run_a, run_b, "--json", "--fail-on-regression"),
        "compare_alpha_0.01": compare(
            run_a, run_b, "--json", "--fail-on-regression", "--alpha", "0.01"
        ),
        "compare_not_eval": compare(run_a, chat_run, "--json"),
        "compare_same_run": compare(run_a, run_a, "--json", "--fail-on-regression"),
    }
    try:
        done, _ = run_commands(
            plan, cwd=tmp, env={**workload_env(), "PYTHONPATH": str(PROJECT_DIR)}
        )
        yield {"results": done, "fakes": fakes, "store": store}
    finally:
        for fake in fakes.values():
            fake.stop()


def _scorer(stdout: str, name: str) -> dict[str, Any]:
    (scorer,) = [s for s in json.loads(stdout)["scorers"] if s["name"] == name]
    return scorer


def _client(store: Path) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")


# --- the lab's limits ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["english", "japanese"])
def test_at_the_labs_limits_an_eval_with_judges_draws_no_429(
    results: dict[str, Any], name: str
) -> None:
    """10K TPM and 60 RPM over sliding 10 s windows, the fake's own estimate (a Japanese
    character one token), answers of 1 to 1.5 s: every row and judge admitted at once."""
    result, fake = results["results"][name], results["fakes"][name]
    assert result["code"] == 0, result["stderr"]
    summary = json.loads(result["stdout"])
    assert fake.throttled == 0 and summary["throttled"] == 0, "no 429 at all"
    judged = [a for a in fake.admitted if a.judge]
    assert len(judged) == 2 and len(fake.admitted) == 4, "two rows, two judges, once each"
    rate = _scorer(result["stdout"], "expectations_guidelines")
    assert (rate["pass_rate"], rate["n"], rate["judge_errors"]) == (1.0, 2, 0)


# --- judge errors ----------------------------------------------------------------------------


def test_judges_answering_503_exit_1_with_their_errors_counted(results: dict[str, Any]) -> None:
    outage = results["results"]["outage"]
    assert outage["code"] == 1, "a service that fails after retries exits 1"
    summary = json.loads(outage["stdout"])
    assert summary["errors"] == 0, "the rows themselves succeeded"
    rate = _scorer(outage["stdout"], "expectations_guidelines")
    assert (rate["pass_rate"], rate["n"], rate["judge_errors"]) == (None, 0, 3), (
        "no judge error is a 'no'"
    )
    assert "every judge call of expectations_guidelines failed" in outage["stderr"]


def test_an_outage_under_a_gate_is_an_error_not_a_failed_gate(results: dict[str, Any]) -> None:
    gated = results["results"]["outage_gated"]
    assert gated["code"] == 1, "exit 1 (the service failed), not 3 (a gate failed)"
    assert json.loads(gated["stdout"])["scorers"], "the JSON is printed all the same"


def test_a_truncated_judge_answer_is_retried_once_then_a_judge_error(
    results: dict[str, Any],
) -> None:
    result, fake = results["results"]["truncated"], results["fakes"]["truncated"]
    budgets = [r.body["max_tokens"] for r in fake.requests if is_judge_prompt(r.body["messages"])]
    assert sorted(budgets) == [50, 50, 50, 200, 200, 200], "each judge asked twice, with 4x room"
    rate = _scorer(result["stdout"], "expectations_guidelines")
    assert (rate["pass_rate"], rate["judge_errors"]) == (None, 3), "cut off: no verdict"
    assert result["code"] == 1
    (experiment,) = [
        e for e in _client(results["store"]).search_experiments() if e.name == "truncated"
    ]
    traces = _client(results["store"]).search_traces(locations=[experiment.experiment_id])
    errors = [
        a.error.error_message
        for t in traces
        for a in t.info.assessments
        if a.name == "expectations_guidelines" and a.error is not None
    ]
    assert len(errors) == 3 and all("cut off at max_tokens 50" in e for e in errors)


def test_a_judge_answer_cut_off_once_is_judged_on_its_retry(results: dict[str, Any]) -> None:
    result = results["results"]["retried"]
    assert result["code"] == 0, result["stderr"]
    rate = _scorer(result["stdout"], "expectations_guidelines")
    assert (rate["pass_rate"], rate["n"], rate["judge_errors"]) == (1.0, 3, 0)


def test_the_logged_pass_rate_is_the_jsons_and_counts_a_failed_row_as_failed(
    results: dict[str, Any],
) -> None:
    """The first row's call failed: the pass rate is 2/3 (the gate at 0.6 holds), MLflow's own
    ``/mean`` leaves that row out (1.0); the run logs the command's rate as ``/pass_rate``."""
    result = results["results"]["row_failed"]
    assert result["code"] == 0, result["stderr"]
    summary = json.loads(result["stdout"])
    assert summary["errors"] == 1 and summary["passed"] is True
    rate = _scorer(result["stdout"], "expectations_guidelines")
    assert (rate["pass_rate"], rate["n"], rate["judge_errors"]) == (pytest.approx(2 / 3), 3, 0)
    metrics = _client(results["store"]).get_run(summary["run_id"]).data.metrics
    for scorer in summary["scorers"]:
        assert metrics[f"{scorer['name']}/pass_rate"] == pytest.approx(scorer["pass_rate"])
    assert metrics["expectations_guidelines/mean"] == pytest.approx(1.0), (
        "MLflow's mean differs exactly by the failed row, as the docs say"
    )


def test_with_scorer_tracing_on_the_experiment_holds_only_the_rows_traces(
    results: dict[str, Any],
) -> None:
    result = results["results"]["tracing"]
    assert result["code"] == 0, result["stderr"]
    client = _client(results["store"])
    (experiment,) = [e for e in client.search_experiments() if e.name == "tracing"]
    traces = client.search_traces(locations=[experiment.experiment_id])
    assert len(traces) == 3, "three rows, three traces; no scorer's"
    assert not any("mlflow.trace.sourceScorer" in t.info.tags for t in traces)


def test_the_monitor_ignores_a_trace_mlflow_marks_as_a_scorers() -> None:
    from mlflow.entities import TraceInfo, TraceLocation, TraceState

    from workload.monitoring.traces import _is_scorer_trace

    def info(tags: dict[str, str]) -> Any:
        return type(
            "T",
            (),
            {
                "info": TraceInfo(
                    trace_id="tr-1",
                    trace_location=TraceLocation.from_experiment_id("1"),
                    request_time=0,
                    state=TraceState.OK,
                    tags=tags,
                )
            },
        )()

    assert _is_scorer_trace(info({"mlflow.trace.sourceScorer": "guidelines"}))
    assert not _is_scorer_trace(info({}))


# --- the monitor's verdicts ------------------------------------------------------------------


def test_the_monitor_compares_whole_eval_runs_of_one_dataset_and_flags_a_drop(
    results: dict[str, Any],
) -> None:
    """96 % -> 70 % over two 23-row runs, a run of another dataset between them: the monitor
    compares the two runs of the newest run's dataset, and the one-sided test flags the drop
    (two-sided at 0.01 over trace-count windows it went unflagged)."""
    done = results["results"]
    monitor = done["drift_monitor"]
    assert monitor["code"] == 0, monitor["stderr"]
    report = json.loads(monitor["stdout"])
    after = json.loads(done["drift_after"]["stdout"])
    assert report["verdicts"]["recent_run"] == after["run_id"]
    assert report["verdicts"]["baseline_run"] != after["run_id"]
    (verdict,) = [m for m in report["metrics"] if m["name"] == "assessment:expectations_guidelines"]
    assert (verdict["baseline_count"], verdict["recent_count"]) == (23, 23), "whole runs"
    assert (verdict["baseline"], verdict["recent"]) == (
        pytest.approx(22 / 23),
        pytest.approx(16 / 23),
    ), "the other dataset's run is in neither window"
    assert verdict["p_value"] == pytest.approx(0.0235, abs=1e-3), "Fisher's exact test, one-sided"
    assert verdict["drift"] is True and "assessment:expectations_guidelines" in report["drifted"]


def test_judge_errors_are_a_metric_of_their_own_and_a_rise_is_flagged() -> None:
    from workload.monitoring.drift import compare_windows
    from workload.monitoring.traces import TraceRecord

    def record(index: int, failed: bool) -> TraceRecord:
        return TraceRecord(
            f"tr-{index}",
            index,
            10.0,
            1,
            1,
            2,
            5,
            False,
            assessments={} if failed else {"guidelines": True},
            judge_errors=frozenset({"guidelines"}) if failed else frozenset(),
        )

    old = [record(i, False) for i in range(20)]
    new = [record(i, i % 2 == 0) for i in range(20)]
    report = compare_windows(old, new, verdicts=(old, new))
    (errors,) = [m for m in report.metrics if m.name == "judge_errors:guidelines"]
    assert (errors.baseline, errors.recent) == (0.0, 0.5) and errors.drift
    (rate,) = [m for m in report.metrics if m.name == "assessment:guidelines"]
    assert rate.recent == 1.0 and not rate.drift, "the errors are not counted as 'no'"


# --- compare ---------------------------------------------------------------------------------


def test_compare_reports_the_flipped_rows_and_mcnemars_exact_one_sided_p_value(
    results: dict[str, Any],
) -> None:
    """Seven rows went from pass to fail, one from fail to pass: McNemar's exact one-sided
    p-value is P(X >= 7) for X ~ Binomial(8, 1/2) = (8 + 1) / 256 = 0.035, a regression at
    0.05 (two-sided, 0.0703, it went unflagged: a one-sided test at half the alpha)."""
    result = results["results"]["compare_default_alpha"]
    assert result["code"] == 3, "p = 0.035 is a regression at alpha 0.05: " + result["stderr"]
    summary = json.loads(result["stdout"])
    judged = next(s for s in summary["scorers"] if s["name"] == "expectations_guidelines")
    assert judged["p_value"] == pytest.approx((1 + 8) / 256)
    assert (judged["pass_rate_a"], judged["pass_rate_b"]) == (
        pytest.approx(9 / 11),
        pytest.approx(3 / 11),
    ), "nine animals and the two twins, each paired with its own guidelines"
    assert judged["regressed"] is True and summary["regressed"] is True
    assert "regression: expectations_guidelines" in result["stderr"]
    flipped = {
        (f["prompt"], f["a"], f["b"])
        for f in summary["flipped"]
        if f["scorer"] == "expectations_guidelines"
    }
    down = {a for a in ANIMALS if a not in BEFORE_FAILS and a not in AFTER_PASSES}
    assert flipped == {(f"Tell me a joke about {a}.", True, False) for a in down} | {
        ("Tell me a joke about owls.", False, True)
    }, "the twins, returned in another order in run B, flipped nothing"
    code = next(s for s in summary["scorers"] if s["name"] == "reply_received")
    assert (code["p_value"], code["regressed"]) == (1.0, False), "no flip, no change"


def test_at_a_smaller_alpha_the_same_fall_is_no_regression(results: dict[str, Any]) -> None:
    result = results["results"]["compare_alpha_0.01"]
    assert result["code"] == 0, result["stderr"]
    summary = json.loads(result["stdout"])
    assert summary["regressed"] is False and summary["alpha"] == 0.01


def test_compare_lists_unpaired_rows_and_rows_it_cannot_tell_apart(
    results: dict[str, Any],
) -> None:
    summary = json.loads(results["results"]["compare_default_alpha"]["stdout"])
    assert summary["paired"] == 11
    alike = "not told apart (2 alike in run A, 2 in run B)"
    assert sorted((u["run"], u["prompt"], u["reason"]) for u in summary["unpaired"]) == [
        ("a", "Tell me a joke about echoes.", alike),
        ("a", "Tell me a joke about echoes.", alike),
        ("a", "Tell me a joke about frogs at night.", "only in this run"),
        ("b", "Tell me a joke about echoes.", alike),
        ("b", "Tell me a joke about echoes.", alike),
        ("b", "Tell me a joke about lions.", "only in this run"),
    ]


def test_compare_prints_a_table_with_the_flips(results: dict[str, Any]) -> None:
    result = results["results"]["compare_table"]
    assert result["code"] == 0, result["stderr"]
    assert "expectations_guidelines" in result["stdout"]
    assert "p (one-sided)" in result["stdout"] and "0.0352" in result["stdout"]
    assert "run B, only in this run: 'Tell me a joke about lions.'" in result["stdout"]


def test_compare_refuses_a_run_that_is_not_an_eval_run(results: dict[str, Any]) -> None:
    result = results["results"]["compare_not_eval"]
    assert result["code"] == 2
    assert "is not an eval run" in result["stderr"] and result["stdout"] == ""


def test_a_run_compared_with_itself_has_no_flip_and_no_regression(
    results: dict[str, Any],
) -> None:
    result = results["results"]["compare_same_run"]
    assert result["code"] == 0
    summary = json.loads(result["stdout"])
    assert summary["flipped"] == [] and all(s["p_value"] == 1.0 for s in summary["scorers"])


def test_mcnemar_is_one_sided_for_a_fall_and_five_flips_to_fail_are_a_regression() -> None:
    """The boundary: five rows flipping to fail and none back is (1/2)^5 = 0.03125 < 0.05, a
    regression (two-sided it was 0.0625, and went unflagged); four are 0.0625, not one."""
    from workload.evaluation.compare import mcnemar_regression

    assert mcnemar_regression(5, 0) == (pytest.approx(1 / 32), True)
    assert mcnemar_regression(4, 0) == (pytest.approx(1 / 16), False)
    # Seven down and one up: P(X >= 7), X ~ Binomial(8, 1/2) = (8 + 1) / 256.
    assert mcnemar_regression(7, 1) == (pytest.approx(9 / 256), True)
    assert mcnemar_regression(7, 1, alpha=0.01) == (pytest.approx(9 / 256), False)
    # A rise is never a regression, however clear.
    assert mcnemar_regression(0, 6) == (pytest.approx(1.0), False)
    assert mcnemar_regression(3, 3)[1] is False and mcnemar_regression(0, 0) == (1.0, False)


def _result(
    prompt: str, verdict: bool, guideline: str | None = None, *, tagged: bool = True
) -> Any:
    from workload.evaluation.compare import EvalRowResult
    from workload.evaluation.dataset import EvalRow

    row = EvalRow(prompt, None, (guideline,) if guideline else ())
    expectations = {"guidelines": [guideline]} if guideline else {}
    return EvalRowResult(
        prompt, None, {"judge": verdict}, expectations, row.key if tagged else None
    )


def test_compare_rows_flags_five_flips_to_fail_as_a_regression() -> None:
    from workload.evaluation.compare import compare_rows

    prompts = [f"Tell me a joke about animal{i}." for i in range(8)]
    before = [_result(p, True) for p in prompts]
    after = [_result(p, i >= 5) for i, p in enumerate(prompts)]
    (judge,) = compare_rows("a", before, "b", after).scorers
    assert (judge.passed_then_failed, judge.failed_then_passed) == (5, 0)
    assert judge.p_value == pytest.approx(1 / 32) and judge.regressed, "one-sided at 0.05"


def test_rows_with_one_prompt_and_different_guidelines_pair_by_their_guidelines() -> None:
    """The store returns run B's twins in the other order: each still pairs with its own."""
    from workload.evaluation.compare import compare_rows

    prompt = "Tell me a joke about twins."
    before = [_result(prompt, True, "It is a joke."), _result(prompt, False, "It is short.")]
    after = before[::-1]
    result = compare_rows("a", before, "b", after)
    assert (result.paired, result.flipped, result.unpaired) == (2, (), ())
    # Runs made before the tag pair by what their traces show, guidelines included.
    untagged = [
        _result(prompt, True, "It is a joke.", tagged=False),
        _result(prompt, False, "It is short.", tagged=False),
    ]
    assert compare_rows("a", untagged, "b", untagged[::-1]).flipped == ()


def test_rows_that_cannot_be_told_apart_are_unpaired_not_guessed() -> None:
    from workload.evaluation.compare import compare_rows

    twice = [_result("Echo.", True), _result("Echo.", False)]
    once = [_result("Echo.", True)]
    other = _result("Other.", True)
    result = compare_rows("a", [*twice, other], "b", [*once, other])
    assert result.paired == 1 and result.flipped == ()
    assert [(u["run"], u["prompt"], u["reason"]) for u in result.unpaired] == [
        ("a", "Echo.", "not told apart (2 alike in run A, 1 in run B)"),
        ("a", "Echo.", "not told apart (2 alike in run A, 1 in run B)"),
        ("b", "Echo.", "not told apart (2 alike in run A, 1 in run B)"),
    ]
