"""The release loop end to end: `prompt push|list`, then chat and eval running a version.

The commands run as a user runs them, one after another in one child process
(``tests/command_runner.py``: MLflow's start-up costs seconds a process),
against the fake Azure OpenAI, which records every request, and a local sqlite
MLflow store read back with MLflow's own client.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from command_runner import run_commands, workload_env
from fake_azure_openai import FakeAzureOpenAI, is_judge_prompt

from llmops_infra.offline.engine import PROJECT_DIR

KEY = "test-key-releases-0123456789abcdef"
LAB_SYSTEM = "Assistant is a large language model trained by OpenAI."
#: Version 2's system message: another wording of the lab's.
TERSE_SYSTEM = "You are a terse assistant. Answer in one line."
#: Version 3's: another wording the fake answers as well as the lab's.
KIND_SYSTEM = "Assistant is a kind large language model trained by OpenAI."


def _prompt_file(path: Path, system: str, **extra: Any) -> str:
    template = [{"role": "system", "content": system}, {"role": "user", "content": "{{prompt}}"}]
    path.write_text(json.dumps({"template": template, **extra}))
    return str(path)


#: The dataset every eval here runs: six rows, each with a guideline the fake's judge checks,
#: and a last one with its own system prompt (an override, whatever the version).
OWN_SYSTEM = "You are a zookeeper."
ROWS = [
    {"inputs": {"prompt": f"Tell me a joke about {animal}."},
     "expectations": {"guidelines": [f"The response is a joke about {animal}."]}}
    for animal in ("cats", "dogs", "owls", "penguins", "fish", "frogs")
] + [{"inputs": {"prompt": "Tell me about lions.", "system_prompt": OWN_SYSTEM}}]  # fmt: skip
#: The rows whose messages are the version's.
VERSIONED = [row for row in ROWS if "system_prompt" not in row["inputs"]]
#: What the fake answers a request whose system message is version 2's: no joke at all.
NO_JOKE = "I will not tell jokes."


def _reply(messages: list[dict[str, Any]]) -> str:
    """The fake's model: worse under version 2's system message."""
    system = next((m["content"] for m in messages if m.get("role") == "system"), "")
    return NO_JOKE if system == TERSE_SYSTEM else "Why did the animal cross the road? A joke."


def _verdict(prompt: str) -> bool:
    """The fake's judge: a reply that is no joke fails its guideline."""
    return NO_JOKE not in prompt


