"""What every workload command resolves first, in one place: the stack, the model, the experiment.

Every command that talks to the model or the experiment takes ``--outputs FILE`` or
``--stack NAME`` (docs/workload.md, "What every command shares") and resolves
settings, authentication, the tracking store and the experiment the same way,
so ``monitor`` reads where ``chat`` wrote. A command does it in two lines::

    add_source_arguments(parser)           # in add_parser: --outputs/--stack, --experiment
    context = resolve_context(args)        # in run: a WorkloadContext, or one SettingsError

The rules themselves live beside their settings: :mod:`workload.config.outputs` (the
stack's outputs), :mod:`workload.config.settings` (the model's settings and the
experiment: ``--experiment``, else ``MLFLOW_EXPERIMENT_NAME``, else the stack's
``mlflow_experiment_path`` when tracking to Databricks, else ``llmops-lab``),
:mod:`workload.config.auth_mode` (key or Entra ID). A command that writes to the experiment
then makes it MLflow's active one with :func:`use_experiment` (``chat`` and
``eval`` alike).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workload.config.defaults import DEFAULT_EXPERIMENT
from workload.errors import SettingsError, first_line

if TYPE_CHECKING:
    from workload.config.settings import ChatSettings

__all__ = [
    "WorkloadContext",
    "add_source_arguments",
    "add_via_argument",
    "command_parser",
    "resolve_context",
    "use_experiment",
]

_EXPERIMENT_HELP = (
    "MLflow experiment (else MLFLOW_EXPERIMENT_NAME, else the stack's mlflow_experiment_path "
    f"when tracking to Databricks, else {DEFAULT_EXPERIMENT})"
)


def add_source_arguments(parser: argparse.ArgumentParser, *, experiment: bool = True) -> None:
    """Add ``--outputs FILE`` | ``--stack NAME`` and (unless told not to) ``--experiment``."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--outputs",
        metavar="FILE",
        help="the JSON of `pulumi stack output --json --show-secrets`",
    )
    source.add_argument(
        "--stack", metavar="NAME", help="read the outputs of this stack with the pulumi CLI"
    )
    if experiment:
        parser.add_argument("--experiment", metavar="NAME", help=_EXPERIMENT_HELP)


def add_via_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--via gateway|direct``: how a command that calls the model reaches it."""
    parser.add_argument(
        "--via",
        choices=("gateway", "direct"),
        help="reach the model through the stack's Databricks serving endpoint (AI Gateway) "
        "or directly (else LLMOPS_VIA, else gateway when the stack's outputs or "
        "LLMOPS_GATEWAY_ENDPOINT name an endpoint)",
    )


def command_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    summary: str,
    description: str,
) -> argparse.ArgumentParser:
    """A command that reads a stack: its description kept as written, and the source
    arguments every such command takes (``--outputs``/``--stack``, ``--experiment``).

    Each command's ``add_parser`` opens with this call and its own name, summary and
    description: those few lines are the command's declaration, not shared logic, so they
    stay beside the command's other arguments rather than in a table here.
    """
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser)
    return parser


@dataclass(frozen=True)
class WorkloadContext:
    """The resolved stack outputs, model settings and experiment of one command run."""

    outputs: Mapping[str, Any]
    """The stack outputs (empty when neither ``--outputs`` nor ``--stack`` was given)."""
    experiment: str
    """The MLflow experiment the command writes to or reads from."""
    model_settings: ChatSettings | None
    """The model's settings and authentication; None for a command that does not call it."""

    @property
    def settings(self) -> ChatSettings:
        """The model's settings; only for a context resolved with ``model=True``."""
        if self.model_settings is None:
            raise RuntimeError("this context was resolved without the model (model=False)")
        return self.model_settings


def resolve_context(
    args: argparse.Namespace,
    *,
    model: bool = True,
    require_outputs: bool = False,
    env: MutableMapping[str, str] | None = None,
    check: Callable[[Mapping[str, Any], Mapping[str, str]], None] | None = None,
) -> WorkloadContext:
    """Resolve what the command needs from its arguments and the environment.

    Reads ``args.outputs``/``args.stack`` and, when present, ``args.experiment``,
    ``args.model`` (an OpenAI-compatible server's model) and ``args.via`` (``--via``).
    ``model=False`` skips the model's settings (the monitor reads traces only).
    ``require_outputs`` refuses a run without ``--outputs``/``--stack``. When MLflow
    tracks to Databricks, the workspace's host is added to ``env`` (``os.environ`` by
    default) for MLflow to find. ``check(outputs, env)`` is a command's own settings check,
    run with the others, before anything is reached.
    Raises one :class:`SettingsError` (exit 2) before anything is sent, or a
    :class:`~workload.errors.ServiceError` (exit 1) when the tracking server cannot be
    reached (:mod:`workload.config.reachability`).
    """
    from workload.config.outputs import load_outputs
    from workload.config.reachability import check_tracking_store
    from workload.config.settings import (
        check_databricks_workspace,
        resolve_experiment,
        resolve_settings,
        tracking_env,
    )

    environ: MutableMapping[str, str] = os.environ if env is None else env
    outputs_file = getattr(args, "outputs", None)
    stack = getattr(args, "stack", None)
    if require_outputs and outputs_file is None and stack is None:
        raise SettingsError("say which stack: --stack NAME or --outputs FILE")
    outputs = load_outputs(outputs_file, stack)
    settings = (
        resolve_settings(
            outputs, environ, model=getattr(args, "model", None), via=getattr(args, "via", None)
        )
        if model
        else None
    )
    experiment = resolve_experiment(getattr(args, "experiment", None), outputs, environ)
    environ.update(tracking_env(outputs, environ))
    check_databricks_workspace(environ)
    if check is not None:
        check(outputs, environ)
    # An unreachable tracking server fails here in seconds, not after MLflow's retries.
    check_tracking_store(environ)
    return WorkloadContext(outputs=outputs, experiment=experiment, model_settings=settings)


#: The experiment this process last made active, by tracking URI and name: its id.
_active_experiment: dict[tuple[str, str], str] = {}


def use_experiment(name: str) -> str:
    """Make ``name`` the active MLflow experiment, unless this process already did; its id.

    ``mlflow.set_experiment`` resets MLflow's tracer provider, which waits for the
    trace export thread: about 0.15 s a call (bench/tracing_overhead.py). A process
    making many calls pays it once, for as long as the tracking URI, the name and the
    active experiment (``MLFLOW_EXPERIMENT_ID``, which set_experiment records) stay.
    Raises :class:`SettingsError` when the tracking store refuses the experiment.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    key = (mlflow.get_tracking_uri(), name)
    known = _active_experiment.get(key)
    if known is not None and os.environ.get("MLFLOW_EXPERIMENT_ID") == known:
        return known
    try:
        experiment_id = str(mlflow.set_experiment(name).experiment_id)
    except MlflowException as err:
        raise SettingsError(
            f"cannot use MLflow experiment {name!r} at {mlflow.get_tracking_uri()}: "
            f"{first_line(err)}"
        ) from None
    _active_experiment.clear()
    _active_experiment[key] = experiment_id
    return experiment_id
