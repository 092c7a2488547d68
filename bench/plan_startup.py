"""Benchmark 1, plan start-up: ``python -m llmops_infra plan`` against importing its SDKs.

The floor is a process that imports exactly the provider SDK modules the plan
imports (pulumi and the pulumi_* packages, as ``python -X importtime`` lists
them for a real plan run, lazily loaded sub-packages included) and does
nothing else. Whatever the plan takes beyond that is the project's own cost:
its modules, the mock engine, the program run, the rendering, and (by
default) the policy pack's analyzer process. Target: at most 1.15 times the
floor in wall time and in peak memory.

``plan`` as a user runs it starts the pack's process (``python -m
pulumi.policy``) beside the program's imports; ``plan --no-policy`` is timed
too, so the table separates the program's cost from the pack's. The pack's
process is also started on its own, to its first answer, for its start-up
time and its peak memory: ``os.wait4`` reports the larger of the plan's and
its child's peak, not their sum.

The plan command pauses Python's cyclic garbage collector (see
``llmops_infra/__main__.py``), so the floor imports with the collector
paused too; the ratio against an import with the collector on, as a bare
``import`` runs, is given in the note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from bench.common import (
    CACHE_DIR,
    PROJECT_DIR,
    PYTHON,
    BenchmarkError,
    ProcessRun,
    Result,
    median,
    project_env,
    run_process,
)

__all__ = ["SDK_PACKAGES", "pack_alone", "plan_sdk_modules", "run"]

TARGET_RATIO: Final = 1.15
#: Top-level packages whose modules the floor imports.
SDK_PACKAGES: Final = ("pulumi", "pulumi_random", "pulumi_azure_native", "pulumi_databricks")
PLAN: Final = ("-m", "llmops_infra", "plan")
NO_POLICY: Final = (*PLAN, "--no-policy")

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


def pack_alone() -> tuple[float, float]:
    """The policy pack's process on its own: seconds to its first answer, its peak RSS in MiB.

    The client side (gRPC, the analyzer stubs) is imported before the clock
    starts, as the plan has it by then; what is timed is the pack's process.
    """
    import time

    from google.protobuf import empty_pb2  # type: ignore[import-untyped]  # noqa: F401
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc  # noqa: F401

    from llmops_infra.offline.policy_check import PolicyAnalyzer

    start = time.perf_counter()
    with PolicyAnalyzer(PROJECT_DIR / "policy") as analyzer:
        analyzer.info()
        served = time.perf_counter() - start
        status = Path(f"/proc/{analyzer.pid}/status").read_text()
    # "VmHWM:    81234 kB": the process's peak resident set so far.
    peak_kib = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
    )
    return served, peak_kib / 1024


def run(quick: bool) -> list[Result]:
    """Whole-process time and peak RSS of the plan, with and without its pack, against the floor."""
    env = project_env()
    # One traced run lists the modules (and warms the page cache for the runs below).
    traced = run_process([PYTHON, "-X", "importtime", *PLAN], env=env)
    modules = plan_sdk_modules(traced.stderr)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    modules_file = CACHE_DIR / "plan_sdk_modules.json"
    modules_file.write_text(json.dumps(modules))

    plans: list[ProcessRun] = []
    bare_plans: list[ProcessRun] = []
    floors: list[ProcessRun] = []
    default_floors: list[ProcessRun] = []
    if quick:  # the smoke run: the traced run stands for the plan, one of each other side
        plans.append(traced)
        bare_plans.append(run_process([PYTHON, *NO_POLICY], env=env))
        floors.append(run_process(_floor(modules_file, "paused"), env=env))
    sides = [
        (plans, [PYTHON, *PLAN]),
        (bare_plans, [PYTHON, *NO_POLICY]),
        (floors, _floor(modules_file, "paused")),
        (default_floors, _floor(modules_file, "on")),
    ]
    for i in range(0 if quick else 7):
        # Rotate the order so load from neighbours hits every side alike.
        for runs, argv in sides[i % len(sides) :] + sides[: i % len(sides)]:
            runs.append(run_process(argv, env=env))
    pack_runs = [pack_alone() for _ in range(1 if quick else 5)]
    pack_time = median([t for t, _ in pack_runs])
    pack_rss = median([m for _, m in pack_runs])

    plan_time = median([p.wall for p in plans])
    bare_time = median([p.wall for p in bare_plans])
    floor_time = median([f.wall for f in floors])
    plan_rss = median([p.peak_rss_mb for p in plans])
    bare_rss = median([p.peak_rss_mb for p in bare_plans])
    floor_rss = median([f.peak_rss_mb for f in floors])
    floor_note = (
        f"floor: import the {len(modules)} SDK modules the plan imports, collector paused "
        "as in the plan"
    )
    time_note = (
        f"{floor_note}; the pack adds {plan_time - bare_time:+.2f} s to `plan --no-policy` "
        f"({plan_time / bare_time:.2f}x); its process alone answers in {pack_time:.2f} s"
    )
    rss_note = (
        f"the larger of the plan's and the pack's process's peak, not their sum; the pack "
        f"alone: {pack_rss:.0f} MiB; `plan --no-policy`: {bare_rss:.0f} MiB "
        f"({bare_rss / floor_rss:.2f}x)"
    )
    if default_floors:
        default_time = median([f.wall for f in default_floors])
        default_rss = median([f.peak_rss_mb for f in default_floors])
        time_note += (
            f"; against a plain import (collector on, {default_time:.2f} s): "
            f"{plan_time / default_time:.2f}x"
        )
        rss_note += (
            f"; against a plain import ({default_rss:.0f} MiB): {plan_rss / default_rss:.2f}x"
        )
    spread = f"min-max {min(p.wall for p in plans):.2f}-{max(p.wall for p in plans):.2f} s"
    bare_spread = (
        f"min-max {min(p.wall for p in bare_plans):.2f}-{max(p.wall for p in bare_plans):.2f} s"
    )
    return [
        Result(
            name="1. plan start-up: wall time",
            measured=plan_time,
            floor=floor_time,
            unit="s",
            target=f"<= {TARGET_RATIO}x",
            met=plan_time / floor_time <= TARGET_RATIO,
            note=f"{time_note}; {spread}",
        ),
        Result(
            name="1. plan --no-policy start-up: wall time",
            measured=bare_time,
            floor=floor_time,
            unit="s",
            target=f"<= {TARGET_RATIO}x",
            met=bare_time / floor_time <= TARGET_RATIO,
            note=f"the program's own start-up, without the pack's process; {bare_spread}",
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
