"""Fixtures shared by the test modules (add yours below; keep each one documented)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import bench_smoke_runner
import pytest
from fake_azure_openai import FakeAzureOpenAI

from llmops_infra.offline.engine import (
    PROJECT_DIR,
    ProgramRun,
    preload_program,
    run_program_isolated,
)
from llmops_infra.offline.stack_files import read_stack_config

Run = Callable[..., ProgramRun]

# Every plan prints its cost line (llmops_infra/cost): with no endpoint of their own, the
# tests price against a closed local port, so no test reaches Azure's price list and every
# plan falls back to the bundled table at once; tests of the prices set their own fake.
os.environ.setdefault("LLMOPS_PRICES_ENDPOINT", "http://127.0.0.1:9/api/retail/prices")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the modules for the way the session runs them.

    In one process, the benchmarks' smoke tests go last: their runs go on in the background
    meanwhile. Under pytest-xdist (``tasks.py test`` passes ``--no-loadscope-reorder``, so
    modules are handed out in this order), the longest go first: the smoke tests, whose
    worker waits for the benchmarks while the others go on, then the modules marked
    ``slow``, so that no long module starts when the rest is done and keeps one core busy
    alone at the end.
    """

    def smoke(item: pytest.Item) -> bool:
        return item.path.name == "test_bench_smoke.py"

    if hasattr(config, "workerinput"):
        items.sort(
            key=lambda item: 0 if smoke(item) else 1 if item.get_closest_marker("slow") else 2
        )
    else:
        items.sort(key=smoke)  # stable: the others keep their order


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the quick runs of the selected benchmarks (``tests/bench_smoke_runner.py``).

    They are processes waiting on one core; started now, they finish while the
    other tests run.
    """
    if hasattr(session.config, "workerinput"):
        return  # under pytest-xdist the worker that runs them starts them (result() does)
    selected = tuple(
        item.callspec.params["name"]
        for item in session.items
        if isinstance(item, pytest.Function) and item.path.name == "test_bench_smoke.py"
    )
    if selected:
        bench_smoke_runner.start(selected)


def pytest_sessionfinish() -> None:
    """Leave no benchmark running when the session ends early (-x, Ctrl-C)."""
    bench_smoke_runner.stop()


@pytest.fixture(scope="session", autouse=True)
def _no_machine_identity() -> Iterator[None]:
    """The deploying identity's variables of the machine running the tests stay out.

    The program reads ``ARM_*`` (and GitHub Actions' token request) to decide who
    deploys; a test that needs them sets them itself (``monkeypatch.setenv``), and the
    forked program runs inherit that.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(("ARM_", "ACTIONS_ID_TOKEN_"))]:
            patch.delenv(name)
        yield


@pytest.fixture(scope="session")
def run() -> Run:
    """``run(config, stack=..., preview=...)``: the Pulumi program under the mock engine.

    Each run is a forked child of this process, which imports the provider SDKs once
    (``preload_program``), so runs start in a fraction of a second and never share
    Pulumi's process-global mock runtime.
    """
    preload_program()

    def _run(config: dict[str, str] | None = None, **kwargs: object) -> ProgramRun:
        return run_program_isolated(config or {}, **kwargs)

    return _run


@pytest.fixture(scope="session")
def dev(run: Run) -> ProgramRun:
    """The dev stack exactly as its files configure it (``Pulumi.yaml`` + ``Pulumi.dev.yaml``)."""
    return run(read_stack_config(PROJECT_DIR, "dev"), stack="dev")


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
def empty_mlflow_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An MLflow sqlite file with its tables made and nothing in them: copy it, don't write it.

    A fresh store costs seconds of schema migrations; this one is made once per session,
    under pytest-xdist once for all the workers (in their shared temporary folder, under a
    lock), and each test store is a copy of it.
    """
    import fcntl

    folder = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):
        folder = folder.parent  # every worker's basetemp is a folder of the session's
    store = folder / "empty-mlflow.db"
    with (folder / "empty-mlflow.lock").open("w") as lock:
        deadline = time.monotonic() + 300
        while True:  # another worker making it: wait for it (bounded)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail("another worker held the empty MLflow store's lock for 300 s")
                time.sleep(0.1)
        if not store.exists():
            from mlflow import MlflowClient

            making = folder / f"empty-mlflow.{os.getpid()}.db"
            MlflowClient(tracking_uri=f"sqlite:///{making}").search_experiments()
            making.rename(store)  # whole or not at all
    return store


@pytest.fixture(scope="session")
def monitor_store(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path) -> Path:
    """A real MLflow sqlite file of autolog-shaped traces (see ``tests/monitor_store.py``).

    Built once per session, in a subprocess so MLflow's global state stays out of
    this one (building takes a while: a run and a trace at a time, into a copy of
    the empty store). Tests read it; one that writes copies the file first.
    """
    db = tmp_path_factory.mktemp("monitor-store") / "mlflow.db"
    shutil.copyfile(empty_mlflow_store, db)
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
