"""Command-line values checked where argparse reads them, in the words a user reads.

A bad value stops the command before anything is sent, with argparse's own
one-line usage error (exit 2), e.g. ``argument --rpm: must be a whole number of
at least 1``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

__all__ = ["bounded"]

T = TypeVar("T", int, float)


def bounded(
    kind: Callable[[str], T], allowed: Callable[[T], bool], says: str
) -> Callable[[str], T]:
    """An argparse ``type=``: ``kind(text)`` that ``allowed`` accepts, else "must be <says>"."""

    def convert(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {says}") from None
        if not allowed(value):
            raise argparse.ArgumentTypeError(f"must be {says}")
        return value

    return convert
