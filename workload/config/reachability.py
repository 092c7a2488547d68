"""A service that cannot be reached fails in seconds, naming its address, not after minutes.

MLflow's REST client and the Databricks SDK both retry a failed connection with
backoff, for four to five minutes in all, in silence: right for a blip in a long job,
wrong for a mistyped tracking URI or a workspace behind a VPN that is down. So before a
command first talks to the tracking server or the workspace, one TCP connection is
tried (:data:`PROBE_SECONDS` at most); when it fails, the command stops at once with
one line naming the address and what to check, and exits 1 (the service failed, as
for a store that cannot answer; docs/reference.md, exit statuses).

Only a connection is tried: whether the service then answers well stays the
clients' business. No probe through a proxy (the connection would not be the one the
clients make) nor on a Databricks cluster (its own workspace is reachable by nature).
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlparse

from workload.config.auth_mode import on_databricks
from workload.errors import ServiceError

__all__ = ["PROBE_SECONDS", "check_reachable", "check_tracking_store", "check_workspace"]

#: How long one connection may take before the address counts as unreachable.
PROBE_SECONDS: Final = 10.0


def check_reachable(url: str, what: str, hint: str) -> None:
    """Connect to ``url``'s host and port once; raise :class:`ServiceError` when it fails.

    ``what`` names the service (``the MLflow tracking server``), ``hint`` what to check.
    """
    parsed = urlparse(url)
    host = parsed.hostname
    if not host or parsed.scheme not in ("http", "https"):
        return
    if urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return  # a malformed port: the client's own error says it better
    try:
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
    except OSError as err:
        reason = (
            f"no answer in {PROBE_SECONDS:g} s"
            if isinstance(err, TimeoutError)
            else (err.strerror or type(err).__name__)
        )
        raise ServiceError(f"cannot reach {what} at {url} ({reason}): {hint}") from None


def check_tracking_store(env: Mapping[str, str]) -> None:
    """Probe the tracking server ``MLFLOW_TRACKING_URI`` names (an ``http(s)`` server, or
    ``databricks`` with ``DATABRICKS_HOST``); a local store needs none."""
    if on_databricks(env):
        return
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if uri.startswith(("http://", "https://")):
        check_reachable(
            uri,
            "the MLflow tracking server",
            "check MLFLOW_TRACKING_URI, that the server is running, and your network",
        )
    elif uri == "databricks" or uri.startswith("databricks://"):
        host = env.get("DATABRICKS_HOST", "").strip()
        if host:
            if "://" not in host:
                host = f"https://{host}"
            check_workspace(host)


def check_workspace(host: str) -> None:
    """Probe a Databricks workspace (the tracking store or the jobs' home)."""
    check_reachable(
        host,
        "the Databricks workspace",
        "check the stack's databricks_workspace_url (or DATABRICKS_HOST), that the workspace "
        "still exists, and your network or VPN",
    )
