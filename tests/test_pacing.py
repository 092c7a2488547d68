"""The pacer's schedule (a simulated clock) and the paced client against the fake's limits."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_azure_openai import FakeAzureOpenAI, Reply
from fake_azure_openai import admission_tokens as fake_admission_tokens

from workload.model.pacing import (
    DEFAULT_MAX_COMPLETION_TOKENS,
    Budget,
    Pacer,
    admission_tokens,
    default_rpm,
)

#: The checkout's root, for the child process's imports.
ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """A clock that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_default_rpm_is_azures_six_per_thousand_tpm() -> None:
    assert default_rpm(10_000) == 60
    assert default_rpm(1_000) == 6
    assert default_rpm(100) == 1, "never zero"


def test_admission_counts_the_prompt_estimate_plus_the_whole_completion_budget() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "x" * 40},
            {"role": "user", "content": [{"type": "text", "text": "y" * 9}]},
        ],
        "max_tokens": 100,
    }
    assert admission_tokens(body) == (10 + 4) + (3 + 4) + 100
    assert admission_tokens({**body, "n": 2}) == 21 + 200, "each choice may use the budget"
    unbounded = {"messages": body["messages"][:1]}
    assert admission_tokens(unbounded) == 14 + DEFAULT_MAX_COMPLETION_TOKENS
    text_only = {"messages": [{"role": "user", "content": "z" * 41}], "max_tokens": 7}
    assert admission_tokens(text_only) == fake_admission_tokens(text_only), (
        "the pacer counts what the fake (as Azure) counts"
    )


def test_requests_are_spaced_by_their_share_of_the_minute() -> None:
    clock = Clock()
    pacer = Pacer(Budget("d", 6_000, 60), clock=clock, sleep=clock.sleep)
    start = clock.now
    times = []
    for tokens in (300, 50, 50, 600):
        pacer.admit(tokens)
        times.append(clock.now - start)
    # 300 tokens of 100/s keep the next back 3 s; 50 tokens take less than a request's 1 s.
    assert times == pytest.approx([0.0, 3.0, 4.0, 5.0])
    assert pacer.requests == 4 and pacer.tokens == 1000


def test_idle_time_gives_no_burst_credit() -> None:
    clock = Clock()
    pacer = Pacer(Budget("d", 6_000, 60), clock=clock, sleep=clock.sleep)
    pacer.admit(100)
    clock.now += 3600  # an hour idle
    first = clock.now
    pacer.admit(100)
    pacer.admit(100)
    assert clock.now - first == pytest.approx(1.0), "the second waits its full share again"


def test_a_429_holds_every_later_slot_back_by_retry_after() -> None:
    clock = Clock()
    pacer = Pacer(Budget("d", 60_000, 600), clock=clock, sleep=clock.sleep)
    pacer.admit(10)
    pacer.hold_off(7.5)
    before = clock.now
    pacer.admit(10)
    assert clock.now - before == pytest.approx(7.5)
    assert pacer.throttled == 1


def test_threads_get_distinct_evenly_spaced_slots() -> None:
    pacer = Pacer(Budget("d", 600_000, 6_000))  # a slot every 10 ms (100 tokens)
    slots: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        slot = pacer.reserve(100)
        with lock:
            slots.append(slot)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots.sort()
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(0.01), "no two requests share a slot"


def _send_all(fake: FakeAzureOpenAI, tpm: int, count: int) -> tuple[float, int]:
    """``count`` requests from 4 threads through a client paced for ``tpm``: the seconds
    taken, and how many requests still failed after the client's retries."""
    import openai

    from workload.model.paced_client import RunControl, paced_client

    base = openai.AzureOpenAI(
        azure_endpoint=fake.endpoint,
        api_key=fake.api_key,
        api_version="2024-05-01-preview",
        max_retries=5,
    )
    pacer = Pacer(Budget("gpt-4o", tpm, tpm))  # the fake's requests limit does not bind
    client = paced_client(base, pacer, RunControl(4), timeout=10)
    todo = list(range(count))
    failed: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            try:
                client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=95
                )
            except openai.RateLimitError:
                with lock:
                    failed.append(1)

    start = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - start, len(failed)


def test_paced_at_the_fakes_limit_no_request_is_refused() -> None:
    # 100 admission tokens a request, 6,000 tokens a second: evenly paced, 150 take 2.5 s.
    with FakeAzureOpenAI(tpm=360_000, rpm=360_000, window=1.0) as fake:
        took, failed = _send_all(fake, 360_000, 150)
        assert fake.throttled == 0 and failed == 0, "paced at the fake's own limits: no 429"
        assert len(fake.admitted) == 150
        assert took >= 149 * 100 / 6_000 * 0.95, "paced evenly, no burst"


def test_paced_for_ten_times_the_limit_the_fake_refuses() -> None:
    with FakeAzureOpenAI(tpm=360_000, rpm=360_000, window=1.0) as fake:
        _, failed = _send_all(fake, 3_600_000, 150)
        assert fake.throttled > 0, "the fake enforces its limits (this test can fail)"
        assert len(fake.admitted) + failed == 150, "a refused request is retried or reported"


#: One paced call with autolog on, in a process of its own (MLflow's tracking URI, active
#: experiment and tracer are process-wide): what its trace says, as JSON.
_PACED_CALL = """
import json, sys
import mlflow, openai
from workload.model.paced_client import RunControl, paced_client
from workload.model.pacing import Budget, Pacer
from workload.monitoring.traces import PACING_WAIT_MS, record_from_trace

endpoint, key = sys.argv[1:3]
mlflow.set_experiment("pacing-wait")
mlflow.openai.autolog()
base = openai.AzureOpenAI(
    azure_endpoint=endpoint, api_key=key, api_version="2024-05-01-preview", max_retries=1
)
pacer = Pacer(Budget("gpt-4o", 1_000_000, 120))  # a request every 0.5 s
pacer.reserve(1)  # someone else's request: the call waits for its slot, and its retry too
client = paced_client(base, pacer, RunControl(1), timeout=10)
client.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=5
)
mlflow.flush_trace_async_logging()
trace = mlflow.get_trace(mlflow.get_last_active_trace_id())
print(json.dumps({
    "spans": [span.get_attribute(PACING_WAIT_MS) for span in trace.data.spans],
    "duration": trace.info.execution_duration,
    "latency": record_from_trace(trace).latency_ms,
}))
"""


def test_a_calls_waits_for_the_pacer_add_up_on_its_span_and_leave_its_latency(
    tmp_path: Path,
) -> None:
    """Autolog's span is open while the transport waits, first attempt and retry alike;
    the wait is on the span, and the trace's latency as the monitor reads it is without it."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZURE_", "OPENAI_"))
    }
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", PYTHONPATH=str(ROOT))
    with FakeAzureOpenAI() as fake:
        fake.script(Reply.rate_limited("0.01"))  # then the normal completion
        done = subprocess.run(
            [sys.executable, "-c", _PACED_CALL, fake.endpoint, fake.api_key],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert len(fake.requests) == 2, "a 429, then the retry"
    trace = json.loads(done.stdout.splitlines()[-1])
    (waited,) = trace["spans"]
    assert 800 <= waited <= 1100, f"both attempts' waits (about 0.5 s each), added up: {waited}"
    assert trace["duration"] >= waited, "the waits are inside the span"
    assert trace["latency"] < 150, "the fake answers at once: the latency is without the waits"
