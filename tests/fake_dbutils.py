"""A stand-in for a Databricks cluster's ``dbutils``, where the workload finds it.

On a cluster, ``from databricks.sdk.runtime import dbutils`` gives the notebook's
``dbutils``; ``dbutils.credentials.getServiceCredentialsProvider(name)`` returns
the Unity Catalog service credential as an azure-identity-style credential
(``get_token(*scopes)``). :func:`install` puts a module with a fake ``dbutils``
under that name in ``sys.modules``, so the workload's own import finds it::

    dbutils = install({"llmops-dev-abc123": "token-from-the-connector"})
    ... run the workload with DATABRICKS_RUNTIME_VERSION set ...
    assert dbutils.asked == ["llmops-dev-abc123"]
"""

from __future__ import annotations

import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import AccessToken

__all__ = [
    "MODULE",
    "FakeDbutils",
    "FakeServiceCredential",
    "RemoteDbutils",
    "as_module",
    "install",
]

#: Where the workload imports ``dbutils`` from.
MODULE = "databricks.sdk.runtime"


@dataclass
class FakeServiceCredential:
    """A service credential's provider: hands out its token, records the scopes asked for."""

    token: str
    scopes: list[tuple[str, ...]] = field(default_factory=list)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


class _Credentials:
    def __init__(self, owner: FakeDbutils) -> None:
        self._owner = owner

    def getServiceCredentialsProvider(self, name: str) -> FakeServiceCredential:
        self._owner.asked.append(name)
        if name not in self._owner.providers:
            # What the runtime says for a credential that is missing or not granted.
            raise RuntimeError(
                f"PERMISSION_DENIED: Credential '{name}' does not exist or the user lacks ACCESS."
            )
        return self._owner.providers[name]


class _Secrets:
    def __init__(self, owner: FakeDbutils) -> None:
        self._owner = owner

    def get(self, scope: str, key: str) -> str:
        self._owner.secrets_read.append((scope, key))
        if (scope, key) not in self._owner.secret_values:
            # What the runtime says for a scope or key that is missing or not readable.
            raise RuntimeError(f"Secret does not exist with scope: {scope} and key: {key}")
        return self._owner.secret_values[(scope, key)]


class FakeDbutils:
    """``dbutils`` with only ``credentials.getServiceCredentialsProvider`` and
    ``secrets.get``."""

    def __init__(
        self, tokens: dict[str, str], secrets: dict[tuple[str, str], str] | None = None
    ) -> None:
        self.providers = {name: FakeServiceCredential(token) for name, token in tokens.items()}
        self.asked: list[str] = []
        self.credentials = _Credentials(self)
        self.secret_values = dict(secrets or {})
        self.secrets_read: list[tuple[str, str]] = []
        self.secrets = _Secrets(self)


class RemoteDbutils:
    """``dbutils`` as the Databricks SDK gives it off a cluster (serverless compute): its
    ``RemoteDbUtils`` raises ValueError for any utility without a cluster id, and marks
    ``credentials.getServiceCredentialsProvider`` unsupported (``databricks/sdk/dbutils.py``).
    """

    def __init__(self, *, cluster_id: str = "") -> None:
        self._cluster_id = cluster_id

    def __getattr__(self, util: str) -> Any:
        if not self._cluster_id:
            raise ValueError("cluster_id is required in the configuration")
        return _UnsupportedCredentials()


class _UnsupportedCredentials:
    def __getattr__(self, method: str) -> Any:
        raise ValueError(
            f"Method 'credentials.{method}' is not supported in the SDK version of DBUtils"
        )


def as_module(dbutils: FakeDbutils | RemoteDbutils) -> types.ModuleType:
    """A module holding ``dbutils``, to put in ``sys.modules`` under :data:`MODULE`
    (``monkeypatch.setitem`` in a test, which puts the real one back)."""
    module = types.ModuleType(MODULE)
    module.dbutils = dbutils  # type: ignore[attr-defined]
    return module


def install(
    tokens: dict[str, str], secrets: dict[tuple[str, str], str] | None = None
) -> FakeDbutils:
    """Make ``from databricks.sdk.runtime import dbutils`` return a fake with these
    credentials and secrets (``{(scope, key): value}``), for the rest of this process
    (a test's subprocess)."""
    dbutils = FakeDbutils(tokens, secrets)
    sys.modules[MODULE] = as_module(dbutils)
    return dbutils
