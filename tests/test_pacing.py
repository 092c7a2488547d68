"""The pacer's schedule (a simulated clock) and the paced client against the fake's limits."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Final

import pytest
from fake_azure_openai import FakeAzureOpenAI, Reply, strict_prompt_tokens
from fake_azure_openai import admission_tokens as fake_admission_tokens

from workload.model.pacing import (
    DEFAULT_MAX_COMPLETION_TOKENS,
    JITTER_MARGIN,
    WINDOW_SECONDS,
    Budget,
    Pacer,
    admission_tokens,
    default_rpm,
    text_tokens,
)

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow

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
    # A 40-letter word is 10 tokens (4 letters a token), a 9-letter one 3; 4 a message.
    assert admission_tokens(body) == (10 + 4) + (3 + 4) + 100
    assert admission_tokens({**body, "n": 2}) == 21 + 200, "each choice may use the budget"
    unbounded = {"messages": body["messages"][:1]}
    assert admission_tokens(unbounded) == 14 + DEFAULT_MAX_COMPLETION_TOKENS
    assert text_tokens("order 1234567, please.") == 2 + 3 + 1 + 2 + 1, "digits by three"
    text_only = {"messages": [{"role": "user", "content": "z" * 41}], "max_tokens": 7}
    assert admission_tokens(text_only) >= fake_admission_tokens(text_only), (
        "the pacer counts at least what the fake (as Azure) counts"
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
        thread.join(timeout=60)
        assert not thread.is_alive(), "every thread got its slot"
    slots.sort()
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(0.01), "no two requests share a slot"


class SharedClock:
    """The time of the pacer and the fake alike: it moves only when a request waits for its
    slot, by that wait, so the fake's limiter sees the pacer's schedule (no later, however
    long the machine takes to run the threads) and never more requests than it holds."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(seconds, 0.0)


class SteppedClock:
    """Simulated time for threads that wait on it: it moves only when every worker thread is
    asleep on it (or done), and then to the earliest wake-up among them, so each wakes at
    exactly the time it asked for and nothing moves while a request is on its way. A request
    sent at its slot is then admitted by a fake on this clock at that slot, however long the
    machine takes to run the threads; :class:`SharedClock`, which adds every sleep to one
    time, let one thread's wait carry others past their slots into one window.
    """

    #: A bound on each real wait for the others (a worker stuck elsewhere fails the test).
    REAL_WAIT: Final = 120.0

    def __init__(self) -> None:
        self.now = 1000.0
        self._changed = threading.Condition()
        self._workers = 0
        self._asleep: dict[int, float] = {}

    def __call__(self) -> float:
        return self.now

    def expect(self, workers: int) -> None:
        """``workers`` threads are about to use the clock (each calls :meth:`done` at its end)."""
        with self._changed:
            self._workers += workers

    def done(self) -> None:
        with self._changed:
            self._workers -= 1
            self._step()

    def _step(self) -> None:
        if self._asleep and len(self._asleep) >= self._workers:
            self.now = max(self.now, min(self._asleep.values()))
            self._changed.notify_all()

    def sleep(self, seconds: float) -> None:
        with self._changed:
            wake = self.now + max(seconds, 0.0)
            if self._workers == 0:  # no worker yet: the caller's time alone
                self.now = wake
                return
            me = threading.get_ident()
            self._asleep[me] = wake
            try:
                self._step()
                while self.now < wake:
                    if not self._changed.wait(timeout=self.REAL_WAIT):
                        raise TimeoutError("the other workers neither slept nor ended")
            finally:
                del self._asleep[me]


def _send_all(fake: FakeAzureOpenAI, clock: SharedClock, tpm: int, count: int) -> tuple[float, int]:
    """``count`` requests from 4 threads through a client paced for ``tpm``: the seconds
    taken on ``clock``, and how many requests still failed after the client's retries."""
    import openai

    from workload.model.paced_client import RunControl, paced_client

    base = openai.AzureOpenAI(
        azure_endpoint=fake.endpoint,
        api_key=fake.api_key,
        api_version="2024-05-01-preview",
        max_retries=5,
    )
    # The fake's requests limit does not bind.
    pacer = Pacer(Budget("gpt-4o", tpm, tpm), clock=clock, sleep=clock.sleep)
    client = paced_client(base, pacer, RunControl(4, sleep=clock.sleep), timeout=10)
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

    start = clock()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
        assert not thread.is_alive(), "every request was answered"
    return clock() - start, len(failed)


