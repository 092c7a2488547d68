"""How the workload authenticates to Azure OpenAI: an API key, or Entra ID (keyless).

docs/keyless.md ("Where the token comes from") states the rules; they live
here, once, for every command that calls the model (``chat``, ``eval`` and its
judges):

- The mode is ``LLMOPS_AUTH_MODE`` when set (it wins), else the stack output
  ``openai_auth_mode``, else ``key`` (the lab).
- Key mode sends the key (``AZURE_OPENAI_API_KEY``, else the output
  ``openai_api_key``) in the ``api-key`` header.
- Entra mode needs no key and never sends one. The bearer token comes from
  ``AZURE_OPENAI_AD_TOKEN`` when set; else, on a Databricks cluster, from the
  Unity Catalog service credential named by ``LLMOPS_SERVICE_CREDENTIAL``
  (``dbutils.credentials.getServiceCredentialsProvider``); else from
  azure-identity's ``DefaultAzureCredential`` (``az login`` on a laptop).

:func:`make_client` (or :func:`client_kwargs`, its constructor arguments) is
the one way to build a client from :class:`~workload.config.settings.ChatSettings`.
In entra mode it fetches the first token before anything is sent, so a
missing credential is a :class:`~workload.errors.SettingsError` (exit 2)
naming what to check, not a failed call. Token caching and refresh are
azure-identity's (``get_bearer_token_provider``), not ours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from workload import contract
from workload.config.auth_mode import AuthMode
from workload.errors import ServiceError, SettingsError, first_line

if TYPE_CHECKING:
    import openai

    from workload.config.settings import ChatSettings

__all__ = [
    "COGNITIVE_SERVICES_SCOPE",
    "ENTRA_CHECKS",
    "client_kwargs",
    "make_client",
    "status_hint",
    "token_provider",
]

#: The Entra ID scope of Azure OpenAI (and every Azure AI Services account).
COGNITIVE_SERVICES_SCOPE: Final = "https://cognitiveservices.azure.com/.default"

#: What to check when entra mode has no token or the service refuses it: one clause.
ENTRA_CHECKS: Final = (
    "check that your identity has the role 'Cognitive Services OpenAI User' on the account "
    "(a new role assignment can take minutes to apply after `pulumi up`), that `az login` "
    "is signed in to the account's tenant (laptop), or that the service credential named by "
    f"{contract.ENV_SERVICE_CREDENTIAL} exists and you have ACCESS on it (cluster)"
)

_KEY_HINTS: Final[Mapping[int, str]] = {
    401: "check the API key",
    403: "the key or network rules do not allow this call",
}


def status_hint(status: int, mode: AuthMode) -> str:
    """What to check after a 401 or 403 from the service, for the mode in use ("" if none)."""
    if status in (401, 403):
        return ENTRA_CHECKS if mode == "entra" else _KEY_HINTS[status]
    return ""


def _service_credential(name: str) -> Any:
    """The Unity Catalog service credential ``name``, an azure-identity-style credential.

    ``dbutils`` is the notebook's global; a job's Python file gets the same object from
    ``databricks.sdk.runtime`` (the Databricks SDK reads it from the runtime's namespace).
    """
    try:
        from databricks.sdk.runtime import dbutils
    except Exception as err:  # ImportError, or the SDK's own set-up failing off a notebook
        raise SettingsError(
            f"cannot reach dbutils for the service credential {name!r} "
            f"({first_line(err)[:200]}): run on a Databricks Runtime 16.2 or later cluster, "
            "which ships databricks-sdk, or set AZURE_OPENAI_AD_TOKEN"
        ) from None
    try:
        # On serverless compute the SDK's stand-in dbutils raises ValueError here (no
        # cluster id; the method marked unsupported), not AttributeError.
        credentials = getattr(dbutils, "credentials", None)
        get_provider = getattr(credentials, "getServiceCredentialsProvider", None)
    except Exception as err:
        raise SettingsError(
            f"dbutils cannot give the service credential {name!r} here "
            f"({first_line(err)[:200]}): service credentials need a Databricks Runtime 16.2 "
            "or later cluster, not serverless compute (`llmops:authMode entra` needs "
            "`llmops:compute cluster`), or set AZURE_OPENAI_AD_TOKEN"
        ) from None
    if get_provider is None:
        raise SettingsError(
            "dbutils has no credentials.getServiceCredentialsProvider: service credentials "
            "need Databricks Runtime 16.2 or later on a Unity Catalog workspace"
        )
    try:
        return get_provider(name)
    except Exception as err:  # py4j and runtime errors alike: report, send nothing
        raise SettingsError(
            f"the service credential {name!r} is not usable here ({first_line(err)[:200]}); "
            f"{ENTRA_CHECKS}"
        ) from None


def _default_azure_credential() -> Any:
    import logging

    from azure.identity import DefaultAzureCredential

    # Its chain logs each failed attempt as a multi-line warning on stderr; the failure
    # reaches the user once, as token_provider's one line saying what to check.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    return DefaultAzureCredential()


def token_provider(settings: ChatSettings) -> Callable[[], str]:
    """A callable returning a bearer token for Azure OpenAI, checked once before returning.

    Raises :class:`SettingsError` (exit 2, nothing sent to the model) when no token can
    be had, naming what to check. The callable caches and renews the token
    (azure-identity's ``get_bearer_token_provider``); a renewal that fails raises
    :class:`ServiceError` from inside the client's call (exit 1).
    """
    source = settings.credential
    if source == "ad-token":
        token = settings.ad_token or ""
        return lambda: token
    try:
        from azure.identity import get_bearer_token_provider
    except ImportError:
        raise SettingsError(
            "entra mode without AZURE_OPENAI_AD_TOKEN needs azure-identity: "
            "`pip install azure-identity`"
        ) from None
    if source == "service-credential":
        assert settings.service_credential
        credential = _service_credential(settings.service_credential)
        where = f"the service credential {settings.service_credential!r}"
    else:
        credential = _default_azure_credential()
        where = "DefaultAzureCredential"
    provider = get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE)
    try:
        provider()
    except Exception as err:  # azure-core's ClientAuthenticationError and kin: nothing sent
        raise SettingsError(
            f"entra mode found no token for Azure OpenAI from {where} "
            f"({first_line(err)[:200]}); {ENTRA_CHECKS}"
        ) from None

    def renewed() -> str:
        # Called by the client before each request; the token is renewed near its expiry,
        # which can fail hours into an eval: one line then too, the call failed (exit 1).
        try:
            return provider()
        except Exception as err:
            raise ServiceError(
                f"entra mode could not renew the token from {where} "
                f"({first_line(err)[:200]}); {ENTRA_CHECKS}"
            ) from None

    return renewed


def client_kwargs(settings: ChatSettings) -> dict[str, Any]:
    """The constructor arguments of ``openai.AzureOpenAI`` (``openai.OpenAI`` for a
    compatible server or the gateway) for these settings: the key, or a bearer token or
    its provider (the gateway's: Databricks' unified authentication, never an Azure key).

    In entra mode exactly one of ``azure_ad_token``/``azure_ad_token_provider`` is given
    and no ``api_key``, so the client never reads ``AZURE_OPENAI_API_KEY`` by itself and
    never sends an ``api-key`` header.
    """
    if settings.provider == "openai":
        return {"base_url": settings.endpoint, "api_key": settings.api_key}
    if settings.provider == "gateway":
        # Databricks' own credential, asked for before each attempt (workload.model.gateway).
        from workload.model.gateway import bearer_provider, gateway_base_url

        host, bearer = bearer_provider(settings)
        return {"base_url": gateway_base_url(host), "api_key": bearer}
    kwargs: dict[str, Any] = {
        "azure_endpoint": settings.endpoint,
        "api_version": settings.api_version,
    }
    if settings.auth_mode == "key":
        kwargs["api_key"] = settings.api_key
    elif settings.credential == "ad-token":
        kwargs["azure_ad_token"] = settings.ad_token
    else:
        kwargs["azure_ad_token_provider"] = token_provider(settings)
    return kwargs


def make_client(settings: ChatSettings, *, max_retries: int, timeout: float) -> openai.OpenAI:
    """The lab's ``AzureOpenAI`` client (key or Entra ID), or a plain one for a compatible
    server or the stack's serving endpoint (no ``api-key`` header there). Its own retries
    handle 429 and 5xx with backoff and honour ``Retry-After``; 400-404 are not retried.
    A credential echoed in an error answer is masked before the SDK reads it
    (:mod:`workload.model.masking`)."""
    import openai

    from workload.model.masking import MaskingTransport
    from workload.model.retry_notice import AttemptTransport

    kwargs = client_kwargs(settings)
    client_type = openai.AzureOpenAI if settings.provider == "azure" else openai.OpenAI
    client: openai.OpenAI = client_type(
        **kwargs,
        max_retries=max_retries,
        timeout=timeout,
        # A credential the service echoes in an error never reaches the SDK's exception
        # (nor, through autolog, the trace); what each attempt met names its retry
        # (workload.model.retry_notice).
        http_client=openai.DefaultHttpxClient(
            transport=AttemptTransport(MaskingTransport()), timeout=timeout
        ),
    )
    return client
