"""Benchmark 4, monitor scale: ``python -m workload monitor`` over 1,000 to 10,000 traces.

Each experiment lives in its own local sqlite tracking store, generated once
and cached in ``bench/.cache/monitor/`` (git-ignored; or under
``$LLMOPS_BENCH_CACHE``). Generating 10,000
traces through MLflow takes about 13 minutes here (some 75 ms a trace: the
sqlite store issues dozens of statements per trace), so the largest store is
written once with the tracing API, with explicit start and end times (one
trace a minute, latencies and token counts drawn at random, drifting in the
newest fifth) and the smaller ones are copies of it with the oldest traces
deleted. The traces have the shape ``mlflow.openai.autolog()`` gives the
chat call: one CHAT_MODEL span with the messages in, the completion out and
the token usage attribute.

The monitor runs with fixed windows (``--baseline W --recent W``). The floor
is a process that reads the same two windows with MLflow's own query API
(``mlflow.search_traces`` oldest first and newest first) and does nothing
else. Targets: at most 1.3 times the floor in time and peak memory, and
neither growing with the experiment's size (1,000 -> 10,000 traces) at fixed
windows; they may grow with the windows.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
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

__all__ = ["EXPERIMENT", "ensure_stores", "run"]

TARGET_RATIO: Final = 1.3
#: How much the time or memory may change from the smallest to the largest experiment.
FLAT_RATIO: Final = 1.2
EXPERIMENT: Final = "bench-monitor"
#: Bump when the generated traces change, so stale caches are rebuilt.
GENERATOR_VERSION: Final = 1
SIZES: Final = (1_000, 5_000, 10_000)
WINDOW: Final = 250
QUICK_SIZES: Final = (30, 60)
QUICK_WINDOW: Final = 10

_STEP_NS: Final = 60 * 10**9  # one trace a minute

_FLOOR: Final = """
import sys
import mlflow
name, window = sys.argv[1], int(sys.argv[2])
experiment = mlflow.get_experiment_by_name(name)
for order in ("ASC", "DESC"):
    traces = mlflow.search_traces(
        locations=[experiment.experiment_id],
        max_results=window,
        order_by=[f"timestamp_ms {order}"],
        return_type="list",
    )
    assert len(traces) == window, (order, len(traces))
"""


def _store_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def _generate(path: Path, count: int) -> None:
    """Write ``count`` chat-call traces, one a minute, into a new sqlite store at ``path``."""
    os.environ["MLFLOW_TRACKING_URI"] = _store_uri(path)
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"  # in order, nothing pending
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment_id = client.create_experiment(EXPERIMENT)
    rng = random.Random(8)
    first_ns = (int(time.time()) - count * 60) * 10**9
    messages = [
        {"role": "system", "content": "Assistant is a large language model trained by OpenAI."},
        {"role": "user", "content": "Tell me a joke about animals."},
    ]
    for i in range(count):
        drifted = i >= count * 4 // 5
        start = first_ns + i * _STEP_NS
        latency_ms = max(80.0, rng.gauss(1100.0 if drifted else 800.0, 150.0))
        completion = rng.randint(25, 60) if drifted else rng.randint(10, 40)
        reply = "Why did the cat sit on the computer? " + "x" * (completion * 4)
        usage = {"input_tokens": 24, "output_tokens": completion, "total_tokens": 24 + completion}
        span = client.start_trace(
            "Completions",
            span_type="CHAT_MODEL",
            inputs={"messages": messages, "model": "gpt-4o"},
            attributes={"mlflow.chat.tokenUsage": usage},  # type: ignore[dict-item]
            experiment_id=experiment_id,
            start_time_ns=start,
        )
        client.end_trace(
            span.trace_id,
            outputs={
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 24,
                    "completion_tokens": completion,
                    "total_tokens": 24 + completion,
                },
            },
            end_time_ns=int(start + latency_ms * 1e6),
        )
        if (i + 1) % 1000 == 0:
            print(f"  generated {i + 1}/{count} traces", file=sys.stderr, flush=True)


def _keep_newest(source: Path, target: Path, keep: int, total: int) -> None:
    """Copy the store, then delete all but its ``keep`` newest traces."""
    shutil.copyfile(source, target)
    os.environ["MLFLOW_TRACKING_URI"] = _store_uri(target)
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        raise BenchmarkError(f"{target} has no experiment {EXPERIMENT!r}")
    oldest_kept = (
        client.search_traces(
            locations=[experiment.experiment_id],
            max_results=1,
            order_by=["timestamp_ms ASC"],
            include_spans=False,
        )[0].info.request_time
        + (total - keep) * _STEP_NS // 10**6
    )
    deleted = client.delete_traces(
        experiment.experiment_id, max_timestamp_millis=oldest_kept - 1, max_traces=total
    )
    if deleted != total - keep:
        raise BenchmarkError(f"expected to delete {total - keep} traces, deleted {deleted}")
    with sqlite3.connect(target) as db:  # give the deleted rows' pages back
        db.execute("VACUUM")


def ensure_stores(sizes: tuple[int, ...], folder: Path) -> dict[int, Path]:
    """The cached store of each size, generating the largest once and cutting the others."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "version"
    paths = {size: folder / f"traces-{size}.db" for size in sizes}
    fresh = stamp.exists() and stamp.read_text() == str(GENERATOR_VERSION)
    if fresh and all(p.exists() for p in paths.values()):
        return paths
    for path in folder.glob("traces-*.db"):
        path.unlink()
    stamp.unlink(missing_ok=True)
    largest = max(sizes)
    print(f"  generating {largest} traces (once; cached in {folder})", file=sys.stderr)
    _run_isolated("_generate", paths[largest], largest)
    for size in sizes:
        if size != largest:
            _run_isolated("_keep_newest", paths[largest], paths[size], size, largest)
    stamp.write_text(str(GENERATOR_VERSION))
    return paths