def test_paced_at_the_fakes_limit_no_request_is_refused() -> None:
    # 100 admission tokens a request, 6,000 tokens a second: evenly paced, 150 take 2.5 s.
    clock = SharedClock()
    with FakeAzureOpenAI(tpm=360_000, rpm=360_000, window=1.0, clock=clock) as fake:
        took, failed = _send_all(fake, clock, 360_000, 150)
        assert fake.throttled == 0 and failed == 0, "paced at the fake's own limits: no 429"
        assert len(fake.admitted) == 150
        assert took >= 149 * 100 / 6_000 - 1e-9, "paced evenly, no burst"


def test_paced_for_ten_times_the_limit_the_fake_refuses() -> None:
    clock = SharedClock()
    with FakeAzureOpenAI(tpm=360_000, rpm=360_000, window=1.0, clock=clock) as fake:
        _, failed = _send_all(fake, clock, 3_600_000, 150)
        assert fake.throttled > 0, "the fake enforces its limits (this test can fail)"
        assert len(fake.admitted) + failed == 150, "a refused request is retried or reported"


#: One paced call with autolog on, in a process of its own (MLflow's tracking URI, active
#: experiment and tracer are process-wide): what its trace says, as JSON. The pacer's clock
#: moves only when a request waits for its slot (and the wait really sleeps, inside the span),
#: so the waits are the pacer's own figures however long the machine takes for the rest.
_PACED_CALL = """
import json, sys, time
import mlflow, openai
from workload.model.paced_client import RunControl, paced_client
from workload.model.pacing import Budget, Pacer
from workload.monitoring.traces import PACING_WAIT_MS, record_from_trace

class Clock:
    now = 1000.0
    def __call__(self):
        return self.now
    def sleep(self, seconds):
        time.sleep(seconds)
        self.now += seconds

endpoint, key = sys.argv[1:3]
mlflow.set_experiment("pacing-wait")
mlflow.openai.autolog()
base = openai.AzureOpenAI(
    azure_endpoint=endpoint, api_key=key, api_version="2024-05-01-preview", max_retries=1
)
clock = Clock()
pacer = Pacer(Budget("gpt-4o", 1_000_000, 120), clock=clock, sleep=clock.sleep)  # every 0.5 s
pacer.reserve(1)  # someone else's request: the call waits for its slot, and its retry too
client = paced_client(base, pacer, RunControl(1, sleep=clock.sleep), timeout=10)
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
    tmp_path: Path, empty_mlflow_store: Path
) -> None:
    """Autolog's span is open while the transport waits, first attempt and retry alike;
    the wait is on the span, and the trace's latency as the monitor reads it is without it."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZURE_", "OPENAI_"))
    }
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", PYTHONPATH=str(ROOT))
    shutil.copyfile(empty_mlflow_store, tmp_path / "mlflow.db")  # its tables made already
    with FakeAzureOpenAI() as fake:
        fake.script(Reply.rate_limited("0.01"))  # then the normal completion
        done = subprocess.run(
            [sys.executable, "-c", _PACED_CALL, fake.endpoint, fake.api_key],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,  # MLflow's imports and its store's migrations take minutes when busy
        )
        assert done.returncode == 0, done.stderr
        assert len(fake.requests) == 2, "a 429, then the retry"
    trace = json.loads(done.stdout.splitlines()[-1])
    (waited,) = trace["spans"]
    assert waited == pytest.approx(1000.0), f"both attempts' waits (0.5 s each), added up: {waited}"
    assert trace["duration"] >= waited, "the waits are inside the span"
    assert trace["latency"] == pytest.approx(trace["duration"] - waited), (
        "the latency as the monitor reads it is the span's time without the waits"
    )


def _lab_prompts() -> list[str]:
    texts = []
    for name in ("lab_prompts.jsonl", "lab_prompts_ja.jsonl"):
        for line in (ROOT / "workload" / "evaluation" / "datasets" / name).read_text().splitlines():
            row = json.loads(line)
            texts.append(row["inputs"]["prompt"])
            texts.extend(row["expectations"]["guidelines"])
    return texts


def test_a_cjk_character_is_at_least_one_token() -> None:
    prompt = "動物についてのジョークを教えてください。"
    assert text_tokens(prompt) >= len(prompt), "every Japanese character counts one token"
    assert text_tokens(prompt) >= 3 * math.ceil(len(prompt) / 4), "not characters / 4"
    assert text_tokens("你好世界") == 4
    assert text_tokens("Tell me a joke.") >= 5


