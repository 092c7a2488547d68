"""One evaluation: every row through the traced chat call, scored by ``mlflow.genai.evaluate``.

Each row is one ``chat.completions.create`` on the autologged client (so each
row leaves the same kind of trace as the chat command, in the same
experiment, and the monitor reads both alike), paced and capped by the
client's transport (:mod:`workload.model.paced_client`). Scorers: two code scorers
(``reply_received``, ``within_completion_budget``) and, unless judges are
off, MLflow's Guidelines judges (:mod:`workload.evaluation.judges`). MLflow attaches every
score to the row's trace as an assessment.

MLflow's own pacing, retries and trace-validation call are switched off for
the evaluation (``MLFLOW_GENAI_EVAL_*`` for this process, restored after):
the transport paces by tokens as well as requests, the OpenAI SDK retries with
``Retry-After``, and a validation call would be one more request than the rows.
Scorer tracing is pinned off whatever the environment says: a scorer's trace
in the experiment would read, to the monitor, as one more chat call.

One pass rate everywhere: a yes/no scorer's rate counts its verdicts plus the
rows whose own call failed (as failed), never its judge errors, and is logged
on the run as the metric ``<scorer>/pass_rate``; MLflow's own
``<scorer>/mean`` leaves the failed rows out as well, so it differs from it
exactly when a row's call failed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from workload.config.context import use_experiment
from workload.errors import ServiceError, first_line
from workload.evaluation.dataset import ROW_KEY_TAG, EvalRow
from workload.evaluation.judges import (
    EXPECTATIONS_GUIDELINES,
    GUIDELINES,
    NO_RESPONSE,
    JudgeClient,
    guidelines_judge,
)
from workload.model.gateway import GUARDRAIL_REFUSAL, guardrail_refusal
from workload.model.masking import mask_secret
from workload.model.network_refusal import network_hint
from workload.model.paced_client import FATAL_STATUSES, RunControl, Stopped
from workload.model.trace_tags import PROMPT_VERSION_TAG, tag_prompt_version
from workload.monitoring.traces import EVAL_RUN_NAME
from workload.releases.template import ChatTemplate

if TYPE_CHECKING:
    import openai
    from mlflow.entities import Feedback, Trace
    from mlflow.genai.scorers import Scorer

    from workload.model.pacing import Pacer
    from workload.progress import Progress
    from workload.releases.registry import PromptChoice

__all__ = [
    "PASS_RATE_METRIC",
    "REPLY_RECEIVED",
    "WITHIN_BUDGET",
    "EvalPlan",
    "EvalSummary",
    "RowFailed",
    "ScorerSummary",
    "run_evaluation",
    "scorer_names",
]

#: The code scorers: the call answered with text; the answer stayed within ``max_tokens``.
REPLY_RECEIVED: Final = "reply_received"
WITHIN_BUDGET: Final = "within_completion_budget"

#: MLflow's evaluation settings for this process while the evaluation runs (see above).
_MLFLOW_ENV: Final = {
    "MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION": "true",
    "MLFLOW_GENAI_EVAL_PREDICT_RATE_LIMIT": "0",
    "MLFLOW_GENAI_EVAL_SCORER_RATE_LIMIT": "0",
    "MLFLOW_GENAI_EVAL_MAX_RETRIES": "0",
    "MLFLOW_GENAI_EVAL_ENABLE_SCORER_TRACING": "false",
}

#: The run's metric holding a scorer's pass rate (the one the table and gates use).
PASS_RATE_METRIC: Final = "{scorer}/pass_rate"


#: What to check when a direct run stops at once (401, 403, 404).
_STOP_HINT: Final = (
    "check the key, the network rules, the endpoint, the deployment names and the API version"
)


class RowFailed(Exception):
    """A row's call still failed after the client's retries; the run goes on."""


@dataclass(frozen=True)
class EvalPlan:
    """What to run, decided and validated before anything is sent."""

    experiment: str
    chat_model: str
    max_tokens: int
    concurrency: int
    guidelines: tuple[str, ...] = ()
    """``--guideline`` texts: one ``guidelines`` judge over every row."""
    judges: bool = True
    params: dict[str, str] = field(default_factory=dict)
    """Logged on the evaluation run (budgets, dataset, deployments)."""
    prompt: PromptChoice | None = None
    """The prompt version whose messages make each row's request (None: the packaged)."""


