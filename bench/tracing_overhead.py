"""Benchmark 3, tracing overhead: the workload's traced chat call against the same call untraced.

Many calls in one process against the local fake Azure OpenAI server
(``tests/fake_azure_openai.py``) answering each request after 100 ms, with
a local sqlite tracking store. Three variants, interleaved in rounds:

- *traced*: ``workload.model.chat.traced_chat`` as ``python -m workload chat``
  runs it (``mlflow.openai.autolog()``, an MLflow run, params and metrics,
  the trace written before it returns);
- *untraced* (the floor): the same function with MLflow tracing disabled
  (``mlflow.tracing.disable()``), so only the trace is missing;
- *bare*: ``client.chat.completions.create`` alone, no MLflow at all.

Target: traced at most 1.05 times untraced, that is at most 5 ms a call.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.common import PROJECT_DIR, BenchmarkError, Result, median

__all__ = ["SERVER_DELAY", "run"]

TARGET_RATIO: Final = 1.05
TARGET_MS: Final = 5.0
#: The fake server's answer time, standing in for the service's.
SERVER_DELAY: Final = 0.1
API_KEY: Final = "bench-key-0123456789"
DEPLOYMENT: Final = "gpt-4o"


def _timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run(quick: bool) -> list[Result]:
    """Per-call time of the traced call, the untraced call and the bare OpenAI call."""
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        return _measure(quick)


def _measure(quick: bool) -> list[Result]:
    import mlflow
    from openai.types.chat import ChatCompletionMessageParam

    from tests.fake_azure_openai import FakeAzureOpenAI
    from workload.config.defaults import LAB_SYSTEM_PROMPT, LAB_USER_PROMPT
    from workload.config.settings import ChatSettings
    from workload.model.chat import make_client, traced_chat

    rounds, per_round = (1, 3) if quick else (10, 10)
    with FakeAzureOpenAI(api_key=API_KEY, deployment=DEPLOYMENT, delay=SERVER_DELAY) as fake:
        settings = ChatSettings(
            provider="azure",
            endpoint=fake.endpoint,
            api_key=API_KEY,
            api_version="2024-05-01-preview",
            model=DEPLOYMENT,
        )
        client = make_client(settings, max_retries=0, timeout=30.0)
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": LAB_SYSTEM_PROMPT},
            {"role": "user", "content": LAB_USER_PROMPT},
        ]

        def traced() -> float:
            return _timed(
                lambda: traced_chat(
                    client,
                    model=DEPLOYMENT,
                    system_prompt=LAB_SYSTEM_PROMPT,
                    user_prompt=LAB_USER_PROMPT,
                    experiment="bench-tracing",
                    secret=API_KEY,
                )
            )

        def untraced() -> float:
            mlflow.tracing.disable()
            try:
                return traced()
            finally:
                mlflow.tracing.enable()

        def bare() -> float:
            # traced_chat turns autolog on at every call; off here, outside the timing.
            mlflow.openai.autolog(disable=True)
            return _timed(
                lambda: client.chat.completions.create(model=DEPLOYMENT, messages=messages)
            )

        variants: dict[str, Callable[[], float]] = {
            "traced": traced,
            "untraced": untraced,
            "bare": bare,
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for call in variants.values():  # warm up: store schema, autolog patching, connections
            call()
        order = list(variants)
        for i in range(rounds):
            for name in order[i % 3 :] + order[: i % 3]:
                times[name].extend(variants[name]() for _ in range(per_round))

        mlflow.flush_trace_async_logging()
        experiment = mlflow.get_experiment_by_name("bench-tracing")
        if experiment is None:
            raise BenchmarkError("the traced calls created no experiment")
        traces = mlflow.search_traces(
            locations=[experiment.experiment_id], return_type="list", include_spans=False
        )
        expected = 1 + rounds * per_round
        if len(traces) != expected:
            raise BenchmarkError(f"expected {expected} traces (traced calls only), {len(traces)}")

    traced_s, untraced_s, bare_s = (median(times[n]) for n in ("traced", "untraced", "bare"))
    overhead_ms = (traced_s - untraced_s) * 1000
    calls = rounds * per_round
    return [
        Result(
            name="3. tracing: traced vs untraced call",
            measured=traced_s * 1000,
            floor=untraced_s * 1000,
            unit="ms",
            target=f"<= {TARGET_RATIO}x, <= {TARGET_MS:.0f} ms",
            met=traced_s / untraced_s <= TARGET_RATIO and overhead_ms <= TARGET_MS,
            note=(
                f"median of {calls} calls each; tracing adds {overhead_ms:.1f} ms a call; "
                f"server answers in {SERVER_DELAY * 1000:.0f} ms; sqlite tracking store"
            ),
        ),
        Result(
            name="3. tracing: workload call vs bare call",
            measured=traced_s * 1000,
            floor=bare_s * 1000,
            unit="ms",
            target="(info)",
            met=True,
            note=(
                f"the MLflow run, params and metrics cost {(untraced_s - bare_s) * 1000:.1f} ms "
                "a call on top of the OpenAI client's own call"
            ),
        ),
    ]
