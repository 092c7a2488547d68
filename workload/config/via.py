"""Which way the workload reaches the model: through the stack's AI Gateway, or directly.

docs/reference.md ("Authentication of the workload") states the rule: ``--via`` wins,
else ``LLMOPS_VIA``, else ``gateway`` when the stack's outputs
(``databricks_serving_endpoint``) or the cluster's environment
(``LLMOPS_GATEWAY_ENDPOINT``) name a serving endpoint, else ``direct``. An
OpenAI-compatible server (``OPENAI_BASE_URL``) is a direct choice of its own, so
it keeps the default at ``direct``.

Through the gateway the model is the serving endpoint's name and the judges'
model the judge endpoint's (``LLMOPS_GATEWAY_JUDGE_ENDPOINT``, else
``databricks_judge_serving_endpoint``, else the chat endpoint). Like every other
setting, the cluster's environment wins over the stack's outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from workload import contract

__all__ = ["VIAS", "Via", "gateway_endpoint", "gateway_judge_endpoint", "resolve_via"]

Via = Literal["gateway", "direct"]
#: The values ``--via`` and ``LLMOPS_VIA`` may take.
VIAS: Final[tuple[Via, ...]] = ("gateway", "direct")


def _named(env: Mapping[str, str], variable: str, outputs: Mapping[str, Any], output: str) -> str:
    """The variable's value, else the output's (a string), else ""."""
    from_env = (env.get(variable) or "").strip()
    if from_env:
        return from_env
    raw = outputs.get(output)
    return raw.strip() if isinstance(raw, str) else ""


def gateway_endpoint(outputs: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The chat deployment's serving endpoint: ``LLMOPS_GATEWAY_ENDPOINT``, else the output
    ``databricks_serving_endpoint``; "" when neither names one (the stack has no gateway)."""
    return _named(env, contract.ENV_GATEWAY_ENDPOINT, outputs, contract.DATABRICKS_SERVING_ENDPOINT)


def gateway_judge_endpoint(outputs: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The judge deployment's serving endpoint, else "" (the judges use the chat endpoint)."""
    return _named(
        env,
        contract.ENV_GATEWAY_JUDGE_ENDPOINT,
        outputs,
        contract.DATABRICKS_JUDGE_SERVING_ENDPOINT,
    )


def resolve_via(
    flag: str | None, outputs: Mapping[str, Any], env: Mapping[str, str], problems: list[str]
) -> Via:
    """``--via`` (wins), else ``LLMOPS_VIA``, else ``gateway`` when an endpoint is named.

    A value that is neither ``gateway`` nor ``direct`` is added to ``problems`` (named with
    where it came from) and ``direct`` is returned, so every other problem is still found.
    """
    for source, raw in (("--via", flag), (contract.ENV_VIA, env.get(contract.ENV_VIA))):
        text = (raw or "").strip().lower()
        if not text:
            continue
        if text in VIAS:
            return text
        problems.append(f"{source} = {raw!r} is not one of {', '.join(VIAS)}")
        return "direct"
    if (env.get("OPENAI_BASE_URL") or "").strip():
        return "direct"
    return "gateway" if gateway_endpoint(outputs, env) else "direct"
