"""The workload's one exception hierarchy; each class maps to an exit status."""

from __future__ import annotations

__all__ = [
    "InsufficientDataError",
    "ServiceError",
    "SettingsError",
    "TrackingStoreError",
    "WorkloadError",
    "first_line",
]


class WorkloadError(Exception):
    """Base of every error the command line reports as one line, without a traceback."""

    exit_code: int = 1


class SettingsError(WorkloadError):
    """Settings are missing or invalid; nothing was sent (exit 2)."""

    exit_code = 2


class ServiceError(WorkloadError):
    """The remote service refused the call or still failed after retries (exit 1)."""

    exit_code = 1


class InsufficientDataError(WorkloadError):
    """There is not enough data (traces) to answer the question asked (exit 2)."""

    exit_code = 2


class TrackingStoreError(WorkloadError):
    """The MLflow tracking store cannot be read or lacks the experiment asked for (exit 2)."""

    exit_code = 2


def first_line(err: BaseException | str, limit: int = 300) -> str:
    """The first non-empty line of an error's text, at most ``limit`` characters: one
    line for the user, no traceback (an exception with no text: its type's name).

    Shared by the workload and the infrastructure's commands, which report every
    failure as one line.
    """
    for line in str(err).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(err).__name__ if isinstance(err, BaseException) else ""
