"""LLM judges: MLflow's Guidelines judge, asked through the project's paced client.

MLflow's built-in ``Guidelines`` and ``ExpectationsGuidelines`` scorers reach
Azure OpenAI with a key only, over their own HTTP client, with retries that
ignore ``Retry-After`` and outside any pacing, so they would spend the
deployment's budget behind the pacer's back. These judges keep MLflow's own
judge: the same prompt (``mlflow.genai.judges.prompts.guidelines``, filled in
with the request and the response as MLflow fills it), the same answer format
(``{"result": "yes"|"no", "rationale": "..."}``), the same scorer names and a
``Feedback`` from an ``LLM_JUDGE`` source; only the call goes through
:mod:`workload.model.paced_client`, with the chat command's authentication.

The call is ``client.post("/chat/completions", ...)``, the SDK's plain request
path, which ``mlflow.openai.autolog()`` does not patch: a judge's call leaves
no trace in the experiment (the monitor would count it as a chat call), while
the rows, in other threads of the same evaluation, keep theirs. Autolog is
never switched off, which would be process-wide.

A judge that cannot give a verdict is a judge error (an assessment with an
error), never a ``no``: a call that still fails after the client's retries, an
answer that is not MLflow's judge format, and an answer cut off at
``max_tokens`` (``finish_reason`` ``length``: MLflow's prompt asks for a
rationale before the result, so a cut answer is invalid JSON), which is first
asked again once with :data:`RETRY_ROOM` times the room.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from workload.errors import first_line
from workload.model.masking import mask_secret
from workload.model.paced_client import FATAL_STATUSES, RunControl, Stopped

if TYPE_CHECKING:
    import openai
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import Scorer

__all__ = [
    "EXPECTATIONS_GUIDELINES",
    "GUIDELINES",
    "JUDGE_FAILED",
    "NO_RESPONSE",
    "RETRY_ROOM",
    "JudgeClient",
    "guidelines_judge",
    "parse_verdict",
]

#: MLflow's names: the Guidelines scorer, and ExpectationsGuidelines (each row's guidelines).
GUIDELINES: Final = "guidelines"
EXPECTATIONS_GUIDELINES: Final = "expectations_guidelines"

#: Error codes of a judge's assessment: the judge gave no verdict; the row's own call failed.
JUDGE_FAILED: Final = "JUDGE_FAILED"
NO_RESPONSE: Final = "NO_RESPONSE"

#: How many times the room a judge answer cut off at its ``max_tokens`` gets on its retry.
RETRY_ROOM: Final = 4

_FENCE: Final = re.compile(r"^```(?:json)?\s*|\s*```$")


@dataclass(frozen=True)
class JudgeClient:
    """Where a judge's question goes: a paced client, its deployment, the run's control."""

    client: openai.OpenAI
    deployment: str
    control: RunControl
    max_tokens: int
    secret: str = ""
    """Blanked out of any error text kept in an assessment."""
    on_answer: Callable[[int], None] | None = None
    """Told the tokens each answer used (for progress)."""

    @property
    def source_id(self) -> str:
        """The judge's model, as MLflow names one (``azure:/<deployment>``)."""
        return f"azure:/{self.deployment}"

    def ask(self, prompt: str, max_tokens: int | None = None) -> tuple[str, str | None]:
        """MLflow's judge prompt as one user message; the answer's text and finish reason."""
        import openai
        from openai.types.chat import ChatCompletion

        self.control.check()
        try:
            completion = self.client.post(
                "/chat/completions",
                body={
                    "model": self.deployment,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_tokens or self.max_tokens,
                    "temperature": 0,
                    "response_format": {"type": "json_object"},
                },
                cast_to=ChatCompletion,
            )
        except openai.APIStatusError as err:
            if err.status_code in FATAL_STATUSES:
                self.control.stop(
                    f"the judge deployment {self.deployment!r} answered HTTP {err.status_code}"
                )
                raise Stopped(self.control.stopped or "") from None
            raise
        if self.on_answer is not None and completion.usage is not None:
            self.on_answer(completion.usage.total_tokens)
        choices = completion.choices
        if not choices:
            return "", None
        return choices[0].message.content or "", choices[0].finish_reason

    def verdict(self, prompt: str) -> tuple[str, str]:
        """The judge's ``(result, rationale)``; ValueError when it gives none.

        An answer cut off at the budget is asked again once with more room.
        """
        text, reason = self.ask(prompt)
        if reason == "length":
            room = self.max_tokens * RETRY_ROOM
            text, reason = self.ask(prompt, max_tokens=room)
            if reason == "length":
                raise ValueError(
                    f"the judge's answer was cut off at max_tokens {self.max_tokens}, "
                    f"and again at {room} (raise --judge-max-tokens)"
                )
        return parse_verdict(text)


