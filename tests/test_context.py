"""Every command resolves the stack, the store and the experiment one way: `monitor` finds `chat`'s.

The end-to-end check runs `chat` ten times, then `monitor`, each from the same
``--outputs`` file and neither with ``--experiment`` or ``MLFLOW_EXPERIMENT_NAME``,
as separate processes against the local fake Azure OpenAI and a real sqlite
MLflow store; the monitor must read exactly the traces the chat calls reported.
Tracking to Databricks cannot be reached from here, so the resolution itself is
checked directly with a ``databricks`` tracking URI, through the commands' own
parsers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from command_runner import workload_env
from fake_azure_openai import FakeAzureOpenAI

from workload import contract
from workload.cli import build_parser
from workload.config.context import resolve_context
from workload.config.defaults import DEFAULT_EXPERIMENT
from workload.errors import SettingsError
from workload.monitoring.drift import MIN_VALUES

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent.parent
CALLS = 2 * MIN_VALUES
STACK_EXPERIMENT = "/Shared/llmops-lab"
HOST = "https://adb-1234567890123456.16.azuredatabricks.net"

#: Runs `python -m workload chat --outputs FILE --json` CALLS times in one process
#: (MLflow's start-up costs seconds a process), exactly what the command line runs.
_CHAT_LOOP = f"""
import sys
from workload.cli import main
sys.exit(max(main(["chat", "--outputs", sys.argv[1], "--json"]) for _ in range({CALLS})))
"""


def _outputs(endpoint: str, key: str) -> dict[str, Any]:
    """A key-mode stack's outputs, as `pulumi stack output --json --show-secrets` writes them."""
    return {
        contract.OPENAI_ENDPOINT: endpoint,
        contract.OPENAI_API_KEY: key,
        contract.OPENAI_API_VERSION: "2024-05-01-preview",
        contract.OPENAI_DEPLOYMENT: "gpt-4o",
        contract.OPENAI_AUTH_MODE: "key",
        contract.DATABRICKS_WORKSPACE_URL: HOST,
        contract.MLFLOW_EXPERIMENT_PATH: STACK_EXPERIMENT,
    }


