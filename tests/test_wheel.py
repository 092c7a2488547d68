"""The workload as one wheel: built reproducibly, followed by the jobs, installable anywhere.

The build is hatchling's (the backend pyproject.toml names), run by the program
itself; these tests build copies of the project's sources in temporary folders,
so the real tree is never touched, and install the real wheel in a fresh
virtual environment to run the ``workload`` command from outside the project.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import venv
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_azure_openai import JOKE, FakeAzureOpenAI

from llmops_infra.offline.engine import PROJECT_DIR, ProgramRun
from llmops_infra.stack import program
from llmops_infra.stack.workload_wheel import build_wheel, dependency_names

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

Run = Callable[..., ProgramRun]
FILE = "databricks:index/workspaceFile:WorkspaceFile"
JOB = "databricks:index/job:Job"


def _sources(into: Path) -> Path:
    """A copy of what the wheel is built from: pyproject.toml and the workload package."""
    into.mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "pyproject.toml", into)
    shutil.copytree(
        PROJECT_DIR / "workload", into / "workload", ignore=shutil.ignore_patterns("__pycache__")
    )
    return into


def test_two_builds_of_the_same_sources_are_identical_byte_for_byte(tmp_path: Path) -> None:
    sources = _sources(tmp_path / "src")
    started = time.thread_time()  # the build's own work, not the time other processes take
    first = build_wheel(sources, tmp_path / "one")
    cold = time.thread_time() - started
    # Another checkout, a day later: other file times, the same contents.
    later = _sources(tmp_path / "elsewhere")
    for path in later.rglob("*"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
    second = build_wheel(later, tmp_path / "two")
    assert first.path != second.path, "two separate builds, no cache shared"
    assert first.path.read_bytes() == second.path.read_bytes(), "same sources, same bytes"
    assert cold < 5, f"a build fits in a program run ({cold:.2f} s of CPU)"
    again = build_wheel(sources, tmp_path / "one")
    assert again.path == first.path, "unchanged sources reuse the wheel already built"


def test_a_changed_module_changes_the_wheel_and_only_what_follows_it(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sources = _sources(tmp_path / "src")
    monkeypatch.setattr(program, "build_wheel", lambda: build_wheel(sources, tmp_path / "b"))
    before = run({}, stack="wheel")
    drift = sources / "workload" / "monitoring" / "drift.py"
    drift.write_text(drift.read_text() + "\n# a changed module\n")
    after = run({}, stack="wheel", state=before)
    (old,), (new,) = before.by_type(FILE), after.by_type(FILE)
    assert old.inputs["md5"] != new.inputs["md5"], "the wheel's bytes changed"
    assert old.inputs["path"] != new.inputs["path"], "so did the path the jobs install from"
    inputs_before = {r.urn: r.inputs for r in before.resources}
    inputs_after = {r.urn: r.inputs for r in after.resources}
    assert set(inputs_before) == set(inputs_after), "no resource added or removed"
    changed = {urn for urn in inputs_before if inputs_before[urn] != inputs_after[urn]}
    assert changed == {old.urn, *(job.urn for job in before.by_type(JOB))}, (
        "the wheel's file and the jobs that install it, nothing else"
    )
    for job in after.by_type(JOB):
        (task,) = job.inputs["tasks"]
        assert task["libraries"] == [{"whl": f"/Workspace{new.inputs['path']}"}]


def test_every_dependency_is_pinned_in_requirements_at_a_version_it_accepts() -> None:
    import tomllib

    from packaging.requirements import Requirement

    declared = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]
    pins = {
        m[1].lower(): m[2]
        for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()
        if (m := re.fullmatch(r"([\w.-]+)==(\S+)", line.strip()))
    }
    assert dependency_names() == [
        "openai",
        "mlflow",
        "azure-identity",
        "databricks-sdk",
        "scipy",
        "matplotlib",
    ], "the workload's own dependencies, never pulumi"
    for line in declared["dependencies"]:
        requirement = Requirement(line)
        assert requirement.name in pins, f"requirements.txt pins {requirement.name}"
        assert requirement.specifier.contains(pins[requirement.name]), (
            f"{requirement.name}=={pins[requirement.name]} satisfies {requirement}"
        )
    assert declared["scripts"]["workload"] == "workload.cli:main"
    assert "hatchling==" in (PROJECT_DIR / "requirements.txt").read_text(), "backend pinned"


@pytest.mark.parametrize(
    "built",
    [
        "dist/llmops_workload-0.1.0-py3-none-any.whl",  # where README.md's `pip wheel` writes
        "build/workload-wheel/0123456789abcdef/llmops_workload-0.1.0-py3-none-any.whl",  # `up`
    ],
)
def test_a_built_wheel_is_ignored_by_git(built: str) -> None:
    if not (PROJECT_DIR / ".git").exists():
        pytest.skip("not a git checkout: nothing to ignore")
    done = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", built],
        cwd=PROJECT_DIR,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, f"git ignores {built}: a build never shows as a change"


def test_the_installed_wheel_gives_the_workload_command_outside_the_project(
    tmp_path: Path,
) -> None:
    """A fresh virtual environment, the wheel installed with pip, run from another folder.

    The wheel goes in with ``--no-deps``: its dependencies (mlflow, scipy, ...) would take
    minutes to install; the environment reaches the project environment's copies of them,
    at the versions requirements.txt pins (which the test above holds to the wheel's
    requirements), through a ``.pth`` line. The workload itself comes only from the
    wheel: the project folder is on no path.
    """
    wheel = build_wheel(_sources(tmp_path / "src"), tmp_path / "build")
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = next((env_dir / "lib").glob("python3.*/site-packages"))
    deps = sysconfig.get_paths()["purelib"]
    (site / "project-deps.pth").write_text(f"{deps}\n")
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_OPENAI_", "OPENAI_", "MLFLOW_", "DATABRICKS_", "PYTHON"))
    }
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel.path)],
        capture_output=True, text=True, env=clean, timeout=120,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    command = env_dir / "bin" / "workload"
    helped = subprocess.run(
        [str(command), "--help"], cwd=outside, capture_output=True, text=True, env=clean,
        timeout=120,
    )  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    assert "chat" in helped.stdout and "usage: workload" in helped.stdout
    where = subprocess.run(
        [str(python), "-c", "import workload; print(workload.__file__)"],
        cwd=outside, capture_output=True, text=True, env=clean, timeout=120,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(site), "the wheel's copy, not the project's"

    with FakeAzureOpenAI(api_key="k" * 32) as fake:
        outputs = outside / "outputs.json"
        outputs.write_text(
            json.dumps(
                {
                    "openai_endpoint": fake.endpoint,
                    "openai_api_key": fake.api_key,
                    "openai_api_version": "2024-05-01-preview",
                    "openai_deployment": fake.deployment,
                    "openai_auth_mode": "key",
                }
            )
        )
        env = {**clean, "MLFLOW_TRACKING_URI": f"sqlite:///{outside / 'mlflow.db'}"}
        chat = subprocess.run(
            [str(command), "chat", "--outputs", str(outputs), "--json"],
            cwd=outside, capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    assert json.loads(chat.stdout)["reply"] == JOKE, "the installed command made the lab's call"
