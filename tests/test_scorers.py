"""`scorers start|stop|list`: the eval's judge registered as an MLflow registered scorer.

Registered scorers need a Databricks workspace, so each command runs as a user runs
it (``python -m workload scorers ...``, one child process each) with MLflow's edges
faked below its public API (``tests/fake_scorer_registry.py``: the workspace's
scheduled-scorers REST API kept in a file, the experiment, a record of each public
call). What is checked is what MLflow was asked and what its Databricks store kept.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from command_runner import workload_env
from fake_scorer_registry import EXPERIMENT_ID, WRAPPER

from llmops_infra.offline.engine import PROJECT_DIR

TESTS = Path(__file__).resolve().parent
CHAT_ENDPOINT = "llmops-gpt-4o"
JUDGE_ENDPOINT = "llmops-gpt-4o-mini"
EXPERIMENT = "/Users/alice@example.com/llmops-lab"
#: The guideline most rows of the shipped prompt set share: the judge's on production traces.
ALL_AGES = "The response is suitable for all ages: no violence, crude language or adult themes."
#: A scorer someone else registered on the experiment: scorers stop leaves it alone.
OTHER = "someone_elses_relevance"


class Workspace:
    """A reachable address for the workspace (the commands probe it), the state file, runs."""

    def __init__(self, tmp: Path, host: str) -> None:
        self.tmp = tmp
        self.host = host
        self.state = tmp / "scorers.json"

    def outputs(self, name: str, **outputs: str) -> str:
        path = self.tmp / f"{name}.json"
        path.write_text(json.dumps({"databricks_workspace_url": self.host, **outputs}))
        return str(path)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        full = {
            **workload_env(),
            "PYTHONPATH": os.pathsep.join((str(TESTS), str(PROJECT_DIR))),
            "FAKE_SCORERS_STATE": str(self.state),
            "MLFLOW_TRACKING_URI": "databricks",
            "DATABRICKS_TOKEN": "dapi-test-token",
            **env,
        }
        return subprocess.run(
            [sys.executable, "-c", WRAPPER, "scorers", *args],
            cwd=self.tmp,
            env=full,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def read(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.state.read_text()) if self.state.exists() else {}
        return {"experiments": {}, "calls": [], **state}

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self.read()["calls"][since:])

    def stored(self) -> dict[str, dict[str, Any]]:
        """The scheduled scorers the workspace keeps for the experiment, by name."""
        configs = self.read()["experiments"].get(EXPERIMENT_ID, [])
        return {c["name"]: c for c in configs}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The commands, in a user's order, on one fake workspace; what each left."""
    from mlflow.genai.scorers import RelevanceToQuery

    tmp = tmp_path_factory.mktemp("scorers")
    with socket.create_server(("127.0.0.1", 0)) as listening:
        host = f"https://127.0.0.1:{listening.getsockname()[1]}"
        ws = Workspace(tmp, host)
        other = RelevanceToQuery(name=OTHER, model="databricks:/someone-elses")
        seeded = {
            "name": OTHER,
            "serialized_scorer": json.dumps(other.model_dump()),
            "builtin": {"name": OTHER},
            "sample_rate": 0.3,
            "scorer_version": 1,
        }
        ws.state.write_text(json.dumps({"experiments": {EXPERIMENT_ID: [seeded]}, "calls": []}))
        gateway = ws.outputs(
            "gateway",
            databricks_serving_endpoint=CHAT_ENDPOINT,
            databricks_judge_serving_endpoint=JUDGE_ENDPOINT,
            mlflow_experiment_path=EXPERIMENT,
        )
        chat_only = ws.outputs(
            "chat_only",
            databricks_serving_endpoint=CHAT_ENDPOINT,
            mlflow_experiment_path=EXPERIMENT,
        )
        no_gateway = ws.outputs("no_gateway", mlflow_experiment_path=EXPERIMENT)
        results: dict[str, Any] = {"ws": ws}
        steps: list[tuple[str, list[str], dict[str, str]]] = [
            ("local_store", ["start", "--outputs", gateway], {"MLFLOW_TRACKING_URI": "sqlite:///x.db"}),
            ("no_gateway", ["start", "--outputs", no_gateway], {}),
            ("start", ["start", "--outputs", gateway, "--sample-rate", "0.25"], {}),
            ("start_again", ["start", "--outputs", gateway, "--sample-rate", "0.5"], {}),
            ("list", ["list", "--outputs", gateway, "--json"], {}),
            ("stop", ["stop", "--outputs", gateway], {}),
            ("list_stopped", ["list", "--outputs", gateway, "--json"], {}),
            ("start_chat_judge", ["start", "--outputs", chat_only], {}),
        ]  # fmt: skip
        for name, args, env in steps:
            before = len(ws.calls())
            done = ws.run(*args, **env)
            results[name] = {
                "code": done.returncode,
                "stdout": done.stdout,
                "stderr": done.stderr,
                "calls": ws.calls(before),
                "stored": ws.stored(),
            }
        yield results


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["code"] == 0, result["stderr"]
    return result


def _calls(result: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for c in result["calls"] if c["call"] == name]


