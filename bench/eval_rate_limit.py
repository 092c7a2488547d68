"""Benchmark 6, eval within the rate limits: ``workload eval`` against the service's own floor.

The local fake Azure OpenAI (``tests/fake_azure_openai.py``), made strict: the
lab's own limits (10K TPM, 60 RPM) enforced over sliding 10-second windows (at
most 10 requests and 1,667 admission tokens in any 10 s), a token estimate of
its own (not the pacer's), answers after 1 to 3 s. ``python -m workload eval``
(its ``main``, in this process, MLflow imported beforehand) with its default
flags (``--max-tokens 256``, ``--judge-max-tokens 512``, ``--concurrency 4``)
scores a prompt set with a sqlite tracking store. Three runs: judges off;
judges on the chat deployment (sharing its budget); judges on a judge
deployment of their own.

Floor: the least time the service's windows allow for the same requests. Per
deployment, the requests the fake admitted, in their order and at the fake's
own token counts, are replayed through a simulation of the fake's windows,
each as early as they let it (a window that fits only whole requests can make
this longer than the steady rate); the floor is the larger of that and the
steady rate, ``max(requests x 60 / RPM, tokens x 60 / TPM)``, plus the shortest
answer time drawn (the last request must still be answered); the largest of the
deployments'. Target: wall time at most 1.15x the floor, with no 429. Also
measured: how close the run came to a window's limits (the pacer's jitter
margin left), the closest approach of the 11th request to the window's start
and the most tokens any 10 s held.

``--quick`` (the smoke test) keeps the old, fast setting: token buckets at
600K TPM, answers in 50 ms, three rows.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from bench.common import PROJECT_DIR, BenchmarkError, Result

__all__ = ["run"]

TARGET_RATIO: Final = 1.15
API_KEY: Final = "bench-key-0123456789"
CHAT, JUDGE = "gpt-4o", "gpt-4o-judge"
#: The lab's limits, Azure's evaluation window, and the service's answer time.
LAB_TPM: Final = 10_000
WINDOW: Final = 10.0
LATENCY: Final = (1.0, 3.0)
#: Rows of a full run (at 10K TPM a judged row takes about 10 s of the budget).
ROWS: Final = 8
#: The quick run's fake answer time.
SERVER_DELAY: Final = 0.05


def _rows(count: int) -> list[dict[str, Any]]:
    animals = ["cats", "dogs", "owls", "penguins", "frogs", "bees", "sloths", "zebras"]
    return [
        {
            "inputs": {"prompt": f"Tell me a joke about {animals[i % len(animals)]} (#{i})."},
            "expectations": {
                "guidelines": [
                    f"The response is a joke about {animals[i % len(animals)]}.",
                    "The response is suitable for all ages.",
                ]
            },
        }
        for i in range(count)
    ]


def _simulated(admitted: list[Any], tpm: int, rpm: int, window: float) -> float:
    """When the last of these admissions could at the earliest be admitted (the first at 0),
    replaying them in order through the fake's sliding windows."""
    log: list[tuple[float, int]] = []
    at = 0.0
    for admission in admitted:
        while True:
            inside = [(t, n) for t, n in log if t > at - window]
            held = sum(n for _, n in inside)
            room = len(inside) + 1 <= rpm * window / 60 and held + admission.tokens <= (
                tpm * window / 60
            )
            if room or not inside:  # alone, any request is admitted
                break
            at = inside[0][0] + window
        log.append((at, admission.tokens))
    return at


def _floor(admitted: list[Any], tpm: int, rpm: int, window: float | None) -> float:
    """Seconds the limits allow for these admissions at the least (before the last answer)."""
    if not admitted:
        return 0.0
    tokens = sum(a.tokens for a in admitted)
    steady = max(len(admitted) / rpm, tokens / tpm) * 60.0
    return max(steady, _simulated(admitted, tpm, rpm, window) if window else 0.0)


def _closest(admitted: list[Any], tpm: int, rpm: int, window: float) -> str:
    """How near the run came to a window's limits: the margin the pacer kept."""
    times = [a.at for a in admitted]
    share = int(rpm * window / 60)
    gaps = [times[i + share] - times[i] - window for i in range(len(times) - share)]
    peak = max(sum(b.tokens for b in admitted if a.at - window < b.at <= a.at) for a in admitted)
    request = (
        f"request {share + 1} came {min(gaps):+.2f} s after its window"
        if gaps
        else (f"never {share + 1} requests")
    )
    return f"{request}; peak {peak:,} tokens in a window ({peak / (tpm * window / 60):.0%})"