def _run_isolated(function: str, *args: object) -> None:
    """Run a generator step in a child, so each store gets a fresh MLflow."""
    rendered = ", ".join(f"Path({str(a)!r})" if isinstance(a, Path) else repr(a) for a in args)
    code = (
        "from pathlib import Path\n"
        "from bench import monitor_scale as m\n"
        f"m.{function}({rendered})\n"
    )
    env = project_env({"PYTHONPATH": str(PROJECT_DIR)})
    proc = subprocess.run([PYTHON, "-c", code], cwd=PROJECT_DIR, env=env, check=False)
    if proc.returncode != 0:
        raise BenchmarkError(
            f"generating the trace stores failed ({function}, exit {proc.returncode})"
        )


def _monitor(path: Path, window: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "workload",
        "monitor",
        "--experiment",
        EXPERIMENT,
        "--baseline",
        str(window),
        "--recent",
        str(window),
        "--json",
    ]


def run(quick: bool) -> list[Result]:
    """Monitor against the floor at each experiment size, with fixed windows."""
    sizes, window = (QUICK_SIZES, QUICK_WINDOW) if quick else (SIZES, WINDOW)
    folder = CACHE_DIR / "monitor" / ("quick" if quick else "full")
    paths = ensure_stores(sizes, folder)
    repetitions = 1 if quick else 5
    results: list[Result] = []
    per_size: dict[int, tuple[float, float]] = {}
    for size in sizes:
        env = project_env({"MLFLOW_TRACKING_URI": _store_uri(paths[size])})
        monitor_runs: list[ProcessRun] = []
        floor_runs: list[ProcessRun] = []
        floor = [PYTHON, "-c", _FLOOR, EXPERIMENT, str(window)]
        for i in range(repetitions):
            pair = [(monitor_runs, _monitor(paths[size], window)), (floor_runs, floor)]
            for runs, argv in pair if i % 2 == 0 else pair[::-1]:
                runs.append(run_process(argv, env=env, check=False))
        for runs, what in ((monitor_runs, "monitor"), (floor_runs, "floor")):
            failed = [r for r in runs if r.returncode not in (0, 3)]
            if failed:
                tail = " | ".join(failed[0].stderr.strip().splitlines()[-3:])
                raise BenchmarkError(
                    f"{what} at {size} traces exited {failed[0].returncode}: {tail}"
                )
        wall, floor_wall = (
            median([r.wall for r in monitor_runs]),
            median([r.wall for r in floor_runs]),
        )
        rss = median([r.peak_rss_mb for r in monitor_runs])
        floor_rss = median([r.peak_rss_mb for r in floor_runs])
        per_size[size] = (wall, rss)
        label = f"4. monitor {size:,} traces"
        results.append(
            Result(
                name=f"{label}: wall time",
                measured=wall,
                floor=floor_wall,
                unit="s",
                target=f"<= {TARGET_RATIO}x",
                met=wall / floor_wall <= TARGET_RATIO,
                note=(
                    f"windows {window} + {window}; min-max "
                    f"{min(r.wall for r in monitor_runs):.2f}-"
                    f"{max(r.wall for r in monitor_runs):.2f} s"
                ),
            )
        )
        results.append(
            Result(
                name=f"{label}: peak RSS",
                measured=rss,
                floor=floor_rss,
                unit="MiB",
                target=f"<= {TARGET_RATIO}x",
                met=rss / floor_rss <= TARGET_RATIO,
            )
        )
    small, large = min(sizes), max(sizes)
    for index, (what, unit) in enumerate((("wall time", "s"), ("peak RSS", "MiB"))):
        grown = per_size[large][index] / per_size[small][index]
        results.append(
            Result(
                name=f"4. monitor {what}, {large:,} vs {small:,} traces",
                measured=per_size[large][index],
                floor=per_size[small][index],
                unit=unit,
                target=f"<= {FLAT_RATIO}x (flat)",
                met=grown <= FLAT_RATIO,
                note=f"same windows, experiment {large // small}x larger; floor: the smallest",
            )
        )
    return results


if __name__ == "__main__":  # generate the stores ahead of a run: python -m bench.monitor_scale
    print(
        json.dumps(
            {k: str(v) for k, v in ensure_stores(SIZES, CACHE_DIR / "monitor" / "full").items()}
        )
    )
