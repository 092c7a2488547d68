"""The key in a serverless job: read at run time from the secret scope the job names.

A cluster gets the key from its environment, where Spark resolved the secret
reference when it started. A serverless job has no cluster environment, and a
key in a job's parameters would be readable by anyone who can view the job; so
the job names the secret (``LLMOPS_API_KEY_SECRET=<scope>/<key>``) and the
workload reads it with ``dbutils.secrets.get``. On Databricks
``databricks.sdk.runtime`` gives the runtime's own ``dbutils`` (Databricks SDK
for Python, "Interaction with dbutils", read 2026-12-05).
"""

from __future__ import annotations

from workload import contract
from workload.errors import SettingsError, first_line

__all__ = ["read_key_secret"]


def read_key_secret(reference: str) -> str:
    """The value of the secret ``<scope>/<key>``; never shown in an error."""
    scope, _, key = reference.strip().partition("/")
    if not scope or not key or "/" in key:
        raise SettingsError(
            f"{contract.ENV_API_KEY_SECRET} = {reference!r} is not <scope>/<key> "
            f"(for example llmops/{contract.OPENAI_KEY_SECRET})"
        )
    try:
        from databricks.sdk.runtime import dbutils
    except Exception as err:  # ImportError, or the SDK's set-up failing off Databricks
        raise SettingsError(
            f"cannot reach dbutils to read the secret {key!r} of scope {scope!r} "
            f"({first_line(err)[:200]}): run as a Databricks job, or set "
            f"{contract.ENV_API_KEY} instead of {contract.ENV_API_KEY_SECRET}"
        ) from None
    try:
        value = dbutils.secrets.get(scope=scope, key=key)
    except Exception as err:  # the runtime's errors name the scope and key, not the value
        raise SettingsError(
            f"the secret {key!r} of scope {scope!r} is not readable here "
            f"({first_line(err)[:200]}): check that the scope exists and the job's "
            "identity may READ it (`pulumi up` creates both)"
        ) from None
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"the secret {key!r} of scope {scope!r} is empty: run `pulumi up`")
    return value.strip()
