"""Two evaluations of one dataset, row by row: did the pass rates change, and did they fall?

Every prompt, model or version change asks the same question: the same rows,
judged before and after, does the second run pass fewer of them than chance
would explain? The rows are the same, so the verdicts are paired, and the test
for paired yes/no verdicts is McNemar's: only the rows whose verdict flipped
carry information, and under "no change" a flip is as likely either way. The
question is one-sided (only a fall pages anyone, as in the monitor's verdicts),
so the test is too: the exact one-sided binomial test of the flips on p = 1/2,
"more rows went from pass to fail than from fail to pass"
(``scipy.stats.binomtest``, alternative "greater"). A scorer regressed when its
pass rate fell and that p-value is below ``alpha``; :func:`mcnemar_regression`
is that one test, for every caller (``compare``, a promotion gate).

Rows are paired by the dataset row they ran: each eval row's trace carries the
tag ``llmops.eval_row``, a digest of the row's whole inputs and expectations
(:func:`workload.evaluation.dataset.row_key`), so two rows with one prompt and
different guidelines never pair, and neither does the order the store returns
traces in. Rows that still cannot be told apart (the same inputs and
expectations twice in a run) are listed as unpaired, never paired by guess, and
so is a row present in one run only. Runs made before the tag pair by what their
traces show (the messages sent and the expectations logged). A verdict the
judge could not give (a judge error) leaves that row out of that scorer's
pairs; a row whose own call failed counts as failed, as in the eval's own pass
rates.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from workload.errors import SettingsError
from workload.evaluation.dataset import ROW_KEY_TAG, row_key

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Trace

__all__ = [
    "DEFAULT_ALPHA",
    "Comparison",
    "EvalRowResult",
    "ScorerComparison",
    "compare_rows",
    "load_run_rows",
    "mcnemar_regression",
]

#: The significance level of a regression, unless ``--alpha`` says otherwise.
DEFAULT_ALPHA: Final = 0.05

#: A judge assessment's error code when the row's own call failed (the row failed).
_NO_RESPONSE: Final = "NO_RESPONSE"


@dataclass(frozen=True)
class EvalRowResult:
    """One row of an eval run: its inputs, expectations and each scorer's verdict."""

    prompt: str
    system_prompt: str | None
    verdicts: Mapping[str, bool | None]
    """Per scorer: True passed, False failed, None no verdict (a judge error)."""
    expectations: Mapping[str, Any] = field(default_factory=dict)
    """The expectations logged on the row's trace (the dataset row's ``guidelines``)."""
    row_key: str | None = None
    """The dataset row's key (the trace's ``llmops.eval_row`` tag); None before the tag."""

    @property
    def trace_key(self) -> str:
        """The same kind of key, from what the trace shows: the messages and expectations."""
        inputs = {"prompt": self.prompt, "system_prompt": self.system_prompt}
        return row_key({"inputs": inputs, "expectations": dict(self.expectations)})

    def described(self) -> dict[str, Any]:
        """The row as the JSON lists it: ``prompt``, ``system_prompt``, ``expectations``."""
        return {
            "prompt": self.prompt,
            "system_prompt": self.system_prompt,
            "expectations": dict(self.expectations),
        }


@dataclass(frozen=True)
class ScorerComparison:
    """One scorer over the paired rows it gave a verdict on in both runs."""

    name: str
    n: int
    pass_rate_a: float | None
    pass_rate_b: float | None
    passed_then_failed: int
    failed_then_passed: int
    p_value: float
    regressed: bool

    @property
    def change(self) -> float | None:
        """B's pass rate less A's."""
        if self.pass_rate_a is None or self.pass_rate_b is None:
            return None
        return self.pass_rate_b - self.pass_rate_a