@pytest.mark.parametrize("text", _lab_prompts())
def test_the_estimate_is_never_below_the_strict_fakes_on_the_lab_prompts(text: str) -> None:
    """Each English and Japanese prompt and guideline of the shipped sets: the pacer's
    admission tokens are at least what the strict fake (its own formula) counts."""
    strict = FakeAzureOpenAI(estimate="strict")
    for content in (text, f"{text} {text}"):
        body = {"messages": [{"role": "user", "content": content}], "max_tokens": 10}
        assert admission_tokens(body) >= strict.admission_tokens(body)
        assert admission_tokens(body) >= fake_admission_tokens(body)
    strict.stop()


def test_the_strict_fake_counts_english_above_characters_over_four() -> None:
    strict = FakeAzureOpenAI(estimate="strict")
    strict.stop()
    texts = [t for t in _lab_prompts() if t.isascii()]
    counted = sum(strict_prompt_tokens(t) for t in texts)
    assert counted > sum(math.ceil(len(t) / 4) for t in texts), (
        "the fake's estimate is not the old pacer's: English costs more than characters / 4"
    )


def test_no_widened_window_holds_more_than_its_share_of_requests() -> None:
    """60 RPM: ten requests per 10 s window; the steady rate alone would put the eleventh
    exactly 10 s after the first, where a few ms of jitter make it the eleventh in a window."""
    clock = Clock()
    pacer = Pacer(Budget("d", 10_000, 60), clock=clock, sleep=clock.sleep)
    slots = [pacer.reserve(50) for _ in range(40)]
    span = WINDOW_SECONDS * (1 + JITTER_MARGIN)
    for i in range(len(slots) - 10):
        assert slots[i + 10] - slots[i] >= span - 1e-9, f"request {i + 10} too close to {i}"
    assert slots[9] - slots[0] == pytest.approx(9.0), "within a window, the steady 1 s rate"


def test_tokens_never_exceed_a_windows_share_where_the_steady_rate_would() -> None:
    """1,000 tokens at 10K TPM: the steady rate sends one every 6 s, two in a 10 s window
    (2,000 > 1,667); the window rule waits until the first has left it."""
    clock = Clock()
    pacer = Pacer(Budget("d", 10_000, 60), clock=clock, sleep=clock.sleep)
    slots = [pacer.reserve(1000) for _ in range(3)]
    span = WINDOW_SECONDS * (1 + JITTER_MARGIN)
    assert [b - a for a, b in itertools.pairwise(slots)] == pytest.approx([span, span])


def test_a_request_bigger_than_a_windows_share_goes_alone_into_an_empty_window() -> None:
    clock = Clock()
    pacer = Pacer(Budget("d", 10_000, 60), clock=clock, sleep=clock.sleep)
    span = WINDOW_SECONDS * (1 + JITTER_MARGIN)
    first = pacer.reserve(100)
    big = pacer.reserve(2_500)  # a judge's retry: four times 512 tokens of room, its prompt
    after = pacer.reserve(100)
    assert big - first == pytest.approx(span), "the window before it is empty"
    assert after - big >= span, "nothing joins it in its window"
    huge = pacer.reserve(DEFAULT_MAX_COMPLETION_TOKENS)  # a call without max_tokens
    assert huge - after == pytest.approx(span)
    assert pacer.reserve(10) - huge == pytest.approx(60.0), "held for at most a minute"


def test_a_postponed_slot_moves_only_where_the_window_has_room() -> None:
    clock = Clock()
    pacer = Pacer(Budget("d", 10_000, 60), clock=clock, sleep=clock.sleep)
    slots = [pacer.reserve(10) for _ in range(10)]  # 0 .. 9 s
    clock.now = slots[0] + 0.5  # the first found no place until now
    assert pacer.postpone(slots[0], 10), "still ten requests in any window"
    later = pacer.reserve(10)
    assert later - (slots[0] + 0.5) >= WINDOW_SECONDS * (1 + JITTER_MARGIN) - 1e-9, (
        "the window is counted from where the request really went"
    )
    big = Pacer(Budget("d", 10_000, 60), clock=clock, sleep=clock.sleep)
    first, second = big.reserve(1_000), big.reserve(700)
    clock.now = second + 1.0
    assert not big.postpone(first, 1_000), "moved, it would share a window with the second"


def test_a_cancelled_slot_leaves_the_window() -> None:
    clock = Clock()
    pacer = Pacer(Budget("d", 10_000, 60), clock=clock, sleep=clock.sleep)
    slot = pacer.reserve(1_600)
    pacer.cancel(slot, 1_600)
    assert pacer.requests == 0 and pacer.tokens == 0


