"""The tag every model call's trace carries: which way the call went (docs/reference.md).

``llmops.via`` is ``gateway`` (the stack's serving endpoint) or ``direct`` (Azure
OpenAI, or a compatible server). The traces keep their shape, so the monitor
reads both alike; the tag only says which door the call used.

The spans are autolog's, which the workload does not open itself, so the tag is
set by an MLflow span processor (``mlflow.tracing.configure``) while a span ends:
its trace is still in MLflow's memory then, before it is exported, and a tag set
there is written with the trace. The processor is in place only inside
:func:`tag_traces`, so one process can make calls both ways.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from workload.config.via import Via

if TYPE_CHECKING:
    from mlflow.entities import LiveSpan

__all__ = ["VIA_TAG", "tag_traces"]

#: The trace tag naming the way a call went: ``gateway`` or ``direct``.
VIA_TAG: Final = "llmops.via"


@contextlib.contextmanager
def tag_traces(via: Via) -> Iterator[None]:
    """Every trace whose span ends inside this block is tagged ``llmops.via=<via>``."""
    import mlflow
    from mlflow.tracing.config import get_config

    def tag_via(span: LiveSpan) -> None:
        # The trace is still active here: MLflow sets the tag on it in memory.
        mlflow.MlflowClient().set_trace_tag(span.trace_id, VIA_TAG, via)

    with mlflow.tracing.configure(span_processors=[*get_config().span_processors, tag_via]):
        yield
