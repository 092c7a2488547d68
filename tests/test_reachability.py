"""An unreachable tracking server or workspace fails in seconds with one line, exit 1.

MLflow's client and the Databricks SDK would retry for minutes; the commands probe first
(``workload/config/reachability.py``). Each address here is a local port nobody listens
on, and each command runs as the command line runs it (``tests/command_runner.py``).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from command_runner import run_commands

from llmops_infra.offline.engine import PROJECT_DIR
from workload import contract


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_tracking_server_and_workspace_exit_1_in_one_line(tmp_path: Path) -> None:
    port = _closed_port()
    server = f"http://127.0.0.1:{port}"
    workspace = f"https://127.0.0.1:{port}"
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                contract.OPENAI_ENDPOINT: "https://oai-x.openai.azure.com/",
                contract.OPENAI_API_KEY: "k" * 32,
                contract.OPENAI_DEPLOYMENT: "gpt-4o",
                contract.OPENAI_API_VERSION: "2024-05-01-preview",
                contract.DATABRICKS_WORKSPACE_URL: workspace,
                contract.MLFLOW_EXPERIMENT_PATH: "/Shared/llmops-lab",
                contract.DATABRICKS_CHAT_JOB_ID: "12",
            }
        )
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DATABRICKS_"))}
    base["PYTHONPATH"] = str(PROJECT_DIR)
    on_server = {**base, "MLFLOW_TRACKING_URI": server}
    on_databricks = {**base, "MLFLOW_TRACKING_URI": "databricks", "DATABRICKS_TOKEN": "t" * 20}
    args = ["--outputs", str(outputs)]
    plan = {
        "chat": {"command": "chat", "args": args, "env": on_server},
        "eval": {"command": "eval", "args": args, "env": on_server},
        "monitor": {"command": "monitor", "args": args, "env": on_databricks},
        "submit": {"command": "submit", "args": args, "env": on_databricks},
    }
    results, _ = run_commands(plan, cwd=tmp_path, env=base, timeout=300)

    for name, address, service in (
        ("chat", server, "the MLflow tracking server"),
        ("eval", server, "the MLflow tracking server"),
        ("monitor", workspace, "the Databricks workspace"),
        ("submit", workspace, "the Databricks workspace"),
    ):
        result = results[name]
        lines = result["stderr"].splitlines()
        assert result["code"] == 1, f"{name}: a service that cannot be reached failed: {lines}"
        # Only the probe says this, before any client's retries: so it gave up in seconds
        # (no wall-clock bound here, which a busy machine could break).
        assert lines[-1].startswith(f"error: cannot reach {service} at {address} ("), lines
        assert "check" in lines[-1]
        errors = [line for line in lines if line.startswith("error")]
        assert len(errors) == 1, f"{name}: one error line: {lines}"