@dataclass(frozen=True)
class ScorerSummary:
    """One scorer over the run: its pass rate (yes/no scorers) or mean (numbers)."""

    name: str
    pass_rate: float | None
    mean: float | None
    n: int
    """Rows in the rate: verdicts plus the rows whose own call failed (as failed)."""
    judge_errors: int = 0
    """Rows the judge gave no verdict for (its call failed, or its answer was cut off or
    unparsable): in no rate."""
    verdicts: int = 0
    """Rows given a yes/no verdict (the rest of ``n`` failed their own call)."""


@dataclass(frozen=True)
class EvalSummary:
    """The run's result, as ``--json`` prints it (with ``passed``, decided by the gates)."""

    run_id: str
    experiment_id: str
    rows: int
    errors: int
    scorers: tuple[ScorerSummary, ...]
    requests: int
    """HTTP requests sent, rows' and judges' (retries included)."""
    throttled: int
    """429 answers received."""
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready object."""
        data = asdict(self)
        data["scorers"] = [asdict(s) for s in self.scorers]
        return data

    def scorer(self, name: str) -> ScorerSummary | None:
        """The summary of the scorer ``name``, if it ran."""
        return next((s for s in self.scorers if s.name == name), None)


def scorer_names(rows: Sequence[EvalRow], plan: EvalPlan) -> tuple[str, ...]:
    """The scorers this run will have (a gate naming any other is an input error)."""
    names = [REPLY_RECEIVED, WITHIN_BUDGET]
    if plan.judges and any(row.guidelines for row in rows):
        names.append(EXPECTATIONS_GUIDELINES)
    if plan.judges and plan.guidelines:
        names.append(GUIDELINES)
    return tuple(names)


class _Tally:
    """Every score given, by scorer, for the summary (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, list[Any]] = {}
        self.judge_errors: dict[str, int] = {}

    def record(self, name: str, feedback: Feedback) -> None:
        with self._lock:
            error = feedback.error
            if error is not None and error.error_code != NO_RESPONSE:
                self.judge_errors[name] = self.judge_errors.get(name, 0) + 1
                return
            self.values.setdefault(name, []).append(None if error is not None else feedback.value)


def _passed(value: Any) -> bool | None:
    """True/False for a yes/no or boolean score; None for a number or no value."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return value.strip().lower() == "yes"
    return None


def _summarise(
    name: str, values: list[Any], applicable: int, judge_errors: int = 0
) -> ScorerSummary:
    numbers = [
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and _passed(v) is None
    ]
    if numbers and len(numbers) == len([v for v in values if v is not None]):
        return ScorerSummary(name, None, sum(numbers) / len(numbers), len(numbers), judge_errors)
    # A yes/no scorer: every row it applies to counts but those its judge gave no verdict
    # for; a row whose own call failed (or that was never scored) counts as failed.
    counted = max(applicable - judge_errors, 0)
    passes = sum(1 for v in values if _passed(v))
    rate = passes / counted if counted else None
    verdicts = sum(1 for v in values if _passed(v) is not None)
    return ScorerSummary(name, rate, None, counted, judge_errors, verdicts)


def _chat_span_outputs(trace: Trace | None) -> dict[str, Any] | None:
    """The chat completion the row's model span returned."""
    if trace is None:
        return None
    for span in trace.data.spans:
        if span.span_type in ("CHAT_MODEL", "LLM") and isinstance(span.outputs, dict):
            return span.outputs
    return None


def _code_scorers(max_tokens: int, tally: _Tally) -> list[Scorer]:
    from mlflow.entities import AssessmentSource, AssessmentSourceType, Feedback
    from mlflow.genai.scorers import scorer

    def code(name: str) -> AssessmentSource:
        return AssessmentSource(source_type=AssessmentSourceType.CODE, source_id=name)

    def reply_received(outputs: Any) -> Feedback:
        ok = isinstance(outputs, str) and bool(outputs.strip())
        feedback = Feedback(
            name=REPLY_RECEIVED,
            value=ok,
            rationale="the model answered with text"
            if ok
            else "no reply: the call failed or the answer was empty",
            source=code(REPLY_RECEIVED),
        )
        tally.record(REPLY_RECEIVED, feedback)
        return feedback

    def within_completion_budget(outputs: Any, trace: Trace | None) -> Feedback:
        completion = _chat_span_outputs(trace) if outputs is not None else None
        usage = (completion or {}).get("usage") or {}
        choices = (completion or {}).get("choices") or [{}]
        used = usage.get("completion_tokens") if isinstance(usage, dict) else None
        reason = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
        if completion is None or not isinstance(used, int):
            ok, why = False, "no completion to measure: the call failed"
        elif reason == "length" or used > max_tokens:
            ok, why = False, f"cut off at the budget: {used} of {max_tokens} completion tokens"
        else:
            ok, why = True, f"{used} of {max_tokens} completion tokens"
        feedback = Feedback(name=WITHIN_BUDGET, value=ok, rationale=why, source=code(WITHIN_BUDGET))
        tally.record(WITHIN_BUDGET, feedback)
        return feedback

    return [
        scorer(reply_received, name=REPLY_RECEIVED),
        scorer(within_completion_budget, name=WITHIN_BUDGET),
    ]