def test_start_registers_the_guidelines_judge_on_the_gateways_judge_endpoint(
    runs: dict[str, Any],
) -> None:
    result = _ok(runs["start"])
    (registered,) = _calls(result, "register")
    assert registered["class"] == "Guidelines", "MLflow's Guidelines judge, as the eval's"
    assert registered["name"] == "guidelines", "under the eval's judge name"
    assert registered["experiment_id"] == EXPERIMENT_ID
    assert registered["model"] == f"databricks:/{JUDGE_ENDPOINT}", "the gateway's judge endpoint"
    assert registered["guidelines"] == [ALL_AGES], "the shipped prompt set's general guideline"
    (started,) = _calls(result, "start")
    assert started["name"] == "guidelines" and started["sample_rate"] == 0.25
    assert started["experiment_id"] == EXPERIMENT_ID
    assert {"call": "set_experiment", "experiment": EXPERIMENT} in result["calls"], (
        "the stack's experiment, as chat and eval use it on Databricks"
    )
    stored = result["stored"]["guidelines"]
    assert stored["sample_rate"] == 0.25
    assert json.loads(stored["serialized_scorer"])["builtin_scorer_pydantic_data"]["model"] == (
        f"databricks:/{JUDGE_ENDPOINT}"
    )
    assert "0.25" in result["stdout"] and JUDGE_ENDPOINT in result["stdout"]


def test_a_second_start_updates_the_sample_rate_and_registers_nothing_new(
    runs: dict[str, Any],
) -> None:
    result = _ok(runs["start_again"])
    assert _calls(result, "register") == [], "the same judge is not registered again"
    (updated,) = _calls(result, "update")
    assert updated["name"] == "guidelines" and updated["sample_rate"] == 0.5
    assert sorted(result["stored"]) == sorted(["guidelines", OTHER]), "still one of each"
    assert result["stored"]["guidelines"]["sample_rate"] == 0.5
    assert result["stored"]["guidelines"]["scorer_version"] == 1, "the definition unchanged"


def test_list_json_shows_each_scorer_its_sample_rate_judge_model_and_state(
    runs: dict[str, Any],
) -> None:
    listed = json.loads(_ok(runs["list"])["stdout"])
    assert listed["experiment_id"] == EXPERIMENT_ID
    assert listed["scorers"] == [
        {
            "name": "guidelines",
            "sample_rate": 0.5,
            "model": f"databricks:/{JUDGE_ENDPOINT}",
            "active": True,
            "ours": True,
        },
        {
            "name": OTHER,
            "sample_rate": 0.3,
            "model": "databricks:/someone-elses",
            "active": True,
            "ours": False,
        },
    ]
    assert _calls(runs["list"], "register") == _calls(runs["list"], "update") == []


def test_stop_sets_our_scorers_sample_rate_to_zero_and_leaves_others_alone(
    runs: dict[str, Any],
) -> None:
    result = _ok(runs["stop"])
    assert [c["name"] for c in _calls(result, "stop")] == ["guidelines"]
    assert result["stored"]["guidelines"]["sample_rate"] == 0.0, "stopped, still registered"
    assert result["stored"][OTHER]["sample_rate"] == 0.3, "another's scorer keeps running"
    listed = json.loads(_ok(runs["list_stopped"])["stdout"])["scorers"]
    ours = next(s for s in listed if s["name"] == "guidelines")
    assert ours["active"] is False and ours["sample_rate"] == 0.0


def test_without_a_judge_endpoint_the_chat_endpoint_judges_and_start_replaces_the_definition(
    runs: dict[str, Any],
) -> None:
    result = _ok(runs["start_chat_judge"])
    (registered,) = _calls(result, "register")
    assert registered["model"] == f"databricks:/{CHAT_ENDPOINT}"
    stored = result["stored"]
    assert sorted(stored) == sorted(["guidelines", OTHER]), "replaced under its name, not added"
    assert stored["guidelines"]["scorer_version"] == 2, "a new version of the same scorer"
    assert stored["guidelines"]["sample_rate"] == 1.0, "started again at the default rate"


@pytest.mark.parametrize(
    ("run", "needed"),
    [("local_store", "MLFLOW_TRACKING_URI=databricks"), ("no_gateway", "llmops:gateway true")],
)
def test_anywhere_but_databricks_in_gateway_mode_exits_2_in_one_line_calling_nothing(
    runs: dict[str, Any], run: str, needed: str
) -> None:
    result = runs[run]
    assert result["code"] == 2, result
    assert needed in result["stderr"]
    assert len(result["stderr"].strip().splitlines()) == 1, "one line, no traceback"
    assert result["calls"] == [], "nothing called: no experiment, no registry"
    assert result["stdout"] == ""


def test_the_production_judges_guidelines_are_those_more_than_half_the_rows_share() -> None:
    from workload.evaluation.dataset import EvalRow, general_guidelines

    def row(*guidelines: str) -> EvalRow:
        return EvalRow(prompt="p", system_prompt=None, guidelines=guidelines)

    rows = [row("kind", "cats", "kind"), row("kind", "dogs"), row("kind", "brief"), row("brief")]
    assert general_guidelines(rows) == ("kind",), "3 of 4 rows; 'brief' has only half"
    assert general_guidelines([]) == ()
