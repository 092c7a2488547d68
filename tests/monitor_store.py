"""Build a real MLflow sqlite store of traces shaped as ``mlflow.openai.autolog()`` records them.

Run as a script (``python tests/monitor_store.py DB_PATH``) so MLflow's global
state (tracking URI, active experiment, tracer) stays out of the test process.

Each trace is what autolog writes for ``client.chat.completions.create(...)``
inside ``mlflow.start_run()`` (``mlflow/openai/autolog.py``): one root span
named ``Completions`` of type CHAT_MODEL, the request's keyword arguments as
inputs and, but for ``messages``, as attributes, ``mlflow.message.format =
openai``, the ``ChatCompletion`` as outputs, and ``mlflow.chat.tokenUsage`` set
by MLflow's own ``set_span_chat_attributes``; a failed call ends the span with
an exception event and status ERROR, and the run FAILED. Start and end times
are explicit, so latencies are exact.

Experiments (one trace an hour from 2026-11-01 00:00 UTC; kept small, as
MLflow takes about a tenth of a second to record each trace and its run):

* ``drifting``, 24 traces: the newest 12 replies are about five times longer
  and the calls four times slower; the prompts do not change;
* ``steady``, 24 traces: all drawn from the same distributions;
* ``errors``, 32 traces: like steady, but half of the newest 16 calls failed;
* ``few``, 6 traces: too few to compare;
* ``one``, 1 trace: what a first chat call leaves.
"""

from __future__ import annotations

import contextlib
import random
import sys
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["EXPERIMENTS", "START_NS", "TraceSpec", "build"]

START_NS: Final = 1_793_491_200 * 1_000_000_000  # 2026-11-01 00:00 UTC
HOUR_NS: Final = 3_600 * 1_000_000_000
SYSTEM_PROMPT: Final = "Assistant is a large language model trained by OpenAI."


@dataclass(frozen=True)
class TraceSpec:
    """One chat call to record."""

    latency_ms: int
    prompt_words: int
    reply_words: int
    failed: bool = False


def _calm(rng: random.Random) -> TraceSpec:
    return TraceSpec(rng.randint(350, 650), rng.randint(4, 9), rng.randint(12, 30))


def _experiments() -> dict[str, list[TraceSpec]]:
    rng = random.Random(20261101)
    drifting = [_calm(rng) for _ in range(12)] + [
        TraceSpec(rng.randint(1_800, 2_600), rng.randint(4, 9), rng.randint(90, 160))
        for _ in range(12)
    ]
    steady = [_calm(rng) for _ in range(24)]
    errors = [_calm(rng) for _ in range(16)] + [
        TraceSpec(rng.randint(350, 650), rng.randint(4, 9), rng.randint(12, 30), failed=i % 2 == 1)
        for i in range(16)
    ]
    few = [_calm(rng) for _ in range(6)]
    one = [_calm(rng)]
    return {"drifting": drifting, "steady": steady, "errors": errors, "few": few, "one": one}


EXPERIMENTS: Final = _experiments()


def _record(experiment_id: str, index: int, spec: TraceSpec) -> None:
    import mlflow
    from mlflow.entities import SpanEvent, SpanType
    from mlflow.openai.utils.chat_schema import set_span_chat_attributes
    from mlflow.tracing.constant import SpanAttributeKey
    from openai import RateLimitError
    from openai.types.chat import ChatCompletion

    user_prompt = " ".join(["animals"] * spec.prompt_words)
    inputs = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_prompt},
        ],
    }
    start = START_NS + index * HOUR_NS
    end = start + spec.latency_ms * 1_000_000
    with contextlib.suppress(RateLimitError), mlflow.start_run(experiment_id=experiment_id) as run:
        # What autolog's _start_span does (mlflow/openai/autolog.py).
        attributes: dict[str, Any] = {
            k: v for k, v in inputs.items() if k not in ("messages", "input")
        }
        attributes[SpanAttributeKey.MESSAGE_FORMAT] = "openai"
        span = mlflow.start_span_no_context(
            name="Completions",
            span_type=SpanType.CHAT_MODEL,
            inputs=inputs,
            attributes=attributes,
            experiment_id=experiment_id,
            start_time_ns=start,
        )
        if spec.failed:
            # autolog's _end_span_on_exception; the error leaves the run, which ends FAILED.
            import httpx2

            request = httpx2.Request("POST", "https://example.openai.azure.com/")
            error = RateLimitError(
                "Rate limit", response=httpx2.Response(429, request=request), body=None
            )
            span.add_event(SpanEvent.from_exception(error))
            span.end(status="ERROR", end_time_ns=end)
            raise error
        prompt_tokens = 9 + 4 + spec.prompt_words + 4
        reply = " ".join(["Why"] + ["elephant"] * (spec.reply_words - 1))
        completion = ChatCompletion.model_validate(
            {
                "id": f"chatcmpl-{run.info.run_id[:8]}",
                "object": "chat.completion",
                "created": start // 1_000_000_000,
                "model": "gpt-4o-2024-11-20",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": reply},
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": spec.reply_words,
                    "total_tokens": prompt_tokens + spec.reply_words,
                },
            }
        )
        # autolog's _end_span_on_success for a non-streaming ChatCompletion.
        set_span_chat_attributes(span, inputs, completion)
        span.end(outputs=completion, end_time_ns=end)
        mlflow.log_param("completion_tokens", spec.reply_words)


def build(db_path: str) -> None:
    """Write every experiment of EXPERIMENTS into the sqlite file at ``db_path``."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db_path}")
    for name, specs in EXPERIMENTS.items():
        experiment_id = mlflow.create_experiment(name)
        for index, spec in enumerate(specs):
            _record(experiment_id, index, spec)
    mlflow.flush_trace_async_logging(terminate=True)


if __name__ == "__main__":
    build(sys.argv[1])