def _describe(err: Exception, secret: str) -> str:
    """One line: the HTTP status and the service's words, never the key."""
    import openai

    refused = guardrail_refusal(err)
    if refused is not None:
        text = f"HTTP 400: {GUARDRAIL_REFUSAL} ({refused})"
    elif isinstance(err, openai.APIStatusError):
        text = f"HTTP {err.status_code}"
        body = err.body
        inner = body.get("error", body) if isinstance(body, dict) else None
        if isinstance(inner, dict) and (inner.get("message") or inner.get("code")):
            text += ": " + first_line(str(inner.get("message") or inner.get("code")), limit=200)
    elif isinstance(err, openai.APITimeoutError):
        text = "timed out, also after retries"
    elif isinstance(err, openai.APIConnectionError):
        text = f"could not reach the service ({type(err.__cause__ or err).__name__})"
    else:
        text = f"{type(err).__name__}: {first_line(str(err), limit=200)}"
    return mask_secret(text, secret)


class _Rows:
    """The predict function: one traced chat call per row; counts what failed."""

    def __init__(
        self,
        client: openai.OpenAI,
        plan: EvalPlan,
        control: RunControl,
        progress: Progress | None,
        secret: str,
    ) -> None:
        self._client = client
        self._plan = plan
        self._control = control
        self._progress = progress
        self._secret = secret
        self._lock = threading.Lock()
        self.errors = 0
        self.last_error: str | None = None
        self._template: ChatTemplate | None = None
        self._label = "packaged"
        #: The prompt version of the row this thread is calling (for its trace's tag).
        self._row = threading.local()

    def use(self, template: ChatTemplate, label: str) -> None:
        """The prompt the rows run, loaded inside the run (``llmops.prompt_version`` label)."""
        self._template, self._label = template, label

    def row_label(self) -> str:
        """The ``llmops.prompt_version`` of the row this thread called last."""
        return str(getattr(self._row, "label", self._label))

    def _messages(self, prompt: str, system_prompt: str | None) -> list[Any]:
        if system_prompt is not None or self._template is None:
            self._row.label = "override" if system_prompt is not None else self._label
            from workload.releases.template import packaged_template

            system = system_prompt or packaged_template().template[0]["content"]
            return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        self._row.label = self._label
        return list(self._template.messages(prompt))

    def _failed(self, text: str) -> RowFailed:
        with self._lock:
            self.errors += 1
            self.last_error = text
        if self._progress is not None:
            self._progress.row_done(error=True)
        return RowFailed(text)

    def __call__(self, prompt: str, system_prompt: str | None = None) -> str:
        import openai

        self._control.check()
        messages = self._messages(prompt, system_prompt)
        # The prompt's model config, but the budget is --max-tokens: the pacing counts it.
        extra = self._template.request_parameters() if self._template is not None else {}
        extra.pop("max_tokens", None)
        try:
            response = self._client.chat.completions.create(
                model=self._plan.chat_model,
                messages=messages,
                max_tokens=self._plan.max_tokens,
                **extra,
            )
        except openai.APIStatusError as err:
            if err.status_code in FATAL_STATUSES:
                self._control.stop(f"the chat call failed with {_describe(err, self._secret)}")
                raise Stopped(self._control.stopped or "") from None
            raise self._failed(_describe(err, self._secret)) from None
        except (openai.OpenAIError, ValueError) as err:
            raise self._failed(_describe(err, self._secret)) from None
        choices = response.choices or []
        reply = (choices[0].message.content or "") if choices else ""
        if self._progress is not None:
            self._progress.row_done(error=False)
        return reply


