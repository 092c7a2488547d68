"""Promote and roll back: move an alias to a version only when its evaluation says so.

A candidate is an eval run of a registered version (its tag ``llmops.prompt_version``).
It is promoted when its own ``--fail-under`` gates held (the eval records them as
the run tag ``llmops.gates``) and no scorer regressed against a baseline: the
newest eval run, on the same dataset, of the version the alias names now. The
regression test is ``compare``'s, the one implementation
(:mod:`workload.evaluation.compare`); only the pairing key is adjusted here: a
row whose system message is its version's own is keyed by its inputs alone, since
the rendered system message differs between versions by design. Datasets are
told apart by the digest MLflow records for the run's dataset input (its content,
not its path).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from workload.errors import SettingsError
from workload.evaluation.compare import compare_rows, load_run_rows
from workload.model.trace_tags import PROMPT_VERSION_TAG
from workload.monitoring.traces import EVAL_RUN_NAME
from workload.releases.registry import (
    alias_version,
    history,
    now,
    record_move,
    registered_template,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from workload.evaluation.compare import EvalRowResult

__all__ = ["GATES_TAG", "Decision", "gates_tag", "promote", "rollback"]

#: The eval run's tag recording its ``--fail-under`` gates: ``held`` or ``failed: <why>``.
GATES_TAG: Final = "llmops.gates"


def gates_tag(failed: list[str]) -> str:
    """The value of :data:`GATES_TAG` for a run whose failed gates are ``failed``."""
    return f"failed: {'; '.join(failed)}" if failed else "held"


@dataclass(frozen=True)
class Decision:
    """What promote decided (``--json``)."""

    promoted: bool
    alias: str
    from_version: int | None
    to_version: int
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """``promoted``, ``alias``, ``from_version``, ``to_version``, ``reasons``."""
        return {
            "promoted": self.promoted,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "reasons": list(self.reasons),
        }


def _eval_run(client: MlflowClient, run_id: str, name: str) -> tuple[Run, int]:
    """The eval run and the version of ``name`` it evaluated; SettingsError otherwise."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise SettingsError(f"run {run_id!r} is not in the tracking store") from None
    label = run.data.tags.get(PROMPT_VERSION_TAG, "")
    prompt, _, version = label.rpartition("/")
    if run.info.run_name != EVAL_RUN_NAME or prompt != name or not version.isdigit():
        raise SettingsError(
            f"run {run_id!r} is not an eval run of a registered version of {name!r} "
            f"(its {PROMPT_VERSION_TAG}: {label or 'none'}; run `eval --prompt-version N`)"
        )
    return run, int(version)


def _digest(run: Run) -> str | None:
    """The digest MLflow recorded for the run's evaluation dataset (its content)."""
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    return inputs[0].dataset.digest if inputs else None


def _newest_baseline(client: MlflowClient, run: Run, name: str, version: int) -> str:
    """The newest eval run of ``name``/``version`` on ``run``'s dataset."""
    label = f"{name}/{version}"
    candidates = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"attributes.run_name = '{EVAL_RUN_NAME}' "
        f"and tags.`{PROMPT_VERSION_TAG}` = '{label}'",
        order_by=["attributes.start_time DESC"],
        max_results=100,
    )
    digest = _digest(run)
    for candidate in candidates:
        if _digest(candidate) == digest:
            return str(candidate.info.run_id)
    raise SettingsError(
        f"no baseline: no eval run of {label} on the same dataset (digest {digest}); run "
        f"`eval --prompt-version {version}` on it first, or give --baseline RUN_ID"
    )


def _by_dataset_inputs(
    rows: list[EvalRowResult], name: str, version: int, client: MlflowClient
) -> list[EvalRowResult]:
    """The rows keyed by the dataset row's own inputs: the version's own system message
    (which differs between versions by design) is left out of the key."""
    template = registered_template(client.get_prompt_version(name, version))
    own = {m["content"] for m in template.template if m["role"] == "system"}
    return [replace(row, system_prompt=None) if row.system_prompt in own else row for row in rows]


def promote(
    client: MlflowClient,
    name: str,
    run_id: str,
    *,
    alias: str,
    baseline: str | None,
    alpha: float,
) -> Decision:
    """Move ``alias`` to the version eval run ``run_id`` evaluated, or say why not."""
    import mlflow

    run, to_version = _eval_run(client, run_id, name)
    current = alias_version(name, alias)
    if current == to_version:
        raise SettingsError(f"{alias} already names version {to_version}: nothing to promote")
    if baseline is None:
        if current is None:
            raise SettingsError(
                f"no baseline: alias {alias!r} names no version yet; give --baseline RUN_ID"
            )
        baseline = _newest_baseline(client, run, name, current)
    base_run, base_version = _eval_run(client, baseline, name)
    if _digest(base_run) != _digest(run):
        raise SettingsError(
            f"the datasets differ: run {baseline} evaluated digest {_digest(base_run)}, "
            f"run {run_id} digest {_digest(run)} (promote compares the same rows)"
        )
    reasons = []
    gates = run.data.tags.get(GATES_TAG, "held")
    if gates != "held":
        reasons.append(f"the run's --fail-under gates {gates}")
    rows_a = _by_dataset_inputs(load_run_rows(client, baseline), name, base_version, client)
    rows_b = _by_dataset_inputs(load_run_rows(client, run_id), name, to_version, client)
    comparison = compare_rows(baseline, rows_a, run_id, rows_b, alpha=alpha)
    if comparison.paired == 0:
        raise SettingsError(f"no row of run {run_id} pairs with a row of baseline {baseline}")
    reasons += [
        f"{s.name} regressed against {baseline} (version {base_version}): pass rate "
        f"{s.pass_rate_a:.2f} -> {s.pass_rate_b:.2f}, p = {s.p_value:.3g} < {alpha:g}"
        for s in comparison.scorers
        if s.regressed
    ]
    if reasons:
        return Decision(False, alias, current, to_version, tuple(reasons))
    mlflow.genai.set_prompt_alias(name=name, alias=alias, version=to_version)
    _record(name, alias, "promote", current, to_version, run_id)
    return Decision(True, alias, current, to_version)


def rollback(name: str, alias: str) -> tuple[int | None, int]:
    """Point ``alias`` back at the version it named before its last promote."""
    import mlflow

    promotes = [move for move in history(name, alias) if move.get("action") == "promote"]
    if not promotes or promotes[-1].get("from_version") is None:
        raise SettingsError(f"{alias} of {name!r} was never moved by promote: nothing to roll back")
    back = int(promotes[-1]["from_version"])
    current = alias_version(name, alias)
    mlflow.genai.set_prompt_alias(name=name, alias=alias, version=back)
    _record(name, alias, "rollback", current, back, None)
    return current, back


def _record(
    name: str, alias: str, action: str, from_version: int | None, to: int, run_id: str | None
) -> None:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in a container's environment
        user = "unknown"
    record_move(
        name,
        alias,
        {
            "action": action,
            "from_version": from_version,
            "to_version": to,
            "run_id": run_id,
            "time": now(),
            "user": user,
        },
    )
