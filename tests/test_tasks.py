"""``tasks.py``: a first install that takes minutes is seen to move."""

from __future__ import annotations

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


def _fake_python(tmp_path: Path, status: int, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "python"
    script.write_text(_PIP.format(status=status))
    script.chmod(0o755)
    monkeypatch.setattr(tasks, "PYTHON", script)


def test_the_install_shows_each_package_it_fetches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_python(tmp_path, 0, monkeypatch)
    tasks._pip_with_progress(["install", "-r", "requirements.txt"])
    assert capsys.readouterr().err.splitlines() == [
        "    1 mlflow==3.17.2",
        "    2 scipy==1.17.1",
        "  installing 2 packages ...",
    ]


def test_a_failed_install_shows_all_pip_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_python(tmp_path, 1, monkeypatch)
    with pytest.raises(subprocess.CalledProcessError):
        tasks._pip_with_progress(["install", "-r", "requirements.txt"])
    assert "Downloading mlflow-3.17.2" in capsys.readouterr().err
