"""An experiment's traces, oldest to newest, as the numbers the drift monitor compares.

Traces are read with MLflow's own query API (``MlflowClient.search_traces``),
so any tracking store works: a local sqlite file, a tracking server, or
``databricks``. They are paged through in time order and only as many are
loaded as the two windows need. The client is passed in; MLflow itself is
imported only when traces are read, so this module stays cheap to import.

Per trace: latency, prompt/completion/total tokens, response length in
characters, and whether the trace ended in error. Latency is the trace's
duration less the time its spans say they waited for our own rate limiter
(:data:`PACING_WAIT_MS`, which the eval's paced client records): the service's
time, so traces of paced and unpaced calls compare alike. Token counts come from the
trace's own token-usage record (the ``mlflow.trace.tokenUsage`` metadata MLflow
aggregates from the spans), else from the chat spans' ``mlflow.chat.tokenUsage``
attributes (what ``mlflow.openai.autolog()`` sets); a trace with neither has
them missing (None), never zero.

And every assessment the trace carries (the eval's scorers and judges, a
reviewer's feedback): the latest valid feedback of each name, a yes/no or
boolean verdict as a bool, a number as a float; expectations, errors and other
values are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from workload.errors import (
    InsufficientDataError,
    ServiceError,
    TrackingStoreError,
    WorkloadError,
    first_line,
)
from workload.model.trace_tags import PROMPT_VERSION_TAG

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Span, Trace

__all__ = [
    "EVAL_RUN_NAME",
    "PACING_WAIT_MS",
    "EvalWindows",
    "TraceRecord",
    "Windows",
    "connect",
    "load_eval_windows",
    "load_windows",
    "record_from_trace",
]

#: Span attribute: milliseconds the call waited, inside its span, for a place among the
#: requests in flight and for its pacing slot (retries added up); not the service's time.
PACING_WAIT_MS: Final = "llmops.pacing_wait_ms"

#: Traces asked for per request; MLflow's own default page size.
PAGE_SIZE: Final = 100

#: Span types that stand for a model call (``mlflow.entities.SpanType``).
_MODEL_SPAN_TYPES: Final = frozenset({"CHAT_MODEL", "LLM"})

#: Keys of a token-usage record (``mlflow.tracing.constant.TokenUsageKey``).
_INPUT, _OUTPUT, _TOTAL = "input_tokens", "output_tokens", "total_tokens"

Order = Literal["ASC", "DESC"]


@dataclass(frozen=True)
class TraceRecord:
    """The numbers of one finished trace; None means the trace does not say."""

    trace_id: str
    timestamp_ms: int
    """When the trace started, in milliseconds since the epoch."""
    latency_ms: float | None
    """How long the trace took, less its pacing waits; only for traces that succeeded."""
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    response_chars: int | None
    """Length of the model's reply in characters."""
    error: bool
    """The trace ended in error (state ERROR)."""
    assessments: Mapping[str, bool | float] = field(default_factory=dict)
    """Feedback by name: verdicts (yes/no, booleans) as bools, numbers as floats."""
    judge_errors: frozenset[str] = frozenset()
    """Judges (by scorer name) that gave this trace no verdict: their call failed, or their
    answer was cut off or unparsable. A row whose own call failed is not one."""
    prompt_version: str | None = None
    """The trace's tag ``llmops.prompt_version`` (None: a trace made before versions)."""


@dataclass(frozen=True)
class Windows:
    """The two windows of an experiment's traces, each oldest first."""

    experiment_id: str
    experiment_name: str
    baseline: tuple[TraceRecord, ...]
    recent: tuple[TraceRecord, ...]


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _usage(trace: Trace) -> dict[str, Any] | None:
    """The trace's token-usage record, else the sum of its model spans' usage attributes."""
    try:
        recorded = trace.info.token_usage
    except ValueError:  # not JSON: treat as absent
        recorded = None
    if isinstance(recorded, dict):
        return recorded
    from mlflow.tracing.constant import SpanAttributeKey

    found = [
        usage
        for span in trace.data.spans
        if isinstance(usage := span.get_attribute(SpanAttributeKey.CHAT_USAGE), dict)
    ]
    if not found:
        return None
    total: dict[str, Any] = {}
    for key in (_INPUT, _OUTPUT, _TOTAL):
        values = [_int(usage.get(key)) for usage in found]
        total[key] = None if None in values else sum(v for v in values if v is not None)
    return total