@dataclass(frozen=True)
class Comparison:
    """The whole comparison, as ``--json`` prints it."""

    run_a: str
    run_b: str
    alpha: float
    paired: int
    scorers: tuple[ScorerComparison, ...]
    flipped: tuple[dict[str, Any], ...]
    unpaired: tuple[dict[str, Any], ...] = field(default=())

    @property
    def regressed(self) -> bool:
        """Some scorer's pass rate fell significantly."""
        return any(s.regressed for s in self.scorers)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready object (DESIGN's ``scorers``, ``flipped``, ``unpaired`` and more)."""
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "alpha": self.alpha,
            "paired": self.paired,
            "regressed": self.regressed,
            "scorers": [
                {
                    "name": s.name,
                    "n": s.n,
                    "pass_rate_a": s.pass_rate_a,
                    "pass_rate_b": s.pass_rate_b,
                    "change": s.change,
                    "passed_then_failed": s.passed_then_failed,
                    "failed_then_passed": s.failed_then_passed,
                    "p_value": s.p_value,
                    "regressed": s.regressed,
                }
                for s in self.scorers
            ],
            "flipped": list(self.flipped),
            "unpaired": list(self.unpaired),
        }


def mcnemar_regression(
    passed_then_failed: int, failed_then_passed: int, *, alpha: float = DEFAULT_ALPHA
) -> tuple[float, bool]:
    """McNemar's exact one-sided test for a fall: ``(p_value, regressed)``.

    The p-value is the chance, with no real change (each flip either way with
    probability 1/2), of at least ``passed_then_failed`` of the flips going from pass
    to fail: ``binomtest(passed_then_failed, flips, 1/2, alternative="greater")``. Five
    rows flipping to fail and none back give (1/2)^5 = 0.031: a regression at 0.05.
    ``regressed`` is p < ``alpha`` with more rows lost than won (the pass rate fell).
    """
    flips = passed_then_failed + failed_then_passed
    if flips == 0:
        return 1.0, False
    from scipy.stats import binomtest

    p_value = float(binomtest(passed_then_failed, flips, 0.5, alternative="greater").pvalue)
    return p_value, passed_then_failed > failed_then_passed and p_value < alpha


def _unpaired(run: str, row: EvalRowResult, reason: str) -> dict[str, Any]:
    return {"run": run, **row.described(), "reason": reason}


def _pairs(
    rows_a: Sequence[EvalRowResult], rows_b: Sequence[EvalRowResult]
) -> tuple[list[tuple[EvalRowResult, EvalRowResult]], list[dict[str, Any]]]:
    """Rows whose key is once in each run pair; the rest are unpaired, each saying why."""
    tagged = all(row.row_key is not None for row in (*rows_a, *rows_b))

    def key(row: EvalRowResult) -> str:
        return row.row_key if tagged and row.row_key is not None else row.trace_key

    count_a, count_b = Counter(map(key, rows_a)), Counter(map(key, rows_b))
    in_b = {key(row): row for row in rows_b}
    pairs: list[tuple[EvalRowResult, EvalRowResult]] = []
    unpaired: list[dict[str, Any]] = []
    for run, rows, mine, theirs in (
        ("a", rows_a, count_a, count_b),
        ("b", rows_b, count_b, count_a),
    ):
        for row in rows:
            k = key(row)
            if mine[k] == 1 and theirs[k] == 1:
                if run == "a":
                    pairs.append((row, in_b[k]))
            elif not theirs[k]:
                unpaired.append(_unpaired(run, row, "only in this run"))
            else:
                unpaired.append(
                    _unpaired(
                        run,
                        row,
                        f"not told apart ({count_a[k]} alike in run A, {count_b[k]} in run B)",
                    )
                )
    return pairs, unpaired


