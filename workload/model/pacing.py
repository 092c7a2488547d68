"""Even pacing of requests within a deployment's tokens-per-minute and requests-per-minute.

Azure OpenAI throttles a Standard deployment by tokens per minute (TPM) and
requests per minute (RPM, 6 per 1,000 TPM), and it does not wait for the
minute to end: it evaluates the rate over short windows, "typically 1 or 10
seconds", and answers 429 once a window holds more than its share of the
per-minute limit (Microsoft Learn, "Manage Azure OpenAI Service quota",
section "Understanding rate limits", read 2026-12-05). Tokens count as Azure
counts them when it admits a request: the prompt's estimated tokens plus the
most the completion may use (``max_tokens``, and ``best_of``/``n``), not what
the answer turns out to use (same page).

So every request, a row's or a judge's, takes a slot from a :class:`Pacer`
before it is sent. A slot satisfies two rules at once:

* the steady rate (the generic cell rate algorithm, no burst credit): each
  request keeps the next one back by its own share of the minute,
  ``max(60/RPM, tokens*60/TPM)`` seconds, which is what 1-second windows need;
* the sliding window: the :data:`WINDOW_SECONDS` before the slot, widened by
  :data:`JITTER_MARGIN`, hold at most a window's share of the requests
  (``RPM/6``) and of the tokens (``TPM/6``) with this request counted. The
  steady rate alone can put one request too many into a 10-second window
  (a request's share is charged after it, not inside the window), and a slot
  exactly one window after another is met, on a real network, a few
  milliseconds early. The margin (3 %, 0.3 s of a 10 s window) is that jitter
  allowance; ``bench/eval_rate_limit.py`` measures how much of it a run used.

A request whose admission tokens exceed a window's share (a long judge
budget at 10K TPM, or a call without ``max_tokens``) is still sent: alone,
into a window that holds nothing else, as Azure admits it ("an unconstrained
request ... will not be rejected on its own", Microsoft Q&A 1381398, answered by
Microsoft, read 2026-12-05); it then fills the window, so nothing follows it
within the window. A 429 that still comes back (another client shares the
deployment) holds every later slot back until its ``Retry-After`` has passed.
"""

from __future__ import annotations

import math
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_MAX_COMPLETION_TOKENS",
    "DEFAULT_TOKENS_PER_MINUTE",
    "JITTER_MARGIN",
    "REQUESTS_PER_1000_TOKENS",
    "WINDOW_SECONDS",
    "Budget",
    "Pacer",
    "admission_tokens",
    "default_rpm",
    "text_tokens",
]

#: The lab's deployment: capacity 10, that is 10,000 tokens per minute.
DEFAULT_TOKENS_PER_MINUTE: Final = 10_000

#: Azure's ratio for Standard deployments: 6 requests per minute per 1,000 TPM.
REQUESTS_PER_1000_TOKENS: Final = 6

#: What a request without ``max_tokens`` reserves at admission. Azure reserves "the
#: maximum possible value of the model context size" for it (Microsoft Q&A 1381398,
#: read 2026-12-05); gpt-4o's context is 128,000 tokens. The documentation does not
#: settle the exact figure, so the pacer takes the largest: such a request always
#: goes alone into an empty window. The eval never sends one (every row and judge
#: sets ``max_tokens``); the lab's own cell does, unpaced.
DEFAULT_MAX_COMPLETION_TOKENS: Final = 128_000

#: Azure's longest evaluation window, and the pacer's allowance for network jitter in it.
WINDOW_SECONDS: Final = 10.0
JITTER_MARGIN: Final = 0.03

#: ASCII letters per token in the estimate, and digits per token (see :func:`text_tokens`).
_CHARS_PER_TOKEN: Final = 4
_DIGITS_PER_TOKEN: Final = 3
#: Tokens a chat message costs beyond its text (role and separators).
_TOKENS_PER_MESSAGE: Final = 4