def _reply(outputs: Any) -> str | None:
    """The reply text in a chat completion (as a dict or its JSON), or a plain string output."""
    if isinstance(outputs, str):
        try:
            parsed = json.loads(outputs)
        except ValueError:
            return outputs
        if isinstance(parsed, dict):
            return _reply(parsed)
        return parsed if isinstance(parsed, str) else outputs
    if isinstance(outputs, dict):
        choices = outputs.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            first = choices[0]
            message = first.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                return str(message["content"])
            if isinstance(first.get("text"), str):  # the legacy completions API
                return str(first["text"])
    return None


def _verdict(value: Any) -> bool | float | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return value.strip().lower() == "yes"
    return None


def _assessments(trace: Trace) -> dict[str, bool | float]:
    """The latest valid feedback of each name that is a verdict or a number."""
    from mlflow.entities import Feedback

    latest: dict[str, tuple[int, bool | float]] = {}
    for assessment in getattr(trace.info, "assessments", None) or []:
        if not isinstance(assessment, Feedback) or assessment.valid is False:
            continue
        if assessment.error is not None:
            continue
        value = _verdict(assessment.value)
        if value is None:
            continue
        when = assessment.last_update_time_ms or assessment.create_time_ms or 0
        if assessment.name not in latest or when >= latest[assessment.name][0]:
            latest[assessment.name] = (when, value)
    return {name: value for name, (_, value) in latest.items()}


#: A judge assessment's error code when the row's own call failed (nothing was judged).
_NO_RESPONSE: Final = "NO_RESPONSE"


def _judge_errors(trace: Trace) -> frozenset[str]:
    """The scorers whose latest feedback on ``trace`` is a judge's error."""
    from mlflow.entities import Feedback

    latest: dict[str, tuple[int, bool]] = {}
    for assessment in getattr(trace.info, "assessments", None) or []:
        if not isinstance(assessment, Feedback) or assessment.valid is False:
            continue
        source = getattr(assessment.source, "source_type", None)
        error = assessment.error
        failed = (
            error is not None
            and str(source) == "LLM_JUDGE"
            and getattr(error, "error_code", None) != _NO_RESPONSE
        )
        when = assessment.last_update_time_ms or assessment.create_time_ms or 0
        if assessment.name not in latest or when >= latest[assessment.name][0]:
            latest[assessment.name] = (when, failed)
    return frozenset(name for name, (_, failed) in latest.items() if failed)


def _model_spans(trace: Trace) -> list[Span]:
    spans = [span for span in trace.data.spans if span.span_type in _MODEL_SPAN_TYPES]
    return sorted(spans, key=lambda span: span.start_time_ns or 0)


def _pacing_wait_ms(trace: Trace) -> float:
    """The milliseconds the trace's spans waited for our own rate limiter."""
    waits = (span.get_attribute(PACING_WAIT_MS) for span in trace.data.spans)
    return sum(
        float(wait)
        for wait in waits
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0
    )


def _latency_ms(trace: Trace, error: bool) -> float | None:
    duration = trace.info.execution_duration
    if duration is None or error:
        return None
    return max(float(duration) - _pacing_wait_ms(trace), 0.0)


def record_from_trace(trace: Trace) -> TraceRecord:
    """The numbers of one finished trace (state OK or ERROR)."""
    info = trace.info
    error = str(info.state) == "ERROR"
    usage = _usage(trace) or {}
    prompt, completion = _int(usage.get(_INPUT)), _int(usage.get(_OUTPUT))
    total = _int(usage.get(_TOTAL))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    reply = None
    if not error:
        # The last model call's answer is the reply; a trace without a chat span that says
        # (a function traced by hand, say) falls back to what the trace as a whole returned.
        for span in reversed(_model_spans(trace)):
            if (reply := _reply(span.outputs)) is not None:
                break
        else:
            reply = _reply(trace.data.response)
    return TraceRecord(
        trace_id=info.trace_id,
        timestamp_ms=int(info.request_time),
        latency_ms=_latency_ms(trace, error),
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        response_chars=len(reply) if reply is not None else None,
        error=error,
        assessments=_assessments(trace),
        judge_errors=_judge_errors(trace),
        prompt_version=(info.tags or {}).get(PROMPT_VERSION_TAG),
    )


def _masked(uri: str, text: str) -> str:
    """``text`` without the user name and password the store's ``uri`` may hold."""
    netloc = urlsplit(uri).netloc
    if "@" not in netloc:
        return text
    return text.replace(netloc.rpartition("@")[0] + "@", "***@")


