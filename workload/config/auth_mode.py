"""Which way the workload authenticates, decided from the settings alone.

The rules for the mode, as docs/keyless.md states them (``LLMOPS_AUTH_MODE`` wins, else the output
``openai_auth_mode``, else ``key``) and for the credential's source. They are
part of resolving the settings (:mod:`workload.config.settings` calls them), so
they live below both the settings and the client (:mod:`workload.model.auth`,
which builds a client from the settings): the arrows run one way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from workload import contract

__all__ = [
    "AUTH_MODES",
    "ENV_DATABRICKS_RUNTIME",
    "AuthMode",
    "CredentialSource",
    "credential_source",
    "on_databricks",
    "resolve_auth_mode",
]

AuthMode = Literal["key", "entra"]
#: The values ``openai_auth_mode`` and ``LLMOPS_AUTH_MODE`` may take.
AUTH_MODES: Final[tuple[AuthMode, ...]] = ("key", "entra")

#: Where the credential of a call comes from, in its order of precedence (docs/keyless.md)
#: (``databricks``: Databricks' unified authentication, through the gateway).
CredentialSource = Literal[
    "api-key",
    "ad-token",
    "service-credential",
    "default-azure-credential",
    "compatible",
    "databricks",
]

#: Databricks sets it on every cluster (``16.4.x-cpu-ml-scala2.12`` and the like).
ENV_DATABRICKS_RUNTIME: Final = "DATABRICKS_RUNTIME_VERSION"


def resolve_auth_mode(
    outputs: Mapping[str, Any], env: Mapping[str, str], problems: list[str]
) -> AuthMode:
    """``LLMOPS_AUTH_MODE`` (wins), else the output ``openai_auth_mode``, else ``key``.

    A value that is neither ``key`` nor ``entra`` is added to ``problems`` (named with
    where it came from) and ``key`` is returned, so every other problem is still found.
    """
    for source, raw in (
        (contract.ENV_AUTH_MODE, env.get(contract.ENV_AUTH_MODE)),
        (f"stack output {contract.OPENAI_AUTH_MODE}", outputs.get(contract.OPENAI_AUTH_MODE)),
    ):
        text = str(raw).strip().lower() if raw is not None else ""
        if not text:
            continue
        if text in AUTH_MODES:
            return text
        problems.append(f"{source} = {str(raw)!r} is not one of {', '.join(AUTH_MODES)}")
        return "key"
    return "key"


def on_databricks(env: Mapping[str, str]) -> bool:
    """Whether this process runs on a Databricks cluster (where ``dbutils`` exists)."""
    return bool(env.get(ENV_DATABRICKS_RUNTIME, "").strip())


def credential_source(
    mode: AuthMode, env: Mapping[str, str], service_credential: str | None
) -> CredentialSource:
    """The precedence (docs/keyless.md): the AD token variable, else (on Databricks) the service
    credential, else ``DefaultAzureCredential``; ``api-key`` in key mode."""
    if mode == "key":
        return "api-key"
    if env.get(contract.ENV_AD_TOKEN, "").strip():
        return "ad-token"
    if on_databricks(env) and service_credential:
        return "service-credential"
    return "default-azure-credential"