class Loop:
    """The scenarios' results, each scenario's own fake (its requests) and the store."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.uri = f"sqlite:///{tmp / 'mlflow.db'}"
        self.results: dict[str, dict[str, Any]] = {}
        self.fakes: dict[str, FakeAzureOpenAI] = {}

    def env(self, fake: FakeAzureOpenAI | None = None, **extra: str) -> dict[str, str]:
        env = {**workload_env(), "MLFLOW_TRACKING_URI": self.uri, "PYTHONPATH": str(PROJECT_DIR)}
        if fake is not None:
            env |= {
                "AZURE_OPENAI_ENDPOINT": fake.endpoint,
                "AZURE_OPENAI_API_KEY": KEY,
                "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
                "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
            }
        return env | extra

    def batch(
        self, plan: list[tuple[str, str, list[str | dict[str, str]], dict[str, str]]]
    ) -> None:
        """Run the scenarios in order in one child process; each has a fake of its own.

        An argument ``{"of": NAME, "key": KEY}`` is a field of scenario NAME's JSON output
        (``tests/command_runner.py``): a run id an earlier scenario made, say.
        """
        scenarios = {}
        for name, command, args, env in plan:
            fake = FakeAzureOpenAI(api_key=KEY, reply_text=_reply, judge_verdict=_verdict)
            self.fakes[name] = fake.start()
            scenarios[name] = {"command": command, "args": args, "env": self.env(fake, **env)}
        try:
            results, _ = run_commands(scenarios, cwd=self.tmp, env=self.env(), timeout=600)
        finally:
            for name in scenarios:
                self.fakes[name].stop()
        self.results |= results

    def requests(self, name: str) -> list[Any]:
        """The chat requests (not the judges') the scenario sent."""
        return [
            r.body for r in self.fakes[name].requests if not is_judge_prompt(r.body["messages"])
        ]

    def json(self, name: str, code: int = 0) -> Any:
        result = self.results[name]
        assert result["code"] == code, result["stderr"]
        return json.loads(result["stdout"])


EVAL = ["--json", "--tpm", "600000"]
GATE = ["--fail-under", "expectations_guidelines=0.9"]
#: The monitor's windows: the four chats and version 1's eval; versions 3's two evals.
WINDOWS = ["--baseline", "11", "--recent", "11"]
#: The eval scenarios whose runs promote takes, and their exit status (version 2 fails its gate).
EVAL_CODES = {"eval_v1": 0, "eval_v2": 3, "eval_v3": 0, "eval_v3_other": 0}


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path) -> Loop:
    tmp = tmp_path_factory.mktemp("releases")
    loop = Loop(tmp)
    for store in ("mlflow.db", "untouched.db"):
        shutil.copyfile(empty_mlflow_store, tmp / store)
    v2 = _prompt_file(tmp / "v2.json", TERSE_SYSTEM, model_config={"temperature": 0.5})
    v3 = _prompt_file(tmp / "v3.json", KIND_SYSTEM)
    bad = _prompt_file(tmp / "bad.json", "{{tone}}")
    dataset = tmp / "rows.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    # The same rows under another path, and other rows under a path like the first's.
    (tmp / "copy").mkdir()
    (tmp / "copy" / "rows.jsonl").write_text(dataset.read_text())
    other = tmp / "other" / "rows.jsonl"
    other.parent.mkdir()
    other.write_text("".join(json.dumps(row) + "\n" for row in ROWS[:4]))
    copy = str(tmp / "copy" / "rows.jsonl")
    run = {name: {"of": name, "key": "run_id"} for name in [*EVAL_CODES, "chat_production"]}
    elsewhere = f"sqlite:///{tmp / 'untouched.db'}"
    ds = ["--dataset", str(dataset)]
    loop.batch(
        [
            ("push_bad", "prompt", ["push", "--file", bad], {"MLFLOW_TRACKING_URI": elsewhere}),
            ("chat_unregistered", "chat", ["--json"], {}),
            ("push_first", "prompt", ["push", "--json"], {}),
            ("push_again", "prompt", ["push", "--json"], {}),
            ("push_v2", "prompt", ["push", "--file", v2, "--alias", "candidate", "--json"], {}),
            ("list", "prompt", ["list", "--json"], {}),
            (
                "uc_without_name",
                "prompt",
                ["list"],
                # a workspace named (never reached): the missing prompt name is what stops it
                {"MLFLOW_TRACKING_URI": "databricks", "DATABRICKS_HOST": "https://127.0.0.1:9"},
            ),
            ("chat_production", "chat", ["--json"], {}),
            ("chat_candidate", "chat", ["--json", "--prompt-version", "candidate"], {}),
            ("chat_missing", "chat", ["--json", "--prompt-version", "9"], {}),
            ("chat_override", "chat", ["--json", "--system-prompt", "Be brief."], {}),
            ("eval_v1", "eval", [*EVAL, *ds, "--prompt-version", "1"], {}),
            ("eval_v2", "eval", [*EVAL, *ds, "--prompt-version", "2", *GATE], {}),
            ("eval_missing", "eval", [*EVAL, *ds, "--prompt-version", "nope"], {}),
            ("push_v3", "prompt", ["push", "--file", v3, "--json"], {}),
            ("eval_v3", "eval", [*EVAL, "--prompt-version", "3", "--dataset", copy], {}),
            (
                "eval_v3_other",
                "eval",
                [*EVAL, "--prompt-version", "3", "--dataset", str(other)],
                {},
            ),
            # Then promote and rollback on the runs those made.
            ("promote_chat_run", "promote", [run["chat_production"]], {}),
            ("promote_v2", "promote", [run["eval_v2"], "--json"], {}),
            (
                "promote_other_dataset",
                "promote",
                [run["eval_v3"], "--baseline", run["eval_v3_other"]],
                {},
            ),
            ("promote_v3", "promote", [run["eval_v3"], "--json"], {}),
            ("list_promoted", "prompt", ["list", "--json"], {}),
            ("rollback", "rollback", ["--json"], {}),
            ("rollback_never_promoted", "rollback", ["--alias", "candidate"], {}),
            ("list_rolled_back", "prompt", ["list", "--json"], {}),
            ("monitor", "monitor", ["--json", *WINDOWS], {}),
            ("monitor_table", "monitor", WINDOWS, {}),
        ]
    )
    return loop


def _client(loop: Loop) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=loop.uri, registry_uri=loop.uri)


# --- prompt push | list ----------------------------------------------------------------------


def test_a_bad_file_exits_2_naming_the_problem_and_registers_nothing(loop: Loop) -> None:
    result = loop.results["push_bad"]
    assert result["code"] == 2, result
    assert "uses {{tone}}" in result["stderr"], "the problem is named"
    assert "Traceback" not in result["stderr"]


