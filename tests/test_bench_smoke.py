"""The benchmarks still start: each one's ``--quick`` run ends with a row and no failure.

Only a smoke run: one repetition at tiny sizes, no timing is asserted (the
numbers of a quick run on a shared machine mean nothing). The real runs are
``bench/run.py`` by hand, recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("plan", "up", "tracing", "monitor", "workload")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_starts_and_reports_a_row(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = done.stdout + done.stderr
    assert "FAILED" not in done.stdout, f"the {name} benchmark failed to run:\n{report}"
    assert done.returncode == 0, f"the {name} benchmark exited {done.returncode}:\n{report}"
    assert "ratio" in done.stdout, f"the {name} benchmark printed no table:\n{report}"