def parse_verdict(text: str) -> tuple[str, str]:
    """``("yes"|"no", rationale)`` from MLflow's judge answer; ValueError when it is not one."""
    cleaned = _FENCE.sub("", text.strip())
    try:
        answer = json.loads(cleaned)
    except ValueError:
        raise ValueError(f"the judge's answer is not JSON: {text[:200]!r}") from None
    if not isinstance(answer, dict):
        raise ValueError("the judge's answer is not a JSON object")
    result = str(answer.get("result", "")).strip().lower()
    if result not in ("yes", "no"):
        raise ValueError(f'the judge\'s "result" is {answer.get("result")!r}, not "yes" or "no"')
    return result, str(answer.get("rationale") or "")


def _feedback(
    name: str, judge: JudgeClient, guidelines: Sequence[str], inputs: Any, outputs: Any
) -> Feedback:
    from mlflow.entities import AssessmentError, AssessmentSource, AssessmentSourceType, Feedback
    from mlflow.genai.judges.prompts.guidelines import get_prompt
    from mlflow.genai.utils.trace_utils import parse_inputs_to_str, parse_outputs_to_str

    source = AssessmentSource(source_type=AssessmentSourceType.LLM_JUDGE, source_id=judge.source_id)
    metadata = {"guideline": "\n".join(guidelines)}
    if outputs is None:
        # The row's own call failed: there is nothing to judge, and nobody is asked.
        return Feedback(
            name=name,
            source=source,
            error=AssessmentError(
                error_code=NO_RESPONSE, error_message="the row's call failed; nothing to judge"
            ),
            metadata=metadata,
        )
    prompt = get_prompt(
        list(guidelines),
        {"request": parse_inputs_to_str(inputs), "response": parse_outputs_to_str(outputs)},
    )
    try:
        result, rationale = judge.verdict(prompt)
    except Stopped:
        raise
    except Exception as err:
        message = mask_secret(first_line(err), judge.secret)
        return Feedback(
            name=name,
            source=source,
            error=AssessmentError(error_code=JUDGE_FAILED, error_message=message[:500]),
            metadata=metadata,
        )
    return Feedback(name=name, value=result, rationale=rationale, source=source, metadata=metadata)


def guidelines_judge(
    judge: JudgeClient,
    *,
    guidelines: Sequence[str] | None,
    record: Callable[[str, Feedback], None],
) -> Scorer:
    """MLflow's Guidelines judge on ``guidelines`` (scorer ``guidelines``), or, with None,
    its ExpectationsGuidelines judge on each row's own (scorer ``expectations_guidelines``).

    ``record`` sees every verdict (for the pass rates); a row without guidelines of
    its own gets no verdict from the expectations judge.
    """
    from mlflow.genai.scorers import scorer

    name = EXPECTATIONS_GUIDELINES if guidelines is None else GUIDELINES
    fixed = None if guidelines is None else tuple(guidelines)

    def judge_row(
        inputs: dict[str, Any], outputs: Any, expectations: dict[str, Any] | None
    ) -> Feedback | None:
        wanted: Sequence[str] | None = fixed
        if wanted is None:
            own = (expectations or {}).get("guidelines")
            wanted = [own] if isinstance(own, str) else own
            if not wanted:
                return None
        feedback = _feedback(name, judge, list(wanted), inputs, outputs)
        record(name, feedback)
        return feedback

    judge_row.__name__ = name
    # No scorer timeout: a judge may wait its turn in the pacer longer than MLflow's 300 s.
    return scorer(judge_row, name=name, timeout=0)
