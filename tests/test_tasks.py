"""``tasks.py``: a first install that takes minutes is seen to move."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import tasks

#: Stands in for ``python -m pip``: pip's own lines, then the status given.
_PIP = """#!/bin/sh
echo "Looking in indexes: https://pypi.org/simple"
echo "Collecting mlflow==3.17.2 (from -r requirements.txt (line 11))"
echo "  Downloading mlflow-3.17.2-py3-none-any.whl.metadata (30 kB)"
echo "Collecting scipy==1.17.1 (from -r requirements.txt (line 12))"
echo "Installing collected packages: scipy, mlflow"
exit {status}
"""


def _fake_python(tmp_path: Path, status: int) -> Path:
    script = tmp_path / "python"
    script.write_text(_PIP.format(status=status))
    script.chmod(0o755)
    return script


def test_the_install_shows_each_package_it_fetches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks._pip_with_progress(_fake_python(tmp_path, 0), ["install", "-r", "requirements.txt"])
    assert capsys.readouterr().err.splitlines() == [
        "    1 mlflow==3.17.2",
        "    2 scipy==1.17.1",
        "  installing 2 packages ...",
    ]


def test_a_failed_install_shows_all_pip_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        tasks._pip_with_progress(_fake_python(tmp_path, 1), ["install", "-r", "requirements.txt"])
    assert "Downloading mlflow-3.17.2" in capsys.readouterr().err


def _tiny_wheel(tmp_path: Path) -> Path:
    """A wheel with one console script, built by hatchling here: installs with no index."""
    from hatchling.builders.wheel import WheelBuilder

    project = tmp_path / "hello-src"
    (project / "hello").mkdir(parents=True)
    (project / "hello" / "__init__.py").write_text("def main() -> None:\n    print('hello')\n")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "hello"\nversion = "0.1"\n'
        '[project.scripts]\nhello = "hello:main"\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["hello"]\n'
    )
    out = tmp_path / "wheels"
    return Path(next(WheelBuilder(str(project)).build(directory=str(out))))


def _clone(root: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project folder whose requirements install only the tiny wheel, tasks.py pointed at it."""
    root.mkdir()
    (root / "requirements.txt").write_text(f"--no-index\n--find-links {wheel.parent}\nhello==0.1\n")
    (root / "requirements-dev.txt").write_text("-r requirements.txt\n")
    monkeypatch.setattr(tasks, "ROOT", root)
    monkeypatch.setattr(tasks, "VENV", root / ".venv")
    monkeypatch.setattr(tasks, "PYTHON", root / ".venv" / "bin" / "python")


@pytest.mark.skipif(sys.platform == "win32", reason="console scripts are .exe launchers there")
def test_a_cached_environment_outlives_the_clone_that_made_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uv = tasks._uv()  # the pinned uv, as the project's own install fetched it
    monkeypatch.setattr(tasks, "_uv", lambda: uv)
    monkeypatch.setenv("LLMOPS_VENV_CACHE", str(tmp_path / "cache"))
    wheel = _tiny_wheel(tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    _clone(first, wheel, monkeypatch)
    tasks._install("requirements.txt")
    shutil.rmtree(first)  # CI's clone is gone once its run ends

    _clone(second, wheel, monkeypatch)
    tasks._install("requirements.txt")  # the cached environment: nothing to install
    script = second / ".venv" / "bin" / "hello"
    assert str(first) not in script.read_text().splitlines()[0], (
        "a cached console script names the cache's interpreter, not the first clone's link"
    )
    done = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "hello\n", done.stderr


def test_the_uv_pin_is_read_from_requirements_txt() -> None:
    pins = (Path(tasks.__file__).parent / "requirements.txt").read_text()
    assert f"uv=={tasks._uv_pin()}" in pins.splitlines(), "one place states uv's version"
