"""The benchmarks still start: each one's ``--quick`` run ends with a row and no failure.

Only a smoke run: one repetition at tiny sizes, no timing is asserted (the
numbers of a quick run on a shared machine mean nothing). The real runs are
``bench/run.py`` by hand, recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import re

import pytest
from bench_smoke_runner import BENCHMARKS, result

#: A table row: "N. what: figure   measured  floor  ratio  target  met?", the ratio a number.
_ROW = re.compile(r"^\d+\. .+?\s{2,}\S+.*\s{2,}\d+(\.\d+)?x\s{2,}\S+.*\s(yes|NO)\s*$")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_starts_and_reports_a_row(name: str) -> None:
    done = result(name)  # started in the background at the session's start (conftest.py)
    report = done.stdout + done.stderr
    assert "FAILED" not in done.stdout, f"the {name} benchmark failed to run:\n{report}"
    assert done.returncode == 0, f"the {name} benchmark exited {done.returncode}:\n{report}"
    rows = [line for line in done.stdout.splitlines() if _ROW.match(line)]
    assert rows, f"the {name} benchmark printed no row with a measured ratio:\n{report}"