def compare_rows(
    run_a: str,
    rows_a: Sequence[EvalRowResult],
    run_b: str,
    rows_b: Sequence[EvalRowResult],
    *,
    alpha: float = DEFAULT_ALPHA,
) -> Comparison:
    """Pair the rows, and compare each scorer's verdicts on its pairs."""
    pairs, unpaired = _pairs(rows_a, rows_b)
    names = sorted({name for a, b in pairs for name in (*a.verdicts, *b.verdicts)})
    scorers: list[ScorerComparison] = []
    flipped: list[dict[str, Any]] = []
    for name in names:
        both = [
            (a, b, a.verdicts.get(name), b.verdicts.get(name))
            for a, b in pairs
            if a.verdicts.get(name) is not None and b.verdicts.get(name) is not None
        ]
        n = len(both)
        lost = [a for a, _, va, vb in both if va and not vb]
        won = [a for a, _, va, vb in both if vb and not va]
        rate_a = sum(1 for *_, va, _ in both if va) / n if n else None
        rate_b = sum(1 for *_, vb in both if vb) / n if n else None
        p_value, regressed = mcnemar_regression(len(lost), len(won), alpha=alpha)
        scorers.append(
            ScorerComparison(name, n, rate_a, rate_b, len(lost), len(won), p_value, regressed)
        )
        for rows, a_passed in ((lost, True), (won, False)):
            flipped.extend(
                {"scorer": name, **row.described(), "a": a_passed, "b": not a_passed}
                for row in rows
            )
    return Comparison(
        run_a, run_b, alpha, len(pairs), tuple(scorers), tuple(flipped), tuple(unpaired)
    )


def _verdict(feedback: Any) -> bool | str | None:
    """True/False for a verdict, None for a judge error, "skip" for anything else."""
    error = getattr(feedback, "error", None)
    if error is not None:
        return False if getattr(error, "error_code", None) == _NO_RESPONSE else None
    value = getattr(feedback, "value", None)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return value.strip().lower() == "yes"
    return "skip"


def _inputs(request: Any) -> tuple[str | None, str | None]:
    """The row's prompt and system prompt, from its trace's request.

    A row's trace is the autologged chat call (its request the completion's body:
    the system and user messages); a trace of MLflow's own predict span would carry
    the row's inputs (``prompt``, ``system_prompt``) instead.
    """
    if not isinstance(request, dict):
        return None, None
    if isinstance(request.get("prompt"), str):
        system = request.get("system_prompt")
        return request["prompt"], system if isinstance(system, str) else None
    by_role: dict[str, str] = {}
    for message in request.get("messages") or []:
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            by_role[str(message.get("role"))] = message["content"]
    return by_role.get("user"), by_role.get("system")


def _row(trace: Trace) -> EvalRowResult | None:
    from mlflow.entities import Expectation, Feedback

    try:
        inputs = json.loads(trace.data.request or "null")
    except (TypeError, ValueError):
        return None
    prompt, system = _inputs(inputs)
    if prompt is None:
        return None
    latest: dict[str, tuple[int, bool | None]] = {}
    expectations: dict[str, Any] = {}
    for assessment in trace.info.assessments or []:
        if isinstance(assessment, Expectation) and assessment.valid is not False:
            expectations[assessment.name] = assessment.value
        if not isinstance(assessment, Feedback) or assessment.valid is False:
            continue
        verdict = _verdict(assessment)
        if verdict == "skip":
            continue
        when = assessment.last_update_time_ms or assessment.create_time_ms or 0
        if assessment.name not in latest or when >= latest[assessment.name][0]:
            latest[assessment.name] = (when, verdict if isinstance(verdict, bool) else None)
    return EvalRowResult(
        prompt,
        system,
        {name: verdict for name, (_, verdict) in latest.items()},
        expectations,
        (trace.info.tags or {}).get(ROW_KEY_TAG),
    )


def _traces(client: MlflowClient, experiment_id: str, run_id: str) -> Iterable[Trace]:
    token: str | None = None
    while True:
        page = client.search_traces(
            locations=[experiment_id], run_id=run_id, max_results=100, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def load_run_rows(client: MlflowClient, run_id: str) -> list[EvalRowResult]:
    """The scored rows of eval run ``run_id``; SettingsError when it is not one."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise SettingsError(
            f"run {run_id!r} is not in the tracking store (check the run id and "
            "MLFLOW_TRACKING_URI or --outputs/--stack)"
        ) from None
    rows = [
        row
        for trace in _traces(client, run.info.experiment_id, run_id)
        if (row := _row(trace)) is not None and row.verdicts
    ]
    if not rows:
        raise SettingsError(
            f"run {run_id!r} is not an eval run: none of its traces carries a scored row "
            "(compare takes the run ids `eval` prints)"
        )
    return rows
