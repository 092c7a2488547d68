"""Run every benchmark and print one table: ``.venv/bin/python bench/run.py [--quick]``.

Each benchmark lives in its own module with a ``run(quick) -> list[Result]``;
``--quick`` runs one repetition at tiny sizes (what the smoke test uses: it
proves the benchmarks start, its numbers mean nothing). ``--only NAME`` runs
some of them; ``--markdown`` prints the table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BenchmarkError,
    Result,
    machine,
    to_markdown,
    to_table,
)

#: Short name -> module, in the issue's order.
BENCHMARKS: Final = {
    "plan": "bench.plan_startup",
    "up": "bench.up_critical_path",
    "tracing": "bench.tracing_overhead",
    "monitor": "bench.monitor_scale",
    "workload": "bench.workload_startup",
    "eval": "bench.eval_rate_limit",
}


def _failed(name: str, message: str) -> Result:
    return Result(
        name=f"{name}: FAILED",
        measured=float("nan"),
        floor=None,
        unit="",
        target="-",
        met=False,
        note=message.replace("\n", " ")[:300],
    )


def _run_child(name: str, quick: bool, result_file: Path) -> int:
    """In the child: run one benchmark and write its rows (or its failure) as JSON."""
    try:
        module = importlib.import_module(BENCHMARKS[name])
        rows = [asdict(r) for r in module.run(quick)]
    except BenchmarkError as err:
        rows = [asdict(_failed(name, str(err)))]
    except Exception:
        rows = [asdict(_failed(name, traceback.format_exc(limit=-3)))]
    result_file.write_text(json.dumps(rows))
    return 0


def run_benchmarks(names: Sequence[str], *, quick: bool) -> list[Result]:
    """Run each benchmark in its own process; one that fails becomes a FAILED row.

    A process each, so what one sets up (MLflow's tracking store, Pulumi's mock
    runtime, a frozen garbage collector) cannot change another's numbers.
    """
    results: list[Result] = []
    for name in names:
        start = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            result_file = Path(tmp) / "rows.json"
            argv = [sys.executable, __file__, "--child", name, "--result-file", str(result_file)]
            done = subprocess.run([*argv, *(["--quick"] if quick else [])], check=False)
            if result_file.exists():
                results.extend(Result(**row) for row in json.loads(result_file.read_text()))
            else:
                results.append(_failed(name, f"the benchmark's process exited {done.returncode}"))
        print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the machine and the table; exit 1 if a benchmark failed to run."""
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, tiny sizes")
    parser.add_argument(
        "--only", action="append", choices=list(BENCHMARKS), help="run only this (repeatable)"
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--child", choices=list(BENCHMARKS), help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _run_child(args.child, args.quick, args.result_file)

    info = machine()
    results = run_benchmarks(args.only or list(BENCHMARKS), quick=args.quick)
    if args.markdown:
        print("\n".join(f"- {key}: {value}" for key, value in info.items()))
        print()
        print(to_markdown(results))
    else:
        print(", ".join(f"{key}: {value}" for key, value in info.items()))
        if args.quick:
            print("(--quick: one repetition at tiny sizes; the numbers are not meaningful)")
        print()
        print(to_table(results))
    return 1 if any(r.name.endswith(": FAILED") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
