"""Calling the model through the stack's Databricks serving endpoint (AI Gateway in front).

A serving endpoint speaks the OpenAI chat protocol: the client's base URL is
``<workspace>/serving-endpoints`` and the model is the endpoint's name
(Microsoft Learn, Azure Databricks "Query chat models", read 2026-12-05). The
caller signs in with its own Databricks identity, never with the Azure key, which only the endpoint
reads from its secret.

The bearer token is Databricks' unified authentication (``databricks-sdk``:
``DATABRICKS_TOKEN``, ``az login``, OAuth, a cluster's own identity), asked for
through ``Config.authenticate()``, the SDK's header factory, before each request
(:func:`bearer_provider`): the OpenAI SDK calls a callable ``api_key`` once per
attempt, and keeps that callable when a client is copied (the eval swaps the HTTP
client of every client it makes), so an OAuth or Entra token is renewed by the SDK
that issued it, and no token code is written here. The SDK's own
``get_open_ai_client()`` does the same with an ``httpx`` auth hook, but it is
deprecated, fixes the HTTP client (the eval's paced transport could not be put in)
and needs ``httpx``, which this environment does not ship.

What a refusal means differs from Azure's: a 403 is a caller without
``CAN_QUERY`` on the endpoint, a 429 the gateway's per-user or per-endpoint
limit, and a 400 naming a guardrail a request the gateway's guardrails blocked
(:func:`guardrail_refusal`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from workload import contract
from workload.errors import ServiceError, SettingsError, first_line

if TYPE_CHECKING:
    from workload.config.settings import ChatSettings

__all__ = [
    "DATABRICKS_CHECKS",
    "GUARDRAIL_REFUSAL",
    "bearer_provider",
    "gateway_base_url",
    "gateway_hint",
    "guardrail_refusal",
]

#: What to check when no Databricks credential is found or the workspace refuses it.
DATABRICKS_CHECKS: Final = (
    "set DATABRICKS_TOKEN (a personal access token of the workspace), or sign in with "
    "`az login` (or `databricks auth login`) to the workspace's tenant; on a cluster the "
    "job's own identity is used"
)

#: The words every guardrail refusal carries, in chat's message and in eval's row error.
GUARDRAIL_REFUSAL: Final = "the gateway's guardrails refused it"


def gateway_base_url(host: str) -> str:
    """The OpenAI base URL of a workspace's serving endpoints."""
    return host.rstrip("/") + "/serving-endpoints"


def _bearer(headers: dict[str, str], auth_type: str) -> str:
    """The token of the ``Authorization: Bearer`` header the SDK made."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SettingsError(
            f"the Databricks credential ({auth_type} auth) gives no bearer token, which "
            f"serving endpoints need: {DATABRICKS_CHECKS}"
        )
    return token.strip()


def bearer_provider(settings: ChatSettings) -> tuple[str, Callable[[], str]]:
    """The workspace's URL and a callable giving a fresh bearer token, checked once now.

    Raises :class:`SettingsError` (exit 2, nothing sent to the model) when the SDK finds
    no credential; a renewal that fails later raises :class:`ServiceError` from inside
    the client's call (exit 1).
    """
    from databricks.sdk.core import Config

    kwargs: dict[str, Any] = {"host": settings.endpoint} if settings.endpoint else {}
    try:
        config = Config(**kwargs)
        token = _bearer(config.authenticate(), str(config.auth_type))
    except SettingsError:
        raise
    except Exception as err:  # ValueError from the SDK's credential chain, and kin
        where = settings.endpoint or "this cluster's workspace"
        raise SettingsError(
            f"no Databricks credential for {where} ({first_line(err)[:200]}); {DATABRICKS_CHECKS}"
        ) from None
    host = str(config.host or settings.endpoint)
    auth_type = str(config.auth_type)

    def fresh() -> str:
        # Called before every attempt; the SDK caches and renews its token itself.
        try:
            return _bearer(config.authenticate(), auth_type)
        except Exception as err:
            raise ServiceError(
                f"the Databricks credential ({auth_type} auth) could not be renewed "
                f"({first_line(err)[:200]}); {DATABRICKS_CHECKS}"
            ) from None

    del token  # checked only: each request asks the SDK again
    return host, fresh


def gateway_hint(status: int, endpoint: str) -> str:
    """What to check after a 401, 403, 404 or 429 from a serving endpoint ("" if none)."""
    hints = {
        401: f"the workspace refused the Databricks credential: {DATABRICKS_CHECKS}",
        403: f"check that you, or the job's identity, have CAN_QUERY on serving endpoint "
        f"{endpoint!r} (the stack grants it to the workspace's users group: are you a user "
        "of this workspace?), and that the credential is for this workspace",
        404: f"check that serving endpoint {endpoint!r} exists in this workspace (the "
        f"stack's {contract.DATABRICKS_SERVING_ENDPOINT}; `pulumi up` with llmops:gateway "
        "true creates it), or use --via direct",
        429: "the gateway's rate limit (yours, or the endpoint's) is used up; retry later",
    }
    return hints.get(status, "")


def guardrail_refusal(err: BaseException) -> str | None:
    """The service's words when ``err`` is the gateway's guardrails blocking a request.

    Databricks answers a blocked request with HTTP 400 and a message naming the guardrail
    (as in "Request blocked by input guardrail '<name>'", databricks/unity-gateway issue
    #66, read 2026-12-05); any 400 whose message names a guardrail counts.
    """
    import openai

    if not isinstance(err, openai.APIStatusError) or err.status_code != 400:
        return None
    body = err.body
    inner = body.get("error", body) if isinstance(body, dict) else None
    said = ""
    if isinstance(inner, dict):
        said = str(inner.get("message") or inner.get("error_code") or inner.get("code") or "")
    elif isinstance(inner, str):
        said = inner
    said = said or str(err.message)
    return first_line(said, limit=200) if "guardrail" in said.lower() else None