def _where(client: MlflowClient) -> str:
    """The store's URI, for a message."""
    return _masked(str(client.tracking_uri), str(client.tracking_uri))


#: MLflow's error codes for a store that refused the call or could not answer: the service
#: failed (exit 1), as docs/reference.md says; anything else is the settings' fault (exit 2).
_SERVICE_FAILED: Final = frozenset(
    {"UNAUTHENTICATED", "PERMISSION_DENIED", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
)


def _store_error(client: MlflowClient, err: Exception) -> WorkloadError:
    # MLflow's own message repeats the URL it called, credentials included.
    text = (
        f"cannot read traces from the MLflow tracking store at {_where(client)}: "
        f"{first_line(_masked(str(client.tracking_uri), str(err))) or type(err).__name__}"
    )
    if getattr(err, "error_code", None) in _SERVICE_FAILED:
        return ServiceError(text)
    return TrackingStoreError(text)


def _sqlite_file_exists(uri: str) -> None:
    """A ``sqlite:///`` store the monitor reads must exist already: MLflow would create an
    empty one for a mistyped path, and the monitor would then find no experiment."""
    if not uri.startswith("sqlite:///"):
        return
    raw = uri.removeprefix("sqlite:///").partition("?")[0]
    if raw in ("", ":memory:") or Path(raw).is_file():
        return
    path = Path(raw)
    raise TrackingStoreError(
        f"no MLflow store at {path} (MLFLOW_TRACKING_URI={uri}): check the path; "
        "`chat` and `eval` create the store where they first write"
    )


def connect(tracking_uri: str | None = None) -> MlflowClient:
    """A client of ``tracking_uri``, else of MLflow's own choice (``MLFLOW_TRACKING_URI``)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    _sqlite_file_exists(tracking_uri or mlflow.get_tracking_uri())
    try:
        return mlflow.MlflowClient(tracking_uri=tracking_uri)
    except MlflowException as err:
        uri = tracking_uri or mlflow.get_tracking_uri()
        reason = first_line(_masked(uri, str(err))) or type(err).__name__
        raise TrackingStoreError(f"cannot use the MLflow tracking store: {reason}") from None


#: The tag MLflow puts on a trace a scorer made (``TraceTagKey.SOURCE_SCORER_NAME``).
SCORER_TRACE_TAG: Final = "mlflow.trace.sourceScorer"


def _is_scorer_trace(trace: Trace) -> bool:
    """A trace MLflow's evaluation made of a scorer's run, not of a chat call."""
    return SCORER_TRACE_TAG in (trace.info.tags or {})


def _records(
    client: MlflowClient, experiment_id: str, order: Order, limit: int | None, page_size: int
) -> Iterator[TraceRecord]:
    """Finished traces in time order, page by page, stopping after ``limit`` of them."""
    from mlflow.exceptions import MlflowException

    token: str | None = None
    taken = 0
    while limit is None or taken < limit:
        wanted = page_size if limit is None else min(page_size, limit - taken)
        try:
            page = client.search_traces(
                locations=[experiment_id],
                max_results=wanted,
                order_by=[f"timestamp_ms {order}"],
                page_token=token,
            )
        except MlflowException as err:
            raise _store_error(client, err) from None
        for trace in page:
            # A trace still being written has no end yet; it joins a later check. A
            # scorer's own trace (MLflow tags it when scorer tracing is on) is no chat call.
            if str(trace.info.state) in ("OK", "ERROR") and not _is_scorer_trace(trace):
                taken += 1
                yield record_from_trace(trace)
                if limit is not None and taken >= limit:
                    return
        token = page.token
        if not token:
            return


def _experiment_id(client: MlflowClient, name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        experiment = client.get_experiment_by_name(name)
    except MlflowException as err:
        raise _store_error(client, err) from None
    if experiment is None:
        raise TrackingStoreError(
            f"no MLflow experiment named {name!r} at {_where(client)}: pass --experiment "
            "or set MLFLOW_EXPERIMENT_NAME (and MLFLOW_TRACKING_URI for the store)"
        )
    return str(experiment.experiment_id)


def load_windows(
    client: MlflowClient,
    experiment: str,
    *,
    baseline: int | None = None,
    recent: int | None = None,
    minimum: int = 1,
    page_size: int = PAGE_SIZE,
) -> Windows:
    """The experiment's oldest ``baseline`` and newest ``recent`` finished traces.

    With both counts given, only those traces are read: the oldest from one end,
    the newest from the other. With one given, the other window is every trace
    on the far side of it; with neither, the older half against the newer half
    (the middle trace of an odd count sits out). Raises InsufficientDataError when
    a window would hold fewer than ``minimum`` traces or the two would overlap.
    ``page_size`` traces are asked for per request.
    """
    experiment_id = _experiment_id(client, experiment)
    if baseline is not None and recent is not None:
        old = list(_records(client, experiment_id, "ASC", baseline, page_size))
        new = list(_records(client, experiment_id, "DESC", recent, page_size))[::-1]
        available = len({r.trace_id for r in old} | {r.trace_id for r in new})
        if len(old) < baseline or len(new) < recent or available < baseline + recent:
            raise InsufficientDataError(
                f"experiment {experiment!r} has {available} finished traces; --baseline "
                f"{baseline} and --recent {recent} need {baseline + recent}"
            )
    else:
        everything = list(_records(client, experiment_id, "ASC", None, page_size))
        count = len(everything)
        # What the windows asked for need: a given count, else the floor, in each window.
        needed = max(baseline or 0, minimum) + max(recent or 0, minimum)
        if baseline is None and recent is None:
            baseline = recent = count // 2
        elif baseline is None:
            baseline = max(count - (recent or 0), 0)
        else:
            recent = max(count - baseline, 0)
        assert recent is not None
        if baseline + recent > count:
            raise InsufficientDataError(
                f"experiment {experiment!r} has {count} finished traces; "
                f"the windows need {baseline + recent}"
            )
        old, new = everything[:baseline], everything[count - recent :]
        if min(len(old), len(new)) < minimum:
            raise InsufficientDataError(
                f"too few traces to compare in experiment {experiment!r}: it has {count} "
                f"finished trace{'' if count == 1 else 's'}, and the windows need {needed} "
                f"(at least {minimum} in each; let the chat command record more traces first)"
            )
    if min(len(old), len(new)) < minimum:
        raise InsufficientDataError(
            f"too few traces to compare in experiment {experiment!r}: baseline {len(old)}, "
            f"recent {len(new)}; each window needs at least {minimum}"
        )
    return Windows(experiment_id, experiment, tuple(old), tuple(new))


#: The name ``workload eval`` gives its runs.
EVAL_RUN_NAME: Final = "workload-eval"


@dataclass(frozen=True)
class EvalWindows:
    """The verdicts' windows: the traces of two whole eval runs of one dataset."""

    dataset: str
    baseline_run: str
    recent_run: str
    baseline: tuple[TraceRecord, ...]
    recent: tuple[TraceRecord, ...]


def _run_records(client: MlflowClient, experiment_id: str, run_id: str) -> tuple[TraceRecord, ...]:
    records: list[TraceRecord] = []
    token: str | None = None
    while True:
        page = client.search_traces(
            locations=[experiment_id], run_id=run_id, max_results=PAGE_SIZE, page_token=token
        )
        records.extend(
            record_from_trace(trace)
            for trace in page
            if str(trace.info.state) in ("OK", "ERROR") and not _is_scorer_trace(trace)
        )
        token = page.token
        if not token:
            break
    return tuple(sorted(records, key=lambda r: r.timestamp_ms))


def load_eval_windows(client: MlflowClient, experiment_id: str) -> EvalWindows | None:
    """The newest finished eval run and the one before it of the same dataset, or None.

    A judge's pass rate is a property of a dataset: windows of the last N traces would
    mix eval runs of different datasets (and cut runs in half), so the verdicts are
    compared between whole runs of the newest run's dataset (the run's ``dataset``
    parameter) instead.
    """
    from mlflow.exceptions import MlflowException

    try:
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"attributes.run_name = '{EVAL_RUN_NAME}' "
            "and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=200,
        )
    except MlflowException as err:
        raise _store_error(client, err) from None
    if not runs:
        return None
    newest = runs[0]
    dataset = newest.data.params.get("dataset")
    previous = next((r for r in runs[1:] if r.data.params.get("dataset") == dataset), None)
    if dataset is None or previous is None:
        return None
    try:
        baseline = _run_records(client, experiment_id, previous.info.run_id)
        recent = _run_records(client, experiment_id, newest.info.run_id)
    except MlflowException as err:
        raise _store_error(client, err) from None
    return EvalWindows(dataset, previous.info.run_id, newest.info.run_id, baseline, recent)
