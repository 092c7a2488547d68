"""The chat call's settings: stack outputs overlaid by the lab's environment variables.

Built and validated once, at the edge, into a frozen :class:`ChatSettings`;
every problem is reported together in one :class:`SettingsError` line that
names the variable or output, never the API key's value.

Precedence, lowest to highest: the stack outputs (``--outputs``/``--stack``),
then ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_API_KEY`` (in a serverless job: the
secret ``LLMOPS_API_KEY_SECRET`` names, read at run time),
``AZURE_OPENAI_API_VERSION``, ``AZURE_OPENAI_DEPLOYMENT``. Setting
``OPENAI_BASE_URL`` selects an OpenAI-compatible server instead (Ollama, vLLM),
with ``OPENAI_API_KEY`` and a model from ``--model`` or ``OPENAI_MODEL``.

The authentication mode and the credential's source are resolved here too, by
the rules of :mod:`workload.config.auth_mode`: in entra mode no key is looked for at all.
Through the stack's AI Gateway (:mod:`workload.config.via`) no Azure setting is read: the
model is the serving endpoint's name, the host the workspace's (``DATABRICKS_HOST``, else
the output ``databricks_workspace_url``), and the credential Databricks' own.
Commands call :func:`workload.config.context.resolve_context`, which calls this.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlparse

from workload import contract
from workload.config.auth_mode import (
    AuthMode,
    CredentialSource,
    credential_source,
    on_databricks,
    resolve_auth_mode,
)
from workload.config.defaults import DEFAULT_EXPERIMENT
from workload.config.secrets import read_key_secret
from workload.config.via import Via, gateway_endpoint, resolve_via
from workload.errors import SettingsError

__all__ = [
    "ChatSettings",
    "Provider",
    "check_databricks_workspace",
    "resolve_experiment",
    "resolve_settings",
    "tracking_env",
    "tracks_to_databricks",
]

Provider = Literal["azure", "openai", "gateway"]

_API_VERSION: Final = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_DEPLOYMENT: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_MASKED: Final = contract.SECRET_MASK

#: Each Azure setting: its field, the lab's environment variable, the stack output under it.
_AZURE_SOURCES: Final = (
    ("endpoint", contract.ENV_ENDPOINT, contract.OPENAI_ENDPOINT),
    ("api_key", contract.ENV_API_KEY, contract.OPENAI_API_KEY),
    ("api_version", contract.ENV_API_VERSION, contract.OPENAI_API_VERSION),
    ("model", contract.ENV_DEPLOYMENT, contract.OPENAI_DEPLOYMENT),
)


@dataclass(frozen=True)
class ChatSettings:
    """Everything the chat call needs; the key never shows in its repr."""

    provider: Provider
    """``azure`` (the lab: an Azure OpenAI deployment), ``openai`` (a compatible server) or
    ``gateway`` (the deployment's Databricks serving endpoint, AI Gateway in front)."""
    endpoint: str
    """The Azure OpenAI endpoint, the compatible server's base URL, or the workspace's URL
    (gateway; "" on a cluster, where Databricks' SDK knows its own workspace)."""
    api_key: str | None = field(repr=False)
    """The key; never printed, logged or traced. None in entra mode (no key is sent)."""
    api_version: str | None
    """The Azure OpenAI API version (None for a compatible server)."""
    model: str
    """The deployment name (Azure), model name or serving endpoint: the ``model=`` of the call."""
    auth_mode: AuthMode = "key"
    """``key`` (the lab) or ``entra`` (keyless: a bearer token from Entra ID)."""
    credential: CredentialSource = "api-key"
    """Where the call's credential comes from (:mod:`workload.config.auth_mode`)."""
    ad_token: str | None = field(default=None, repr=False)
    """``AZURE_OPENAI_AD_TOKEN``, when that is the credential; never printed."""
    service_credential: str | None = None
    """The Unity Catalog service credential's name, when that is the credential."""

    @property
    def secret(self) -> str:
        """The credential text blanked out of every error shown or kept: the key, else the
        Entra token given in ``AZURE_OPENAI_AD_TOKEN`` (empty when there is neither)."""
        return self.api_key or self.ad_token or ""

    @property
    def via(self) -> Via:
        """``gateway`` through the stack's serving endpoint, else ``direct``."""
        return "gateway" if self.provider == "gateway" else "direct"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _check_url(name: str, url: str, problems: list[str], *, plain_http: bool = False) -> None:
    """An Azure endpoint must be https (the key travels in a header); a self-hosted
    compatible server (``plain_http``) and a local test server may be plain http."""
    parsed = urlparse(url)
    http_allowed = plain_http or parsed.hostname in _LOCAL_HOSTS
    if (
        not parsed.netloc
        or parsed.scheme not in ("https", "http")
        or (parsed.scheme == "http" and not http_allowed)
    ):
        allowed = "an http:// or https:// URL" if plain_http else "an https:// URL"
        problems.append(f"{name} = {url!r} is not {allowed}")


def resolve_settings(
    outputs: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    model: str | None = None,
    via: str | None = None,
) -> ChatSettings:
    """Combine outputs and environment into validated settings, or raise one SettingsError.

    ``via`` is the ``--via`` flag (:func:`workload.config.via.resolve_via`)."""
    problems: list[str] = []
    missing: list[str] = []

    base_url = _text(env.get("OPENAI_BASE_URL"))
    chosen_via = resolve_via(via, outputs, env, problems)
    if chosen_via == "gateway":
        return _gateway_settings(outputs, env, base_url, problems)
    if base_url is not None:
        key = _text(env.get("OPENAI_API_KEY"))
        chosen_model = _text(model) or _text(env.get("OPENAI_MODEL"))
        if key is None:
            missing.append("OPENAI_API_KEY (any value for a server without authentication)")
        if chosen_model is None:
            missing.append("--model or OPENAI_MODEL")
        _check_url("OPENAI_BASE_URL", base_url, problems, plain_http=True)
        _raise(missing, problems, secret=key)
        assert key is not None and chosen_model is not None
        return ChatSettings("openai", base_url, key, None, chosen_model, credential="compatible")

    mode = resolve_auth_mode(outputs, env, problems)
    sources: dict[str, tuple[str, str | None]] = {"api_key": ("", None)}
    for name, variable, output in _AZURE_SOURCES:
        if mode == "entra" and name == "api_key":
            continue  # keyless: a key is neither needed nor read, wherever it lies
        from_env = _text(env.get(variable))
        secret = _text(env.get(contract.ENV_API_KEY_SECRET)) if name == "api_key" else None
        if from_env is not None:
            sources[name] = (variable, from_env)
        elif secret is not None:
            # A serverless job names the secret; the key itself is read only now.
            sources[name] = (f"the secret {secret}", read_key_secret(secret))
        else:
            raw = outputs.get(output)
            value = _text(raw) if isinstance(raw, str) else None
            sources[name] = (f"stack output {output}", value)
            if raw is not None and not isinstance(raw, str):
                # Named without its value: this may be the key's output.
                problems.append(f"stack output {output} is not a string")
            elif value is None:
                missing.append(f"{variable} (or the stack output {output} via --stack/--outputs)")

    endpoint_source, endpoint = sources["endpoint"]
    if endpoint is not None:
        _check_url(endpoint_source, endpoint, problems)
    key_source, key = sources["api_key"]
    if key == _MASKED:
        problems.append(
            f"{key_source} is masked: write the outputs with "
            "`pulumi stack output --json --show-secrets`"
        )
    elif key is not None and any(c.isspace() for c in key):
        problems.append(f"{key_source} contains white space (value not shown)")
    version_source, version = sources["api_version"]
    if version is not None and not _API_VERSION.match(version):
        problems.append(
            f"{version_source} = {version!r} is not an API version like 2024-05-01-preview"
        )
    model_source, deployment = sources["model"]
    if deployment is not None and not _DEPLOYMENT.match(deployment):
        problems.append(
            f"{model_source} = {deployment!r} is not a deployment name "
            "(letters, digits, '.', '_' and '-', at most 64)"
        )
    # A key, or in entra mode the Entra token, pasted into another variable stays unshown.
    _raise(missing, problems, secret=key or _text(env.get(contract.ENV_AD_TOKEN)))
    assert endpoint and version and deployment and (key or mode == "entra")
    if mode == "key":
        return ChatSettings("azure", endpoint, key, version, deployment)
    service_credential = _text(env.get(contract.ENV_SERVICE_CREDENTIAL)) or _text(
        outputs.get(contract.DATABRICKS_SERVICE_CREDENTIAL)
    )
    source = credential_source(mode, env, service_credential)
    return ChatSettings(
        "azure",
        endpoint,
        None,
        version,
        deployment,
        auth_mode="entra",
        credential=source,
        ad_token=_text(env.get(contract.ENV_AD_TOKEN)) if source == "ad-token" else None,
        service_credential=service_credential if source == "service-credential" else None,
    )


def _gateway_settings(
    outputs: Mapping[str, Any], env: Mapping[str, str], base_url: str | None, problems: list[str]
) -> ChatSettings:
    """The serving endpoint and the workspace; no Azure setting, key or token is read."""
    missing: list[str] = []
    if base_url is not None:
        problems.append(
            "OPENAI_BASE_URL selects an OpenAI-compatible server, not the gateway: "
            "unset it, or use --via direct"
        )
    endpoint = gateway_endpoint(outputs, env)
    if not endpoint:
        missing.append(
            f"{contract.ENV_GATEWAY_ENDPOINT} (or the stack output "
            f"{contract.DATABRICKS_SERVING_ENDPOINT} of a stack deployed with llmops:gateway "
            "true), or use --via direct"
        )
    elif not _DEPLOYMENT.match(endpoint):
        problems.append(f"serving endpoint {endpoint!r} is not an endpoint name")
    host = _text(env.get("DATABRICKS_HOST"))
    host_source = "DATABRICKS_HOST"
    if host is None:
        raw = outputs.get(contract.DATABRICKS_WORKSPACE_URL)
        host = _text(raw) if isinstance(raw, str) else None
        host_source = f"stack output {contract.DATABRICKS_WORKSPACE_URL}"
    if host is not None:
        _check_url(host_source, host, problems)
    elif not on_databricks(env):  # a cluster's own workspace is the SDK's to find
        missing.append(
            f"DATABRICKS_HOST (or the stack output {contract.DATABRICKS_WORKSPACE_URL} "
            "via --stack/--outputs)"
        )
    _raise(missing, problems, secret=None)
    return ChatSettings(
        "gateway", (host or "").rstrip("/"), None, None, endpoint, credential="databricks"
    )


def _raise(missing: list[str], problems: list[str], *, secret: str | None) -> None:
    """One SettingsError naming every problem; a key pasted into the wrong variable
    (the endpoint's, say) is blanked out of the message."""
    parts = []
    if missing:
        parts.append("missing " + ", ".join(missing))
    parts.extend(problems)
    if parts:
        message = "; ".join(parts)
        if secret and len(secret) >= 8:  # shorter ones are placeholders ("ollama")
            message = message.replace(secret, _MASKED)
        raise SettingsError(message)


def tracks_to_databricks(env: Mapping[str, str]) -> bool:
    """Whether MLflow writes to a Databricks workspace: ``MLFLOW_TRACKING_URI`` says
    ``databricks`` (or a ``databricks://`` profile), or it is unset on a Databricks
    cluster, where MLflow's default store is the workspace's."""
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    return _names_databricks(uri) if uri else on_databricks(env)


def _names_databricks(uri: str) -> bool:
    return uri == "databricks" or uri.startswith("databricks://")


def resolve_experiment(flag: str | None, outputs: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """``--experiment``, else ``MLFLOW_EXPERIMENT_NAME``, else the stack's workspace
    experiment when tracking to Databricks, else the default."""
    for candidate in (flag, env.get(contract.ENV_EXPERIMENT)):
        if _text(candidate):
            return str(candidate).strip()
    provisioned = _text(outputs.get(contract.MLFLOW_EXPERIMENT_PATH))
    if tracks_to_databricks(env) and provisioned:
        return provisioned
    return DEFAULT_EXPERIMENT


def tracking_env(outputs: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Variables to add so ``MLFLOW_TRACKING_URI=databricks`` finds the stack's workspace.

    Only for a URI that says so: on a cluster MLflow already knows its workspace and
    how to sign in to it, and a host of ours would only get in the way.
    """
    host = _text(outputs.get(contract.DATABRICKS_WORKSPACE_URL))
    explicit = _names_databricks(env.get("MLFLOW_TRACKING_URI", "").strip())
    if explicit and not env.get("DATABRICKS_HOST") and host:
        return {"DATABRICKS_HOST": host}
    return {}


def check_databricks_workspace(env: Mapping[str, str]) -> None:
    """A ``databricks`` tracking URI must name a workspace before MLflow is asked.

    Without one, MLflow logs a warning and raises a paragraph that one line cuts off in
    the middle; this says instead, in one line (exit 2), what to set. A workspace is
    named by ``DATABRICKS_HOST`` (the stack's, from ``--outputs``/``--stack``, is added
    before this check), ``DATABRICKS_AZURE_RESOURCE_ID``, or the ``host`` of the
    Databricks config file's profile (``databricks://PROFILE``, else
    ``DATABRICKS_CONFIG_PROFILE``, else ``DEFAULT``), as the Databricks SDK reads them.
    On a cluster MLflow knows its own workspace.
    """
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if not _names_databricks(uri) or on_databricks(env):
        return
    if any(
        env.get(name, "").strip() for name in ("DATABRICKS_HOST", "DATABRICKS_AZURE_RESOURCE_ID")
    ):
        return
    named = uri.removeprefix("databricks").removeprefix("://")
    profile = named or env.get("DATABRICKS_CONFIG_PROFILE", "").strip() or "DEFAULT"
    if ":" in profile:  # databricks://scope:prefix, credentials in a secret scope
        return
    path = env.get("DATABRICKS_CONFIG_FILE", "").strip() or "~/.databrickscfg"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(os.path.expanduser(path), encoding="utf-8")
    except (OSError, UnicodeDecodeError, configparser.Error):
        return  # a file the SDK may read otherwise: its own error says it better
    if parser.get(profile, "host", fallback="").strip():
        return
    raise SettingsError(
        f"MLFLOW_TRACKING_URI={uri} names no Databricks workspace (no DATABRICKS_HOST, and "
        f"no host for the profile {profile} in {path}): pass --outputs FILE or --stack NAME "
        "(the stack's databricks_workspace_url), or set DATABRICKS_HOST and sign in with "
        "`az login` or DATABRICKS_TOKEN"
    )
