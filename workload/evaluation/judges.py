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
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from workload.contract import SECRET_MASK
from workload.errors import first_line
from workload.model.paced_client import FATAL_STATUSES, RunControl, Stopped

if TYPE_CHECKING:
    import openai
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import Scorer

__all__ = [
    "EXPECTATIONS_GUIDELINES",
    "GUIDELINES",
    "JudgeClient",
    "guidelines_judge",
    "parse_verdict",
]

#: MLflow's names: the Guidelines scorer, and ExpectationsGuidelines (each row's guidelines).
GUIDELINES: Final = "guidelines"
EXPECTATIONS_GUIDELINES: Final = "expectations_guidelines"

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

    def ask(self, prompt: str) -> str:
        """MLflow's judge prompt as one user message; the answer's text."""
        import openai
        from openai.types.chat import ChatCompletion

        self.control.check()
        try:
            completion = self.client.post(
                "/chat/completions",
                body={
                    "model": self.deployment,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": self.max_tokens,
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
        return (choices[0].message.content or "") if choices else ""


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
                error_code="NO_RESPONSE", error_message="the row's call failed; nothing to judge"
            ),
            metadata=metadata,
        )
    prompt = get_prompt(
        list(guidelines),
        {"request": parse_inputs_to_str(inputs), "response": parse_outputs_to_str(outputs)},
    )
    try:
        result, rationale = parse_verdict(judge.ask(prompt))
    except Stopped:
        raise
    except Exception as err:
        message = first_line(err)
        if judge.secret:
            message = message.replace(judge.secret, SECRET_MASK)
        return Feedback(
            name=name,
            source=source,
            error=AssessmentError(error_code="JUDGE_FAILED", error_message=message[:500]),
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