def _one(
    name: str, *, quick: bool, judges: str, dataset: Path, tmp: Path
) -> tuple[Result, dict[str, Any]]:
    from tests.fake_azure_openai import FakeAzureOpenAI
    from workload.cli import main
    from workload.model.pacing import default_rpm

    tpm = 600_000 if quick else LAB_TPM
    rpm = default_rpm(tpm)
    own_judge = judges == "own"
    strict: dict[str, Any] = (
        {"delay": SERVER_DELAY}
        if quick
        else {"window": WINDOW, "limiter": "sliding", "estimate": "strict", "latency": LATENCY}
    )
    fake = FakeAzureOpenAI(
        api_key=API_KEY,
        deployment=CHAT,
        tpm=tpm,
        judge_deployment=JUDGE if own_judge else None,
        judge_tpm=tpm if own_judge else None,
        **strict,
    ).start()
    env = {
        "AZURE_OPENAI_ENDPOINT": fake.endpoint,
        "AZURE_OPENAI_API_KEY": API_KEY,
        "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
        "AZURE_OPENAI_DEPLOYMENT": CHAT,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
    }
    saved = {key: os.environ.get(key) for key in [*env, "LLMOPS_JUDGE_DEPLOYMENT"]}
    os.environ.update(env)
    if own_judge:
        os.environ["LLMOPS_JUDGE_DEPLOYMENT"] = JUDGE
    else:
        os.environ.pop("LLMOPS_JUDGE_DEPLOYMENT", None)
    argv = [
        "eval",
        "--json",
        "--experiment",
        f"bench-eval-{judges}",
        "--dataset",
        str(dataset),
        "--tpm",
        str(tpm),
        *(["--no-judge"] if judges == "off" else []),
        *(["--judge-tpm", str(tpm)] if own_judge else []),
    ]
    out, err = io.StringIO(), io.StringIO()
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        wall = time.perf_counter() - start
    finally:
        fake.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if code != 0:
        tail = err.getvalue().strip().splitlines()[-1:] or ["(no stderr)"]
        raise BenchmarkError(f"eval ({judges}) exited {code}: {tail[0]}")
    summary = json.loads(out.getvalue())
    by_deployment: dict[str, list[Any]] = {}
    for admission in fake.admitted:
        by_deployment.setdefault(admission.deployment, []).append(admission)
    window = None if quick else WINDOW
    floors = {d: _floor(a, tpm, rpm, window) for d, a in by_deployment.items()}
    answer = min(fake.latencies, default=SERVER_DELAY)
    floor = max(floors.values()) + answer
    binding = max(floors, key=lambda d: floors[d])
    tokens = sum(a.tokens for a in by_deployment[binding])
    requests = len(by_deployment[binding])
    closest = "; ".join(
        f"{d}: {_closest(a, tpm, rpm, WINDOW)}" for d, a in by_deployment.items() if not quick
    )
    result = Result(
        name=f"6. eval within rate limits: {name}",
        measured=wall,
        floor=floor,
        unit="s",
        target=f"<= {TARGET_RATIO}x, 0 x 429",
        met=wall <= TARGET_RATIO * floor and fake.throttled == 0,
        note=(
            f"{summary['rows']} rows, {len(fake.admitted)} requests, {fake.throttled} x 429; "
            f"binding: {binding} ({requests} requests, {tokens:,} admission tokens at "
            f"{tpm:,} TPM / {rpm} RPM"
            + ("" if quick else f"; sliding {WINDOW:g} s windows simulated")
            + ")"
            + (f"; {closest}" if closest else "")
        ),
    )
    return result, summary


def run(quick: bool) -> list[Result]:
    """Judges off, on the chat deployment, on their own deployment."""
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    import mlflow  # noqa: F401 - imported before the clock starts: not what is measured

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as name:
        tmp = Path(name)
        dataset = tmp / "rows.jsonl"
        rows = _rows(3 if quick else int(os.environ.get("LLMOPS_BENCH_EVAL_ROWS", ROWS)))
        dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))
        warm_up = tmp / "warm-up.jsonl"
        warm_up.write_text(json.dumps(rows[0]) + "\n")
        # Untimed: the store's schema, autolog's patching, the first connections.
        _one("warm-up", quick=True, judges="shared", dataset=warm_up, tmp=tmp)
        for label, judges in (
            ("judges off", "off"),
            ("judges on the chat deployment", "shared"),
            ("judges on their own deployment", "own"),
        ):
            result, _ = _one(label, quick=quick, judges=judges, dataset=dataset, tmp=tmp)
            results.append(result)
    return results
