"""The release loop end to end: `prompt push|list`, then chat and eval running a version.

The commands run as a user runs them, one after another in one child process
(``tests/command_runner.py``: MLflow's start-up costs seconds a process),
against the fake Azure OpenAI, which records every request, and a local sqlite
MLflow store read back with MLflow's own client.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from command_runner import run_commands
from fake_azure_openai import FakeAzureOpenAI

from llmops_infra.offline.engine import PROJECT_DIR

KEY = "test-key-releases-0123456789abcdef"
LAB_SYSTEM = "Assistant is a large language model trained by OpenAI."
#: Version 2's system message: another wording of the lab's.
TERSE_SYSTEM = "You are a terse assistant. Answer in one line."


def _clean_env() -> dict[str, str]:
    prefixes = ("AZURE_OPENAI_", "OPENAI_", "MLFLOW_", "DATABRICKS_", "LLMOPS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def _prompt_file(path: Path, system: str, **extra: Any) -> str:
    template = [{"role": "system", "content": system}, {"role": "user", "content": "{{prompt}}"}]
    path.write_text(json.dumps({"template": template, **extra}))
    return str(path)


class Loop:
    """The scenarios' results, the fake's requests and the store, after the whole run."""

    def __init__(self, tmp: Path, fake: FakeAzureOpenAI) -> None:
        self.tmp = tmp
        self.fake = fake
        self.uri = f"sqlite:///{tmp / 'mlflow.db'}"
        self.results: dict[str, dict[str, Any]] = {}
        #: The fake's requests, by scenario.
        self.requests: dict[str, list[Any]] = {}

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **_clean_env(),
            "MLFLOW_TRACKING_URI": self.uri,
            "AZURE_OPENAI_ENDPOINT": self.fake.endpoint,
            "AZURE_OPENAI_API_KEY": KEY,
            "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
            "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
            "PYTHONPATH": str(PROJECT_DIR),
            **extra,
        }

    def run(self, name: str, command: str, *args: str, **env: str) -> dict[str, Any]:
        before = len(self.fake.requests)
        plan = {name: {"command": command, "args": list(args), "env": self.env(**env)}}
        results, _ = run_commands(plan, cwd=self.tmp, env=self.env(), timeout=300)
        self.results[name] = results[name]
        self.requests[name] = list(self.fake.requests[before:])
        return results[name]

    def json(self, name: str) -> Any:
        result = self.results[name]
        assert result["code"] == 0, result["stderr"]
        return json.loads(result["stdout"])


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    tmp = tmp_path_factory.mktemp("releases")
    with FakeAzureOpenAI(api_key=KEY) as fake:
        loop = Loop(tmp, fake)
        v2 = _prompt_file(tmp / "v2.json", TERSE_SYSTEM, model_config={"temperature": 0.5})
        bad = _prompt_file(tmp / "bad.json", "{{tone}}")
        plan: list[tuple[str, str, list[str], dict[str, str]]] = [
            ("push_bad", "prompt", ["push", "--file", bad], {}),
            ("push_first", "prompt", ["push", "--json"], {}),
            ("push_again", "prompt", ["push", "--json"], {}),
            ("push_v2", "prompt", ["push", "--file", v2, "--alias", "candidate", "--json"], {}),
            ("list", "prompt", ["list", "--json"], {}),
            ("uc_without_name", "prompt", ["list"], {"MLFLOW_TRACKING_URI": "databricks"}),
        ]
        for name, command, args, env in plan:
            loop.run(name, command, *args, **env)
        yield loop


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
