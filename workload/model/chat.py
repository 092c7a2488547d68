"""The lab's cell "MLflow を使用して LLM をログする" as a function.

``mlflow.openai.autolog()``, one run, one chat completion with the lab's
prompts, ``mlflow.log_param("completion_tokens", ...)``. The client is passed
in (``workload.model.auth.make_client`` builds it, key or Entra ID, and is re-exported
here), so tests and other callers choose where the call goes. A failed call
ends the run as FAILED (the ``with`` block sees the error) and autolog keeps
the exception in the trace; the error that reaches the user names the HTTP
status and never the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from workload.config.auth_mode import AuthMode
from workload.config.context import use_experiment
from workload.config.via import Via
from workload.errors import ServiceError, first_line
from workload.model.auth import make_client, status_hint
from workload.model.gateway import GUARDRAIL_REFUSAL, gateway_hint, guardrail_refusal
from workload.model.masking import mask_secret
from workload.model.network_refusal import network_hint
from workload.model.trace_tags import PROMPT_VERSION_TAG, tag_prompt_version, tag_traces

if TYPE_CHECKING:
    import openai

    from workload.releases.registry import PromptChoice

__all__ = ["ChatResult", "make_client", "traced_chat"]


@dataclass(frozen=True)
class ChatResult:
    """What one traced call produced."""

    reply: str
    run_id: str
    trace_id: str | None
    experiment_id: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    prompt_version: str = "packaged"
    """The tag ``llmops.prompt_version``: ``<name>/<version>``, ``packaged`` or ``override``."""

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return asdict(self)


def _describe(
    err: Exception,
    secret: str,
    auth_mode: AuthMode = "key",
    *,
    via: Via = "direct",
    model: str = "",
) -> str:
    """One line for the user: the HTTP status, the service's own words and what to check
    (for the way in use: the key, or the role, ``az login`` and the service credential;
    through the gateway, ``CAN_QUERY`` on the endpoint ``model``); never the key."""
    import openai

    refused = guardrail_refusal(err) if via == "gateway" else None
    if refused is not None:
        text = f"the chat call failed with HTTP 400: {GUARDRAIL_REFUSAL} ({refused})"
    elif isinstance(err, openai.APIStatusError):
        reason = err.response.reason_phrase
        detail = ""
        body = err.body
        if isinstance(body, dict):
            inner = body.get("error", body)
            if isinstance(inner, dict):
                detail = str(inner.get("message") or inner.get("code") or "")
        text = f"the chat call failed with HTTP {err.status_code} {reason}".rstrip()
        if detail:
            text += f": {first_line(detail)}"
        gateway = gateway_hint(err.status_code, model) if via == "gateway" else ""
        hint = (
            gateway
            or network_hint(err.status_code, detail)
            or status_hint(err.status_code, auth_mode)
            or {
                404: "check the endpoint, the deployment name and the API version",
                429: "rate limit: the deployment's tokens per minute are used up; retry later "
                "or raise llmops:capacity",
            }.get(err.status_code, "")
        )
        text += f" ({hint})" if hint else ""
    elif isinstance(err, openai.APITimeoutError):
        text = "the chat call timed out, also after retries"
    elif isinstance(err, openai.APIConnectionError):
        cause = err.__cause__ or err
        reason = first_line(str(cause), limit=200)
        text = f"could not reach the service: {type(cause).__name__}"
        text += f": {reason}" if reason else ""
    elif isinstance(err, ValueError):
        # The client parses a 2xx body as JSON; anything else ends here.
        text = f"the service answered with a body that is not JSON ({type(err).__name__})"
    else:
        text = f"the chat call failed: {type(err).__name__}"
    return mask_secret(text, secret)


def traced_chat(
    client: openai.OpenAI,
    *,
    model: str,
    user_prompt: str,
    experiment: str,
    prompt: PromptChoice | None = None,
    system_prompt: str | None = None,
    secret: str = "",
    auth_mode: AuthMode = "key",
    via: Via = "direct",
) -> ChatResult:
    """Run the lab's traced call in a new MLflow run; raise ServiceError when it fails.

    The messages are ``prompt``'s (the packaged prompt when None), loaded inside the run so
    MLflow links a registered version to it, with ``user_prompt`` for ``{{prompt}}``; a
    ``system_prompt`` replaces them with the lab's two messages of that text (``override``).
    The run and its trace are tagged ``llmops.prompt_version``.

    ``secret`` is blanked out of any error text; ``auth_mode`` and ``via`` pick what a 401
    or 403 tells the user to check; the trace is tagged ``llmops.via=<via>``.

    The trace is exported in the background: call ``mlflow.flush_trace_async_logging()``
    before reading it back (MLflow also flushes when the process exits).
    """
    import mlflow
    import openai
    from mlflow.exceptions import MlflowException

    experiment_id = use_experiment(experiment)
    mlflow.openai.autolog()
    # The trace is written in the background. No flush here: each one waits about a second
    # for MLflow's export thread, which polls its queue once a second (bench/tracing_overhead.py);
    # the caller flushes once when it is done, as the chat command does.
    previous_trace = mlflow.get_last_active_trace_id()
    label = "override" if system_prompt is not None else (prompt.label if prompt else "packaged")
    try:
        with (
            mlflow.start_run() as run,
            tag_traces(via),
            tag_prompt_version(lambda: label),
        ):
            mlflow.set_tag(PROMPT_VERSION_TAG, label)
            messages, parameters = _messages(prompt, system_prompt, user_prompt)
            try:
                response = client.chat.completions.create(
                    model=model, messages=messages, **parameters
                )
            except (openai.OpenAIError, ValueError) as err:
                # Raised inside the run: MLflow ends it FAILED; autolog kept the error.
                raise ServiceError(
                    _describe(err, secret, auth_mode, via=via, model=model)
                ) from None
            reply, usage = _read(response)
            if usage is not None:
                mlflow.log_param("completion_tokens", usage["completion_tokens"])
                mlflow.log_metrics(dict(usage))
    except MlflowException as err:
        # The tracking store failed mid-run (a network blip to Databricks, say).
        raise ServiceError(
            f"MLflow could not record the run at {mlflow.get_tracking_uri()}: {first_line(err)}"
        ) from None
    trace_id = mlflow.get_last_active_trace_id()
    return ChatResult(
        reply=reply,
        run_id=run.info.run_id,
        # None when no trace was made (tracing disabled), not the previous call's.
        trace_id=trace_id if trace_id != previous_trace else None,
        experiment_id=experiment_id,
        model=model,
        prompt_tokens=usage["prompt_tokens"] if usage else None,
        completion_tokens=usage["completion_tokens"] if usage else None,
        total_tokens=usage["total_tokens"] if usage else None,
        prompt_version=label,
    )


def _messages(
    prompt: PromptChoice | None, system_prompt: str | None, user_prompt: str
) -> tuple[list[Any], dict[str, Any]]:
    """The request's messages and the prompt's request parameters (inside the run)."""
    if system_prompt is not None:
        override = [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": user_prompt},
        ]
        return override, {}
    if prompt is None:
        from workload.releases.template import packaged_template

        template = packaged_template()
    else:
        template = prompt.load()
    return list(template.messages(user_prompt)), template.request_parameters()


def _read(response: Any) -> tuple[str, dict[str, int] | None]:
    """The reply and the token counts; the client builds its objects from any JSON
    without checking it, so the shape is checked here."""
    choices = getattr(response, "choices", None)
    first = choices[0] if isinstance(choices, list) and choices else None
    message = getattr(first, "message", None)
    content = getattr(message, "content", None)
    if message is None or not (content is None or isinstance(content, str)):
        raise ServiceError("the service's answer is not a chat completion (no choices[0].message)")
    usage = getattr(response, "usage", None)
    counts = {
        name: getattr(usage, name, None)
        for name in ("prompt_tokens", "completion_tokens", "total_tokens")
    }
    if all(isinstance(count, int) for count in counts.values()):
        return content or "", cast("dict[str, int]", counts)
    return content or "", None  # a compatible server that does not count tokens
