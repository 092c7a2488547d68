"""Benchmark 5, command start-up: ``python -m workload --help`` against ``python -c pass``.

Target: under 0.3 s on its own, and neither mlflow nor openai imported (the
sub-commands import them when they run, not when the parser is built). The
import check runs ``--help`` of the command and of each sub-command in a
child and lists what landed in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
from typing import Final

from bench.common import (
    PROJECT_DIR,
    PYTHON,
    BenchmarkError,
    Result,
    alternate,
    median,
    project_env,
    run_process,
)

__all__ = ["HEAVY", "heavy_imports", "run"]

TARGET_SECONDS: Final = 0.3
#: Packages ``--help`` must not import (the first two are the issue's; the rest as heavy).
HEAVY: Final = ("mlflow", "openai", "scipy", "matplotlib", "pandas", "numpy", "pulumi")

_PROBE: Final = """
import contextlib, io, json, runpy, sys
sys.argv = ["workload", *json.loads(sys.argv[1])]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    runpy.run_module("workload", run_name="__main__")
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))))
"""


def heavy_imports(args: list[str]) -> list[str]:
    """Top-level heavy packages imported by ``python -m workload <args>`` (run in a child)."""
    code = f"HEAVY = {list(HEAVY)!r}\n{_PROBE}"
    proc = subprocess.run(
        [PYTHON, "-c", code, json.dumps(args)],
        cwd=PROJECT_DIR,
        env=project_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchmarkError(f"workload {' '.join(args)} probe failed: {proc.stderr.strip()}")
    found: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def _subcommands() -> list[str]:
    code = (
        "import argparse, json; from workload.cli import build_parser\n"
        "actions = build_parser()._actions\n"
        "print(json.dumps([name for a in actions if isinstance(a, argparse._SubParsersAction)"
        " for name in a.choices]))"
    )
    proc = subprocess.run(
        [PYTHON, "-c", code],
        cwd=PROJECT_DIR,
        env=project_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    names: list[str] = json.loads(proc.stdout)
    return names


def run(quick: bool) -> list[Result]:
    """Time ``--help`` against an empty interpreter and check what it imports."""
    repetitions = 1 if quick else 9
    if not quick:
        run_process([PYTHON, "-m", "workload", "--help"])  # warm the page cache
    helps, passes = alternate(
        lambda: run_process([PYTHON, "-m", "workload", "--help"]).wall,
        lambda: run_process([PYTHON, "-c", "pass"]).wall,
        repetitions,
    )
    measured = median(helps)

    offenders: dict[str, list[str]] = {}
    for args in (["--help"], *([name, "--help"] for name in _subcommands())):
        found = heavy_imports(args)
        if found:
            offenders[" ".join(args)] = found
    heavy_note = (
        "; ".join(f"`{cmd}` imports {', '.join(mods)}" for cmd, mods in offenders.items())
        or f"none of {', '.join(HEAVY)} in --help of the command or of any sub-command"
    )
    return [
        Result(
            name="5. workload --help start-up",
            measured=measured,
            floor=median(passes),
            unit="s",
            target=f"< {TARGET_SECONDS} s",
            met=measured < TARGET_SECONDS,
            note="floor: python -c pass",
        ),
        Result(
            name="5. workload --help heavy imports",
            measured=float(sum(len(m) for m in offenders.values())),
            floor=None,
            unit="pkgs",
            target="0",
            met=not offenders,
            note=heavy_note,
        ),
    ]
