"""`plan` where the project has no `.venv`: the policy pack runs with plan's own interpreter.

``policy/PulumiPolicy.yaml`` names the project's ``../.venv``, which ``tasks.py``
makes; a user who installed the dependencies into an environment of their own, or
CI's interpreter, has none. The test copies the project without ``.venv`` and runs
``python -m llmops_infra plan`` there with this interpreter, as such a user would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from plan_runs import clean_env

from workload.contract import PROJECT_DIR

_LEFT_OUT = shutil.ignore_patterns(
    ".venv", ".git", "tests", "bench", "docs", "__pycache__", "*.png"
)


@pytest.fixture(scope="module")
def bare_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with no `.venv` (nor tests, benchmarks or docs)."""
    copy = tmp_path_factory.mktemp("bare") / "llmops-databricks"
    shutil.copytree(PROJECT_DIR, copy, ignore=_LEFT_OUT)
    assert not (copy / ".venv").exists()
    return copy


def _plan(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmops_infra", "plan", *args],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_plan_without_the_projects_venv_runs_the_pack_with_its_own_interpreter(
    bare_project: Path,
) -> None:
    done = _plan(bare_project)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == (
        f"Policy pack llmops-guardrails runs with {sys.executable} "
        "(PulumiPolicy.yaml's virtualenv ../.venv does not exist)"
    ), "the plan's first line names the interpreter"
    assert "Policies (llmops-guardrails): " in done.stdout, "the pack ran over the plan"


def test_the_json_plan_names_the_interpreter_too(bare_project: Path) -> None:
    done = _plan(bare_project, "--json", "--config", "llmops:authMode=entra")
    assert done.returncode == 0, done.stderr
    policy = json.loads(done.stdout)["policy"]
    assert policy["pack"] == "llmops-guardrails"
    assert policy["python"] == sys.executable
    assert "../.venv does not exist" in policy["python_why"]
