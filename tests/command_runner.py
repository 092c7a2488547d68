"""Many workload commands in one process: each scenario's environment, output and status.

Each ``python -m workload`` process pays seconds of MLflow start-up; the end-to-end
tests run their scenarios through ``workload.cli.main`` (what ``python -m workload``
calls) one after another in one child process instead, each with its own
environment. A scenario ``{"command", "args", "env"}`` may add ``"dbutils"``: the
service credentials of a simulated Databricks runtime (``tests/fake_dbutils.py``). An
argument may be ``{"of": NAME, "key": KEY}``: the field KEY of the JSON an earlier
scenario NAME printed (a run id, say), so a command on what another made needs no
process of its own.

Run as a script, it reads the scenarios as JSON on stdin and prints the results as
one JSON line; :func:`run_commands` does that from a test.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent


#: The variables a workload command reads its settings from: a test's command gets only those
#: the test gives it (another test's MLflow calls may have set MLFLOW_TRACKING_URI here).
WORKLOAD_PREFIXES = ("AZURE_OPENAI_", "OPENAI_", "MLFLOW_", "DATABRICKS_", "LLMOPS_")


def workload_env() -> dict[str, str]:
    """This process's environment without the settings a workload command reads."""
    return {k: v for k, v in os.environ.items() if not k.startswith(WORKLOAD_PREFIXES)}


def run_commands(
    scenarios: Mapping[str, Mapping[str, Any]],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 600,
) -> tuple[dict[str, dict[str, Any]], str]:
    """Each scenario's ``code``, ``stdout``, ``stderr``, ``seconds`` (and ``asked``), and all
    the child printed (loggers made before a scenario's redirect write there)."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__))],
        input=json.dumps(scenarios),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, dict[str, Any]] = json.loads(done.stdout.splitlines()[-1])
    return results, done.stdout + done.stderr


def _argument(argument: str | dict[str, str], results: Mapping[str, Mapping[str, Any]]) -> str:
    """``argument``, or the field it names of an earlier scenario's JSON output."""
    if isinstance(argument, str):
        return argument
    return str(json.loads(results[argument["of"]]["stdout"])[argument["key"]])


def _main() -> None:
    sys.path.insert(0, str(TESTS))
    import fake_dbutils

    from workload.cli import main

    results: dict[str, dict[str, Any]] = {}
    for name, plan in json.loads(sys.stdin.read()).items():
        start = time.monotonic()
        os.environ.clear()
        os.environ.update(plan["env"])
        sys.modules.pop(fake_dbutils.MODULE, None)
        dbutils = fake_dbutils.install(plan["dbutils"]) if plan.get("dbutils") else None
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([plan["command"], *[_argument(a, results) for a in plan["args"]]])
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = -2
        results[name] = {
            "code": code,
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
            "seconds": time.monotonic() - start,
            "asked": dbutils.asked if dbutils else [],
        }
    print(json.dumps(results))


if __name__ == "__main__":
    _main()