def _paced_burst(
    fake: FakeAzureOpenAI,
    clock: SteppedClock,
    budget: Budget,
    count: int,
    concurrency: int,
    threads: int,
    margin: float,
) -> tuple[float, list[float]]:
    """``count`` requests from ``threads`` threads, paced for ``budget``: the seconds taken
    on ``clock``, and when the fake admitted each request on it."""
    import openai

    from workload.model.paced_client import RunControl, paced_client

    base = openai.AzureOpenAI(
        azure_endpoint=fake.endpoint,
        api_key=fake.api_key,
        api_version="2024-05-01-preview",
        max_retries=0,
    )
    pacer = Pacer(budget, margin=margin, clock=clock, sleep=clock.sleep)
    client = paced_client(base, pacer, RunControl(concurrency, sleep=clock.sleep), timeout=30)
    jobs = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                job = next(jobs, None)
            if job is None:
                return
            client.chat.completions.create(
                model=budget.deployment,
                messages=[{"role": "user", "content": f"Tell me joke number {job}."}],
                max_tokens=20 if job % 3 else 120,
            )

    # The client's first requests open their connections, which here takes longer than
    # the jitter margin allows for (and bunches them up): one request opens the way first.
    client.chat.completions.create(
        model=budget.deployment, messages=[{"role": "user", "content": "hi"}], max_tokens=1
    )
    clock.sleep(budget.window * (1 + margin))
    start = clock()

    def worker_on_the_clock() -> None:
        try:
            work()
        finally:
            clock.done()

    workers = [threading.Thread(target=worker_on_the_clock) for _ in range(threads)]
    clock.expect(len(workers))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert not worker.is_alive(), "every request was answered"
    return clock() - start, [a.at for a in fake.admitted]


def test_at_the_labs_limits_scaled_tenfold_in_time_sliding_windows_see_no_429() -> None:
    """The lab's 10K TPM and 60 RPM as Azure's 10 s windows hold them (1,667 tokens and
    10 requests a window), with windows ten times shorter: 1 s windows of 1,667 tokens and
    10 requests. The strict fake (sliding windows, its own estimate) refuses anything
    beyond; the pacer, told the same window, sends 60 requests of two sizes from 8 threads
    without one 429, and loses no more than its jitter margin to the windows' floor.

    The pacer and the fake share a simulated clock (:class:`SteppedClock`): what the fake's
    windows see is the pacer's schedule, and the time taken is the schedule's own, whatever
    the machine's load (on the wall clock, a thread woken late on a busy machine bunched
    requests into one window). On that clock a request in flight takes no time, so the
    places (4) never run out here; how the pacer does against the windows in real time,
    answers taking their time, is measured against the floor by
    ``bench/eval_rate_limit.py``."""
    clock = SteppedClock()
    with FakeAzureOpenAI(
        tpm=100_000,
        rpm=600,
        window=1.0,
        limiter="sliding",
        estimate="strict",
        clock=clock,
    ) as fake:
        taken, admitted = _paced_burst(
            fake,
            clock,
            Budget("gpt-4o", 100_000, 600, window=1.0),
            60,
            concurrency=4,
            threads=8,
            margin=0.2,
        )
        assert fake.throttled == 0, "no request was refused"
        assert len(admitted) == 1 + 60
    for i in range(len(admitted) - 10):
        assert admitted[i + 10] - admitted[i] > 1.0, "never 11 requests in a 1 s window"
    # The floor: 60 requests at 10 a window, the last one sent; the margin costs 20 %.
    assert 5.9 <= taken <= 5.9 * 1.2 + 0.2, f"no slot is wasted: {taken}"


def test_the_fake_refuses_the_eleventh_request_of_a_sliding_window() -> None:
    """The strictness the test above relies on: unpaced, the fake refuses (this can fail)."""
    clock = Clock()
    with FakeAzureOpenAI(tpm=100_000, rpm=600, window=1.0, limiter="sliding", clock=clock) as fake:
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        waits = [fake._admit("gpt-4o", body)[0] for _ in range(11)]
        assert waits[:10] == [0.0] * 10 and waits[10] > 0
        big = {"messages": [{"role": "user", "content": "hi"}]}  # no max_tokens
        clock.sleep(1.05)
        assert fake._admit("gpt-4o", big)[0] == 0.0, "alone in an empty window, admitted"
        assert fake._admit("gpt-4o", body)[0] > 0, "and the window is then full"
