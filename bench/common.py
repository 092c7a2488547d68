"""What every benchmark shares: timing a whole process, medians, the result row, the table.

Benchmarks compare the project against a *floor* measured in the same run on
the same machine, so the ratio means something on a shared, noisy box where
absolute seconds do not. Repetitions of the subject and the floor alternate,
so a burst of load from a neighbour hits both sides alike, and the median of
the repetitions is what is reported.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar

from workload.contract import PROJECT_DIR

__all__ = [
    "CACHE_DIR",
    "PROJECT_DIR",
    "PYTHON",
    "BenchmarkError",
    "ProcessRun",
    "Result",
    "alternate",
    "machine",
    "median",
    "project_env",
    "run_process",
    "to_markdown",
    "to_table",
]

#: Generated inputs (trace stores) kept between runs; ``LLMOPS_BENCH_CACHE`` moves them out
#: of the checkout, so CI's fresh clones reuse them.
CACHE_DIR: Final = Path(os.environ.get("LLMOPS_BENCH_CACHE") or PROJECT_DIR / "bench" / ".cache")
#: The interpreter running the bench: the project's .venv when run as the README says.
PYTHON: Final = sys.executable

_T = TypeVar("_T")


class BenchmarkError(Exception):
    """A benchmark could not measure (its subject failed); the message says why."""


@dataclass(frozen=True)
class Result:
    """One row of the table: a measurement, its floor and whether the target is met."""

    name: str
    measured: float
    floor: float | None
    unit: str
    target: str
    """The target as people read it: ``<= 1.15x``, ``< 0.3 s``."""
    met: bool
    note: str = ""
    """Why a target is missed, or what else the reader needs (one line)."""

    @property
    def ratio(self) -> float | None:
        """``measured / floor``, or None without a floor."""
        if self.floor is None or self.floor == 0:
            return None
        return self.measured / self.floor


@dataclass(frozen=True)
class ProcessRun:
    """One whole process: wall time, peak resident memory, exit status, its stderr."""

    wall: float
    """Seconds from spawn to exit."""
    peak_rss_mb: float
    """The child's own peak resident set (``ru_maxrss``), in MiB."""
    returncode: int
    stderr: str = field(repr=False)


def project_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a project command: no Pulumi CLI variables, the project importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "MLFLOW_"))}
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path = PROJECT_DIR,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> ProcessRun:
    """Run a process to its end; its wall time and peak RSS come from ``os.wait4``.

    stdout is discarded (printing is not what is measured); stderr is kept
    for the error message when the process fails.
    """
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else project_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    # Linux reports ru_maxrss in KiB.
    run = ProcessRun(wall, usage.ru_maxrss / 1024, proc.returncode, stderr)
    if check and run.returncode != 0:
        tail = stderr.strip().splitlines()[-3:]
        raise BenchmarkError(
            f"{' '.join(argv[:4])} exited {run.returncode}: {' | '.join(tail) or '(no stderr)'}"
        )
    return run


def alternate(
    subject: Callable[[], _T], floor: Callable[[], _T], repetitions: int
) -> tuple[list[_T], list[_T]]:
    """Run subject and floor ``repetitions`` times each, alternating which goes first."""
    subjects: list[_T] = []
    floors: list[_T] = []
    for i in range(repetitions):
        if i % 2 == 0:
            subjects.append(subject())
            floors.append(floor())
        else:
            floors.append(floor())
            subjects.append(subject())
    return subjects, floors


def median(values: Sequence[float]) -> float:
    """The median (the statistic every table quotes)."""
    return float(statistics.median(values))


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load average at start (1, 5, 15 min)": load,
    }


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    size = abs(value)
    text = (
        f"{value:.0f}"
        if size >= 100
        else f"{value:.1f}"
        if size >= 10
        else f"{value:.2f}"
        if size >= 1
        else f"{value:.3g}"
    )
    return f"{text} {unit}".strip()


def _cells(result: Result) -> list[str]:
    ratio = result.ratio
    return [
        result.name,
        _fmt(result.measured, result.unit),
        _fmt(result.floor, result.unit),
        "-" if ratio is None else f"{ratio:.2f}x",
        result.target,
        "yes" if result.met else "NO",
    ]


_HEADER: Final = ["benchmark", "measured", "floor", "ratio", "target", "met?"]


def to_table(results: Sequence[Result]) -> str:
    """A plain-text table for the terminal, with notes under it."""
    rows = [_HEADER, *(_cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"- {r.name}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def to_markdown(results: Sequence[Result]) -> str:
    """The same table in Markdown, with the notes as a last column (for BENCHMARKS.md)."""
    header = [*_HEADER, "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        cells = [*_cells(result), result.note.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
