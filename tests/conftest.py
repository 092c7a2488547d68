"""Fixtures shared by the test modules (add yours below; keep each one documented)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_azure_openai import FakeAzureOpenAI


@pytest.fixture
def fake_azure_openai() -> Iterator[FakeAzureOpenAI]:
    """A started local fake of Azure OpenAI (see ``tests/fake_azure_openai.py``).

    Its ``endpoint``, ``api_key`` and ``deployment`` are what ``AZURE_OPENAI_ENDPOINT``,
    ``AZURE_OPENAI_API_KEY`` and ``AZURE_OPENAI_DEPLOYMENT`` should say; ``base_url`` serves
    the plain OpenAI protocol. Script replies with ``fake.script(Reply...)``; read what it
    received in ``fake.requests``.
    """
    with FakeAzureOpenAI() as fake:
        yield fake


@pytest.fixture(scope="session")
def monitor_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLflow sqlite file of autolog-shaped traces (see ``tests/monitor_store.py``).

    Built once per session, in a subprocess so MLflow's global state stays out of
    this one (building takes a while: schema migrations, then a run and a trace at
    a time). Tests read it; one that writes copies the file first.
    """
    db = tmp_path_factory.mktemp("monitor-store") / "mlflow.db"
    builder = Path(__file__).with_name("monitor_store.py")
    done = subprocess.run(
        [sys.executable, str(builder), str(db)],
        cwd=db.parent,  # the experiments' artifact folders (./mlruns) go there too
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"building the monitor's trace store failed:\n{done.stderr}"
    return db
