"""Benchmark 6, eval within the rate limits: ``workload eval`` against the limits' own floor.

The local fake Azure OpenAI (``tests/fake_azure_openai.py``) enforces a TPM
and an RPM budget per deployment as Azure does (token buckets holding 10 s of
the per-minute limit, 429 with Retry-After beyond them), answering in 50 ms.
``python -m workload eval`` (its ``main``, in this process, MLflow imported
beforehand) scores a prompt set large enough that the limits bind, with a
sqlite tracking store, told the same limits the fake enforces. Three runs:
judges off; judges on the chat deployment (sharing its budget); judges on a
judge deployment of their own.

Floor: the least time the limits allow, per deployment
``max(requests / RPM, admission tokens / TPM)`` over what the fake admitted,
and the largest of the deployments'. Target: wall time at most 1.15x the floor,
with no 429 answer. The limits are the lab's scaled up 6x (60K TPM, 360 RPM),
so a run takes a minute, not six.
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
#: The fake's answer time, standing in for the service's.
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


def _floor(admitted: list[Any], tpm: int, rpm: int) -> float:
    """Seconds the limits allow for these admissions at the least."""
    if not admitted:
        return 0.0
    tokens = sum(a.tokens for a in admitted)
    return max(len(admitted) / rpm, tokens / tpm) * 60.0


def _one(
    name: str, *, quick: bool, judges: str, dataset: Path, tmp: Path
) -> tuple[Result, dict[str, Any]]:
    from tests.fake_azure_openai import FakeAzureOpenAI
    from workload.cli import main
    from workload.model.pacing import default_rpm

    tpm = 600_000 if quick else 60_000
    rpm = default_rpm(tpm)
    own_judge = judges == "own"
    fake = FakeAzureOpenAI(
        api_key=API_KEY,
        deployment=CHAT,
        delay=SERVER_DELAY,
        tpm=tpm,
        judge_deployment=JUDGE if own_judge else None,
        judge_tpm=tpm if own_judge else None,
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
        "--max-tokens",
        "800",
        "--judge-max-tokens",
        "800",
        "--concurrency",
        "4",
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
    floors = {d: _floor(a, tpm, rpm) for d, a in by_deployment.items()}
    floor = max(floors.values())
    binding = max(floors, key=lambda d: floors[d])
    tokens = sum(a.tokens for a in by_deployment[binding])
    requests = len(by_deployment[binding])
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
            f"{tpm:,} TPM / {rpm} RPM)"
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
        rows = _rows(3 if quick else 24)
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