def default_rpm(tokens_per_minute: int) -> int:
    """Azure's requests-per-minute limit for a Standard deployment of this many TPM."""
    return max(1, tokens_per_minute * REQUESTS_PER_1000_TOKENS // 1000)


@dataclass(frozen=True)
class Budget:
    """One deployment's rate limits."""

    deployment: str
    """The deployment the budget belongs to (for messages)."""
    tokens_per_minute: int
    requests_per_minute: int
    window: float = WINDOW_SECONDS
    """The service's evaluation window (tests of the schedule scale it down with the limits)."""

    def __post_init__(self) -> None:
        if self.tokens_per_minute <= 0 or self.requests_per_minute <= 0 or self.window <= 0:
            raise ValueError("a budget needs positive tokens and requests per minute")

    def seconds(self, tokens: int) -> float:
        """How much of the timeline one request of ``tokens`` admission tokens takes.

        Never more than a minute: Azure's running count is per minute, so even the
        largest request keeps the deployment busy for at most that long.
        """
        tokens = min(tokens, self.tokens_per_minute)
        return max(60.0 / self.requests_per_minute, tokens * 60.0 / self.tokens_per_minute)

    @property
    def window_requests(self) -> float:
        """The requests one window may hold."""
        return self.requests_per_minute * self.window / 60.0

    @property
    def window_tokens(self) -> float:
        """The admission tokens one window may hold."""
        return self.tokens_per_minute * self.window / 60.0


def _is_word(char: str) -> bool:
    return char.isascii() and (char.isalpha() or char == "_")


def text_tokens(text: str) -> int:
    """An estimate of ``text``'s tokens that stays at or above what Azure counts.

    A run of ASCII letters costs one token per 4 characters (the tokenizers'
    average for English; common words are one token whatever their length), a
    run of digits one per 3 (GPT-4o's tokenizer splits numbers into groups of
    up to three digits), any other visible ASCII character (punctuation) one,
    whitespace nothing of its own, and every non-ASCII character one: a Japanese
    or Chinese character is at least one token, where characters / 4 counted a
    quarter of one.
    """
    tokens = 0
    kind, run = "", 0
    for char in text + " ":
        now = "digit" if char.isascii() and char.isdigit() else "word" if _is_word(char) else ""
        if now != kind and run:
            tokens += math.ceil(run / (_DIGITS_PER_TOKEN if kind == "digit" else _CHARS_PER_TOKEN))
            run = 0
        kind = now
        if now:
            run += 1
        elif not char.isspace() and (char.isascii() or unicodedata.category(char)[0] != "M"):
            tokens += 1  # punctuation, or a non-ASCII character (a combining mark rides along)
    return tokens


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return sum(
            text_tokens(str(part.get("text") or ""))
            for part in content
            if isinstance(part, Mapping)
        )
    return 0


def admission_tokens(body: Mapping[str, Any]) -> int:
    """The tokens Azure counts against TPM when it admits a chat request (or more).

    The prompt is estimated from its text (:func:`text_tokens`), and the
    completion counts in full: ``max_tokens`` (or ``max_completion_tokens``)
    times ``n``; without either, :data:`DEFAULT_MAX_COMPLETION_TOKENS`.
    """
    messages = body.get("messages")
    prompt = 0
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                prompt += _content_tokens(message.get("content")) + _TOKENS_PER_MESSAGE
    completion = body.get("max_tokens") or body.get("max_completion_tokens")
    if not isinstance(completion, int) or isinstance(completion, bool) or completion <= 0:
        completion = DEFAULT_MAX_COMPLETION_TOKENS
    choices = body.get("n")
    count = choices if isinstance(choices, int) and choices > 0 else 1
    return prompt + completion * count


class Pacer:
    """Hands out send times that keep one deployment's requests within its budget.

    Thread-safe; slots are handed out first come, first served. ``clock`` and
    ``sleep`` are injectable for tests of the schedule itself.
    """

    def __init__(
        self,
        budget: Budget,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = JITTER_MARGIN,
    ) -> None:
        self.budget = budget
        self._clock = clock
        self._sleep = sleep
        self._span = budget.window * (1.0 + margin)
        self._late = budget.window * margin / 2
        self._lock = threading.Lock()
        self._next = -math.inf
        self._log: deque[tuple[float, int]] = deque()
        """Slots handed out within the last window (widened), oldest first: (time, tokens)."""
        self.requests = 0
        """Requests admitted so far (retries included)."""
        self.tokens = 0
        """Admission tokens of those requests."""
        self.throttled = 0
        """429 answers reported by :meth:`hold_off`."""

    def _window_slot(self, earliest: float, tokens: int) -> float:
        """The first time from ``earliest`` at which the window before it has room."""
        budget = self.budget
        entries = list(self._log)  # in slot order: slots only grow
        while True:
            inside = [(t, n) for t, n in entries if t > earliest - self._span]
            held = sum(n for _, n in inside)
            fits = (
                len(inside) + 1 <= budget.window_requests and held + tokens <= budget.window_tokens
            )
            if fits or not inside:  # a request too big for any window goes alone
                return earliest
            # Wait until the oldest request in the window has left it, and look again.
            earliest = inside[0][0] + self._span + 1e-6

    def reserve(self, tokens: int) -> float:
        """Take the next slot for a request of ``tokens`` admission tokens; its time."""
        with self._lock:
            now = self._clock()
            while self._log and self._log[0][0] <= now - self._span:
                self._log.popleft()
            slot = self._window_slot(max(now, self._next), tokens)
            self._next = slot + self.budget.seconds(tokens)
            self._log.append((slot, tokens))
            self.requests += 1
            self.tokens += tokens
            return slot

    def postpone(self, slot: float, tokens: int) -> bool:
        """Move a slot that could not be used on time (no place in flight) to now, if the
        windows it then falls into still have room for it; False (nothing moved) if not.

        The request keeps its turn: taking a new slot instead would queue it behind every
        request that reserved meanwhile, whose slots would then find no place either.
        """
        with self._lock:
            now = self._clock()
            if now <= slot + self._late:
                # On time, or late by what the jitter margin allows for (a thread woken a
                # little late): the slot stands. Moving it would put the request into the
                # window of the next one, placed one window after it, every time.
                return True
            entries = [(t, n) for t, n in self._log if (t, n) != (slot, tokens)]
            if len(entries) == len(self._log):
                return False
            moved = [*entries, (now, tokens)]
            budget = self.budget
            anchors = [now, *(t for t, _ in entries if now <= t < now + self._span)]
            for anchor in anchors:
                inside = [n for t, n in moved if anchor - self._span < t <= anchor]
                if len(inside) > 1 and (
                    len(inside) > budget.window_requests or sum(inside) > budget.window_tokens
                ):
                    return False
            self._log = deque(sorted(moved))
            return True

    def cancel(self, slot: float, tokens: int) -> None:
        """Give back a slot that was not used (its request is sent later, on a new slot)."""
        with self._lock:
            try:
                self._log.remove((slot, tokens))
            except ValueError:
                return
            self.requests -= 1
            self.tokens -= tokens

    def now(self) -> float:
        """The pacer's clock: the time its slots are in."""
        return self._clock()

    def until(self, slot: float) -> float:
        """Seconds from now to ``slot`` (negative when it has passed)."""
        return slot - self._clock()

    def admit(self, tokens: int) -> None:
        """Wait for this request's slot."""
        delay = self.until(self.reserve(tokens))
        if delay > 0:
            self._sleep(delay)

    def hold_off(self, seconds: float) -> None:
        """The service answered 429: no slot before ``seconds`` from now."""
        with self._lock:
            self.throttled += 1
            self._next = max(self._next, self._clock() + max(seconds, 0.0))
