"""The infrastructure package's one error type."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A ``llmops:`` configuration value is missing, malformed or not allowed."""