@contextlib.contextmanager
def _mlflow_settings(concurrency: int) -> Iterator[None]:
    """MLflow's evaluation settings for this run, the process's own restored after."""
    wanted = {**_MLFLOW_ENV, "MLFLOW_GENAI_EVAL_MAX_WORKERS": str(concurrency)}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _summaries(rows: Sequence[EvalRow], plan: EvalPlan, tally: _Tally) -> tuple[ScorerSummary, ...]:
    applicable = {
        REPLY_RECEIVED: len(rows),
        WITHIN_BUDGET: len(rows),
        EXPECTATIONS_GUIDELINES: sum(1 for row in rows if row.guidelines),
        GUIDELINES: len(rows),
    }
    return tuple(
        _summarise(
            name, tally.values.get(name, []), applicable[name], tally.judge_errors.get(name, 0)
        )
        for name in scorer_names(rows, plan)
    )


def run_evaluation(
    rows: Sequence[EvalRow],
    plan: EvalPlan,
    *,
    chat_client: openai.OpenAI,
    judge: JudgeClient | None,
    control: RunControl,
    progress: Progress | None = None,
    secret: str = "",
    pacers: Sequence[Pacer] = (),
    stop_hint: str = _STOP_HINT,
) -> EvalSummary:
    """Evaluate ``rows``; raise ServiceError when the run was stopped (401/403/404).

    ``chat_client`` and ``judge.client`` are paced clients; ``pacers`` are their
    pacers (for the request and 429 counts); ``stop_hint`` says what to check when
    the run stops (the gateway's differs: CAN_QUERY, the Databricks credential).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    experiment_id = use_experiment(plan.experiment)
    mlflow.openai.autolog()  # the lab's cell; evaluate keeps it on for the rows
    tally = _Tally()
    scorers = _code_scorers(plan.max_tokens, tally)
    if plan.judges and judge is not None:
        if any(row.guidelines for row in rows):
            scorers.append(guidelines_judge(judge, guidelines=None, record=tally.record))
        if plan.guidelines:
            scorers.append(guidelines_judge(judge, guidelines=plan.guidelines, record=tally.record))
    predict = _Rows(chat_client, plan, control, progress, secret)
    # Each row's trace is tagged with the row's key, so compare pairs rows as the dataset had them.
    data = [{**row.as_record(), "tags": {ROW_KEY_TAG: row.key}} for row in rows]
    try:
        with (
            _mlflow_settings(plan.concurrency),
            # Nested under a run the caller (a notebook) has open; else a run of its own.
            mlflow.start_run(run_name=EVAL_RUN_NAME, nested=mlflow.active_run() is not None) as run,
            # MLflow prints its summary to stdout; stdout is for the table or the JSON.
            contextlib.redirect_stdout(sys.stderr),
            tag_prompt_version(predict.row_label),
        ):
            mlflow.log_params(plan.params)
            if plan.prompt is not None:
                # Loaded inside the run: MLflow links the registered version to it.
                predict.use(plan.prompt.load(), plan.prompt.label)
                mlflow.set_tag(PROMPT_VERSION_TAG, plan.prompt.label)
            mlflow.genai.evaluate(data=data, predict_fn=predict, scorers=scorers)
            summaries = _summaries(rows, plan, tally)
            mlflow.log_metrics(
                {
                    PASS_RATE_METRIC.format(scorer=s.name): s.pass_rate
                    for s in summaries
                    if s.pass_rate is not None
                }
            )
    except Stopped as err:  # the run ended FAILED as the exception left it
        reason = control.stopped or str(err)
        hint = network_hint(403, reason) or stop_hint  # a private account's refusal says so
        raise ServiceError(f"stopped at once: {reason} ({hint})") from None
    except MlflowException as err:
        raise ServiceError(
            f"MLflow could not record the evaluation at {mlflow.get_tracking_uri()}: "
            f"{first_line(err)}"
        ) from None
    finally:
        mlflow.flush_trace_async_logging()
    distinct = list({id(p): p for p in pacers}.values())
    return EvalSummary(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        rows=len(rows),
        errors=predict.errors,
        scorers=summaries,
        requests=sum(p.requests for p in distinct),
        throttled=sum(p.throttled for p in distinct),
        last_error=predict.last_error,
    )
