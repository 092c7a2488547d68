"""Benchmark 1, plan start-up: ``python -m llmops_infra plan`` against importing its SDKs.

The floor is a process that imports exactly the provider SDK modules the plan
imports (pulumi and the pulumi_* packages, as ``python -X importtime`` lists
them for a real plan run, lazily loaded sub-packages included) and does
nothing else. Whatever the plan takes beyond that is the project's own cost:
its modules, the mock engine, the program run, the rendering. Target: at
most 1.15 times the floor in wall time and in peak memory.

The plan command pauses Python's cyclic garbage collector (see
``llmops_infra/plan_command.py``), so the floor imports with the collector
paused too; the ratio against an import with the collector on, as a bare
``import`` runs, is given in the note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from bench.common import (
    CACHE_DIR,
    PYTHON,
    BenchmarkError,
    ProcessRun,
    Result,
    median,
    project_env,
    run_process,
)

__all__ = ["SDK_PACKAGES", "plan_sdk_modules", "run"]

TARGET_RATIO: Final = 1.15
#: Top-level packages whose modules the floor imports.
SDK_PACKAGES: Final = ("pulumi", "pulumi_random", "pulumi_azure_native", "pulumi_databricks")
PLAN: Final = ("-m", "llmops_infra", "plan")

_FLOOR: Final = """
import gc, importlib, json, sys
if sys.argv[2] == "paused":
    gc.disable()
for name in json.load(open(sys.argv[1])):
    importlib.import_module(name)
"""


def plan_sdk_modules(importtime_log: str) -> list[str]:
    """The SDK modules a plan run imported, in order, from its ``-X importtime`` stderr."""
    modules: list[str] = []
    for line in importtime_log.splitlines():
        # "import time:      1234 |       5678 |     pulumi_databricks.cluster"
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        name = line.rsplit("|", 1)[1].strip()
        if name.split(".")[0] in SDK_PACKAGES:
            modules.append(name)
    if not modules:
        raise BenchmarkError("the plan imported no provider SDK module: nothing to compare with")
    return modules


def _floor(modules_file: Path, gc_mode: str) -> list[str]:
    return [PYTHON, "-c", _FLOOR, str(modules_file), gc_mode]


def run(quick: bool) -> list[Result]:
    """Whole-process time and peak RSS of the plan against the import-only floor."""
    env = project_env()
    # One traced run lists the modules (and warms the page cache for the runs below).
    traced = run_process([PYTHON, "-X", "importtime", *PLAN], env=env)
    modules = plan_sdk_modules(traced.stderr)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    modules_file = CACHE_DIR / "plan_sdk_modules.json"
    modules_file.write_text(json.dumps(modules))

    plans: list[ProcessRun] = []
    floors: list[ProcessRun] = []
    default_floors: list[ProcessRun] = []
    if quick:  # the smoke run: the traced run stands for the plan, one floor
        plans.append(traced)
        floors.append(run_process(_floor(modules_file, "paused"), env=env))
    sides = [
        (plans, [PYTHON, *PLAN]),
        (floors, _floor(modules_file, "paused")),
        (default_floors, _floor(modules_file, "on")),
    ]
    for i in range(0 if quick else 7):
        # Rotate the order so load from neighbours hits every side alike.
        for runs, argv in sides[i % 3 :] + sides[: i % 3]:
            runs.append(run_process(argv, env=env))

    plan_time = median([p.wall for p in plans])
    floor_time = median([f.wall for f in floors])
    plan_rss = median([p.peak_rss_mb for p in plans])
    floor_rss = median([f.peak_rss_mb for f in floors])
    time_note = (
        f"floor: import the {len(modules)} SDK modules the plan imports, collector paused "
        "as in the plan"
    )
    rss_note = ""
    if default_floors:
        default_time = median([f.wall for f in default_floors])
        default_rss = median([f.peak_rss_mb for f in default_floors])
        time_note += (
            f"; against a plain import (collector on, {default_time:.2f} s): "
            f"{plan_time / default_time:.2f}x"
        )
        rss_note = f"against a plain import ({default_rss:.0f} MiB): {plan_rss / default_rss:.2f}x"
    return [
        Result(
            name="1. plan start-up: wall time",
            measured=plan_time,
            floor=floor_time,
            unit="s",
            target=f"<= {TARGET_RATIO}x",
            met=plan_time / floor_time <= TARGET_RATIO,
            note=time_note,
        ),
        Result(
            name="1. plan start-up: peak RSS",
            measured=plan_rss,
            floor=floor_rss,
            unit="MiB",
            target=f"<= {TARGET_RATIO}x",
            met=plan_rss / floor_rss <= TARGET_RATIO,
            note=rss_note,
        ),
    ]