def test_chat_then_monitor_with_the_same_outputs_find_the_same_traces(
    tmp_path: Path, empty_mlflow_store: Path
) -> None:
    db = tmp_path / "mlflow.db"
    shutil.copyfile(empty_mlflow_store, db)  # its tables made already
    env = {
        **workload_env(),
        "MLFLOW_TRACKING_URI": f"sqlite:///{db}",
        # Each call's trace is written before the next starts (the command ends the
        # background exporter after its call, which suits one call a process).
        "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false",
        "PYTHONPATH": str(PROJECT),
    }
    with FakeAzureOpenAI() as fake:
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps(_outputs(fake.endpoint, fake.api_key)))
        chat = subprocess.run(
            [sys.executable, "-c", _CHAT_LOOP, str(outputs)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert chat.returncode == 0, f"every chat call succeeded\n{chat.stderr}"
        assert len(fake.requests) == CALLS
        assert all(r.headers["api-key"] == fake.api_key for r in fake.requests), (
            "the key came from the outputs file"
        )
    monitor = subprocess.run(
        [sys.executable, "-m", "workload", "monitor", "--outputs", str(outputs), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert monitor.returncode == 0, monitor.stderr
    report = json.loads(monitor.stdout)
    replies = [json.loads(line) for line in chat.stdout.splitlines()]
    assert report["experiment"] == DEFAULT_EXPERIMENT, "a local store: the default experiment"
    assert {r["experiment_id"] for r in replies} == {report["experiment_id"]}, (
        "monitor reads the experiment chat wrote to"
    )
    assert report["baseline"]["traces"] + report["recent"]["traces"] == CALLS, (
        "monitor finds every trace the chat calls left"
    )
    assert fake.api_key not in chat.stdout + chat.stderr + monitor.stdout + monitor.stderr


def _resolve(argv: list[str], env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The experiment a command line resolves, through the command's own parser; and the
    environment afterwards."""
    args = build_parser().parse_args(argv)
    environ = dict(env)
    context = resolve_context(args, model=args.command == "chat", env=environ)
    return context.experiment, environ


@pytest.fixture(autouse=True)
def reachable_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The made-up workspace host counts as reachable (tests/test_reachability.py probes)."""
    monkeypatch.setattr(
        "workload.config.reachability.check_reachable", lambda url, what, hint: None
    )


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(_outputs("https://oai-x.openai.azure.com/", "k" * 32)))
    return path


@pytest.mark.parametrize("command", ["chat", "monitor"])
def test_tracking_to_databricks_uses_the_stacks_experiment_and_workspace(
    command: str, outputs_file: Path
) -> None:
    experiment, env = _resolve(
        [command, "--outputs", str(outputs_file)], {"MLFLOW_TRACKING_URI": "databricks"}
    )
    assert experiment == STACK_EXPERIMENT, f"{command} uses mlflow_experiment_path on Databricks"
    assert env["DATABRICKS_HOST"] == HOST, f"{command} tells MLflow the stack's workspace"


@pytest.mark.parametrize("command", ["chat", "monitor"])
def test_on_a_cluster_mlflow_tracks_to_the_workspace_by_itself(
    command: str, outputs_file: Path
) -> None:
    experiment, env = _resolve(
        [command, "--outputs", str(outputs_file)], {"DATABRICKS_RUNTIME_VERSION": "16.4"}
    )
    assert experiment == STACK_EXPERIMENT
    assert "DATABRICKS_HOST" not in env, "the cluster's MLflow knows its workspace"


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--experiment", "mine"], {"MLFLOW_EXPERIMENT_NAME": "env"}, "mine"),
        ([], {"MLFLOW_EXPERIMENT_NAME": "env"}, "env"),
        ([], {"MLFLOW_TRACKING_URI": "databricks://lab-profile"}, STACK_EXPERIMENT),
        ([], {"MLFLOW_TRACKING_URI": "sqlite:///x.db"}, DEFAULT_EXPERIMENT),
        ([], {}, DEFAULT_EXPERIMENT),
    ],
)
def test_experiment_precedence_is_the_same_for_every_command(
    argv: list[str], env: dict[str, str], expected: str, outputs_file: Path
) -> None:
    for command in ("chat", "monitor"):
        experiment, _ = _resolve([command, "--outputs", str(outputs_file), *argv], env)
        assert experiment == expected, f"{command} {argv} with {env}"


def test_a_local_store_gets_no_databricks_host(outputs_file: Path) -> None:
    _, env = _resolve(
        ["monitor", "--outputs", str(outputs_file)], {"MLFLOW_TRACKING_URI": "sqlite:///x.db"}
    )
    assert "DATABRICKS_HOST" not in env


def test_every_command_takes_outputs_or_stack() -> None:
    parser = build_parser()
    for command in ("chat", "monitor", "submit"):
        assert parser.parse_args([command, "--stack", "dev"]).stack == "dev"
        assert parser.parse_args([command, "--outputs", "o.json"]).outputs == "o.json"
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--stack", "dev", "--outputs", "o.json"])


def test_a_context_without_the_model_has_no_settings_to_give(outputs_file: Path) -> None:
    args = build_parser().parse_args(["monitor", "--outputs", str(outputs_file)])
    context = resolve_context(args, model=False, env={})
    assert context.outputs[contract.MLFLOW_EXPERIMENT_PATH] == STACK_EXPERIMENT
    with pytest.raises(RuntimeError, match="model=False"):
        _ = context.settings


def test_a_command_that_needs_the_stack_says_so() -> None:
    args = build_parser().parse_args(["submit"])
    with pytest.raises(SettingsError, match="--stack NAME or --outputs FILE"):
        resolve_context(args, model=False, require_outputs=True, env={})


@pytest.mark.parametrize(
    "argv",
    [["monitor"], ["compare", "run-a", "run-b"], ["chat"]],
    ids=["monitor", "compare", "chat"],
)
def test_tracking_to_databricks_with_no_workspace_says_what_to_set_in_one_line(
    argv: list[str], tmp_path: Path
) -> None:
    """Not MLflow's own paragraph cut off mid-word: exit 2, one line, nothing sent."""
    env = {
        **workload_env(),
        "HOME": str(tmp_path),  # no ~/.databrickscfg
        "MLFLOW_TRACKING_URI": "databricks",
        "AZURE_OPENAI_ENDPOINT": "https://oai-x.openai.azure.com/",
        "AZURE_OPENAI_API_KEY": "k" * 32,
        "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
        "PYTHONPATH": str(PROJECT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "workload", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.splitlines() == [
        "error: MLFLOW_TRACKING_URI=databricks names no Databricks workspace (no "
        "DATABRICKS_HOST, and no host for the profile DEFAULT in ~/.databrickscfg): pass "
        "--outputs FILE or --stack NAME (the stack's databricks_workspace_url), or set "
        "DATABRICKS_HOST and sign in with `az login` or DATABRICKS_TOKEN"
    ]
