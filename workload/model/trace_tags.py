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
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Final

from workload.config.via import Via

if TYPE_CHECKING:
    from mlflow.entities import LiveSpan

__all__ = ["PROMPT_VERSION_TAG", "VIA_TAG", "tag_prompt_version", "tag_traces"]

#: The trace tag naming the way a call went: ``gateway`` or ``direct``.
VIA_TAG: Final = "llmops.via"
#: The run and trace tag naming the prompt a call ran: ``<name>/<version>``, ``packaged``
#: (the registry holds no such prompt) or ``override`` (a system prompt given instead).
PROMPT_VERSION_TAG: Final = "llmops.prompt_version"


@contextlib.contextmanager
def tag_traces(via: Via) -> Iterator[None]:
    """Every trace whose span ends inside this block is tagged ``llmops.via=<via>``."""
    with _tagging(lambda: {VIA_TAG: via}):
        yield


@contextlib.contextmanager
def tag_prompt_version(label: Callable[[], str]) -> Iterator[None]:
    """Every trace whose span ends inside this block is tagged ``llmops.prompt_version`` with
    ``label()``, asked on the thread that ends the span: an eval's rows (a thread each) can
    differ, a row with its own system prompt being ``override``."""
    with _tagging(lambda: {PROMPT_VERSION_TAG: label()}):
        yield


@contextlib.contextmanager
def _tagging(tags: Callable[[], Mapping[str, str]]) -> Iterator[None]:
    import mlflow
    from mlflow.tracing.config import get_config

    def tag(span: LiveSpan) -> None:
        # The trace is still active here: MLflow sets the tag on it in memory.
        client = mlflow.MlflowClient()
        for key, value in tags().items():
            client.set_trace_tag(span.trace_id, key, value)

    with mlflow.tracing.configure(span_processors=[*get_config().span_processors, tag]):
        yield
