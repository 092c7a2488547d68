"""Even pacing of requests within a deployment's tokens-per-minute and requests-per-minute.

Azure OpenAI throttles a Standard deployment by tokens per minute (TPM) and
requests per minute (RPM, 6 per 1,000 TPM), and it does not wait for the
minute to end: it evaluates the rate over short windows (1 to 10 seconds), so a
minute's allowance sent in one burst is refused with 429 although the minute's
total would fit. Tokens count as Azure counts them when it admits a request:
the prompt's estimated tokens plus the most the completion may use
(``max_tokens``), not what the answer turns out to use.

So every request, a row's or a judge's, takes a slot from a :class:`Pacer`
before it is sent: slots follow each other at the rate the budget allows
(the generic cell rate algorithm, with no burst credit), each request keeping
the next one back by its own share of the minute: ``max(60/RPM, tokens*60/TPM)``
seconds. A 429 that still comes back (another client shares the deployment)
holds every later slot back until its ``Retry-After`` has passed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_MAX_COMPLETION_TOKENS",
    "DEFAULT_TOKENS_PER_MINUTE",
    "REQUESTS_PER_1000_TOKENS",
    "Budget",
    "Pacer",
    "admission_tokens",
    "default_rpm",
]

#: The lab's deployment: capacity 10, that is 10,000 tokens per minute.
DEFAULT_TOKENS_PER_MINUTE: Final = 10_000

#: Azure's ratio for Standard deployments: 6 requests per minute per 1,000 TPM.
REQUESTS_PER_1000_TOKENS: Final = 6

#: What Azure assumes a completion may use when a request does not say (``max_tokens``).
DEFAULT_MAX_COMPLETION_TOKENS: Final = 4096

#: Characters per token in Azure's estimate of a prompt at admission (English text).
_CHARS_PER_TOKEN: Final = 4
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

    def __post_init__(self) -> None:
        if self.tokens_per_minute <= 0 or self.requests_per_minute <= 0:
            raise ValueError("a budget needs positive tokens and requests per minute")

    def seconds(self, tokens: int) -> float:
        """How much of the timeline one request of ``tokens`` admission tokens takes."""
        return max(60.0 / self.requests_per_minute, tokens * 60.0 / self.tokens_per_minute)


def _text_length(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return sum(len(part.get("text") or "") for part in content if isinstance(part, Mapping))
    return 0


def admission_tokens(body: Mapping[str, Any]) -> int:
    """The tokens Azure counts against TPM when it admits a chat request.

    The prompt is estimated from its characters (Azure estimates it too, before
    tokenizing), and the completion counts in full: ``max_tokens`` (or
    ``max_completion_tokens``) times ``n``.
    """
    messages = body.get("messages")
    prompt = 0
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                text = _text_length(message.get("content"))
                prompt += math.ceil(text / _CHARS_PER_TOKEN) + _TOKENS_PER_MESSAGE
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
    ) -> None:
        self.budget = budget
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = -math.inf
        self.requests = 0
        """Requests admitted so far (retries included)."""
        self.tokens = 0
        """Admission tokens of those requests."""
        self.throttled = 0
        """429 answers reported by :meth:`hold_off`."""

    def reserve(self, tokens: int) -> float:
        """Take the next slot for a request of ``tokens`` admission tokens; its time."""
        with self._lock:
            slot = max(self._clock(), self._next)
            self._next = slot + self.budget.seconds(tokens)
            self.requests += 1
            self.tokens += tokens
            return slot

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