def test_the_first_push_registers_version_1_as_production(loop: Loop) -> None:
    assert loop.json("push_first") == {"name": "lab_chat", "version": 1, "created": True}
    version = _client(loop).get_prompt_version_by_alias("lab_chat", "production")
    assert int(version.version) == 1
    assert version.template[0]["content"] == LAB_SYSTEM, "the packaged prompt"


def test_a_second_push_of_the_same_file_registers_nothing(loop: Loop) -> None:
    assert loop.json("push_again") == {"name": "lab_chat", "version": 1, "created": False}


def test_a_changed_file_is_version_2_with_its_alias_and_production_stays(loop: Loop) -> None:
    assert loop.json("push_v2") == {"name": "lab_chat", "version": 2, "created": True}
    client = _client(loop)
    assert int(client.get_prompt_version_by_alias("lab_chat", "candidate").version) == 2
    assert int(client.get_prompt_version_by_alias("lab_chat", "production").version) == 1
    assert client.get_prompt_version("lab_chat", 2).model_config == {"temperature": 0.5}


def test_list_shows_the_versions_their_aliases_and_production(loop: Loop) -> None:
    listed = loop.json("list")
    assert listed["name"] == "lab_chat"
    assert listed["production"] == 1
    assert [(v["version"], v["aliases"]) for v in listed["versions"]] == [
        (2, ["candidate"]),
        (1, ["production"]),
    ]
    assert all(v["created"] for v in listed["versions"])


def test_on_databricks_without_a_name_the_prompt_commands_name_the_catalog_key(
    loop: Loop,
) -> None:
    result = loop.results["uc_without_name"]
    assert result["code"] == 2, result
    assert "llmops:catalog" in result["stderr"]


def test_the_untouched_store_has_no_prompt_after_a_bad_push(loop: Loop) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{loop.tmp / 'untouched.db'}"
    assert MlflowClient(tracking_uri=uri, registry_uri=uri).get_prompt("lab_chat") is None


# --- chat and eval run a version --------------------------------------------------------------


def _tags(loop: Loop, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The run's tags and its trace's tags."""
    result = loop.json(name)
    client = _client(loop)
    trace = client.get_trace(result["trace_id"])
    return client.get_run(result["run_id"]).data.tags, trace.info.tags


def test_without_a_registered_prompt_chat_sends_the_labs_two_messages_tagged_packaged(
    loop: Loop,
) -> None:
    (body,) = loop.requests("chat_unregistered")
    assert body["messages"] == [
        {"role": "system", "content": LAB_SYSTEM},
        {"role": "user", "content": "Tell me a joke about animals."},
    ]
    assert set(body) == {"model", "messages"}, "nothing else in the lab's request"
    assert loop.json("chat_unregistered")["prompt_version"] == "packaged"
    run_tags, trace_tags = _tags(loop, "chat_unregistered")
    assert run_tags["llmops.prompt_version"] == trace_tags["llmops.prompt_version"] == "packaged"


def test_chat_runs_production_by_default_and_mlflow_links_the_version_to_the_run(
    loop: Loop,
) -> None:
    (body,) = loop.requests("chat_production")
    assert body["messages"][0] == {"role": "system", "content": LAB_SYSTEM}
    assert loop.json("chat_production")["prompt_version"] == "lab_chat/1"
    run_tags, trace_tags = _tags(loop, "chat_production")
    assert run_tags["llmops.prompt_version"] == trace_tags["llmops.prompt_version"] == "lab_chat/1"
    linked = json.loads(run_tags["mlflow.linkedPrompts"])
    assert linked == [{"name": "lab_chat", "version": "1"}], "loaded with load_prompt in the run"


def test_chat_runs_the_version_an_alias_names_with_its_model_config(loop: Loop) -> None:
    (body,) = loop.requests("chat_candidate")
    assert body["messages"] == [
        {"role": "system", "content": TERSE_SYSTEM},
        {"role": "user", "content": "Tell me a joke about animals."},
    ]
    assert body["temperature"] == 0.5, "the version's model config makes the request"
    _, trace_tags = _tags(loop, "chat_candidate")
    assert trace_tags["llmops.prompt_version"] == "lab_chat/2"


def test_a_missing_version_exits_2_and_sends_nothing(loop: Loop) -> None:
    for name, says in (("chat_missing", "'9'"), ("eval_missing", "'nope'")):
        result = loop.results[name]
        assert result["code"] == 2, result
        assert says in result["stderr"] and "Traceback" not in result["stderr"]
        assert loop.fakes[name].requests == [], f"{name}: nothing sent"


def test_a_system_prompt_given_is_an_override(loop: Loop) -> None:
    (body,) = loop.requests("chat_override")
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    run_tags, trace_tags = _tags(loop, "chat_override")
    assert run_tags["llmops.prompt_version"] == trace_tags["llmops.prompt_version"] == "override"


def test_eval_sends_each_row_with_the_versions_messages_and_tags_run_and_traces(
    loop: Loop,
) -> None:
    for name, version, system in (("eval_v1", 1, LAB_SYSTEM), ("eval_v2", 2, TERSE_SYSTEM)):
        result = loop.json(name, EVAL_CODES[name])
        assert result["prompt_version"] == f"lab_chat/{version}"
        bodies = loop.requests(name)
        assert sorted(b["messages"][-1]["content"] for b in bodies) == sorted(
            row["inputs"]["prompt"] for row in ROWS
        )
        systems = [b["messages"][0]["content"] for b in bodies]
        assert systems.count(system) == len(VERSIONED), "the version's system message"
        assert systems.count(OWN_SYSTEM) == 1, "a row's own system prompt wins"
        client = _client(loop)
        run = client.get_run(result["run_id"])
        assert run.data.tags["llmops.prompt_version"] == f"lab_chat/{version}"
        assert json.loads(run.data.tags["mlflow.linkedPrompts"]) == [
            {"name": "lab_chat", "version": str(version)}
        ]
        traces = client.search_traces(
            locations=[run.info.experiment_id], run_id=result["run_id"], max_results=50
        )
        tags = sorted(t.info.tags.get("llmops.prompt_version") for t in traces)
        assert tags == sorted([f"lab_chat/{version}"] * len(VERSIONED) + ["override"])


# --- promote and rollback ---------------------------------------------------------------------


def _production(loop: Loop) -> int:
    return int(_client(loop).get_prompt_version_by_alias("lab_chat", "production").version)


def test_promote_refuses_a_version_the_judges_score_worse_and_changes_nothing(
    loop: Loop,
) -> None:
    decision = loop.json("promote_v2", 3)
    assert decision["promoted"] is False
    assert (decision["alias"], decision["from_version"], decision["to_version"]) == (
        "production",
        1,
        2,
    )
    reasons = "\n".join(decision["reasons"])
    assert "gates failed" in reasons, "its own --fail-under gate failed"
    assert "expectations_guidelines regressed" in reasons, "compare's test found the regression"
    assert loop.json("list_promoted")["history"][0]["action"] == "promote", (
        "the refusal left no move"
    )


def test_promote_moves_production_to_an_equally_good_version_and_records_it(loop: Loop) -> None:
    decision = loop.json("promote_v3")
    assert decision == {
        "promoted": True,
        "alias": "production",
        "from_version": 1,
        "to_version": 3,
        "reasons": [],
    }, "the baseline is version 1's eval on the same rows (another path, same digest)"
    listed = loop.json("list_promoted")
    assert listed["production"] == 3
    (move,) = listed["history"]
    run_v3 = loop.json("eval_v3")["run_id"]
    assert {k: move[k] for k in ("action", "from_version", "to_version", "run_id")} == {
        "action": "promote",
        "from_version": 1,
        "to_version": 3,
        "run_id": run_v3,
    }
    assert move["time"] and move["user"]


def test_promote_exits_2_for_a_run_that_is_no_eval_or_a_baseline_on_other_rows(
    loop: Loop,
) -> None:
    chat = loop.results["promote_chat_run"]
    assert chat["code"] == 2 and "is not an eval run" in chat["stderr"], chat
    other = loop.results["promote_other_dataset"]
    assert other["code"] == 2 and "the datasets differ" in other["stderr"], other


def test_rollback_restores_the_previous_version_and_the_history_holds_both_moves(
    loop: Loop,
) -> None:
    assert loop.json("rollback") == {"alias": "production", "from_version": 3, "to_version": 1}
    assert _production(loop) == 1
    history = loop.json("list_rolled_back")["history"]
    assert [(m["action"], m["from_version"], m["to_version"]) for m in history] == [
        ("promote", 1, 3),
        ("rollback", 3, 1),
    ]
    never = loop.results["rollback_never_promoted"]
    assert never["code"] == 2 and "never moved by promote" in never["stderr"], never


# --- the monitor sees versions ----------------------------------------------------------------


def test_the_monitor_counts_prompt_versions_per_window_and_says_they_differ(loop: Loop) -> None:
    report = loop.json("monitor")
    assert report["prompt_versions"] == {
        "baseline": {"packaged": 1, "lab_chat/1": 7, "lab_chat/2": 1, "override": 2},
        "recent": {"lab_chat/3": 10, "override": 1},
    }
    table = loop.results["monitor_table"]
    assert table["code"] == 0, table["stderr"]
    assert "the windows ran different prompt versions" in table["stdout"]
    assert "recent lab_chat/3 x10, override x1" in table["stdout"]
