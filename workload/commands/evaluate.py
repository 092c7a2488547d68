"""``python -m workload eval``: score a prompt set within the deployment's rate limits.

Everything is checked before anything is sent (exit 2): the dataset, the
settings, the budgets and every ``--fail-under`` gate, which must name a
scorer of this run. Then the rows run through ``workload.evaluation.runner``; the
table or the JSON goes to stdout, and nothing else does.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from workload import contract
from workload.commands.arguments import bounded
from workload.commands.prompt import add_prompt_version_arguments
from workload.config.context import add_via_argument, command_parser
from workload.config.via import Via, gateway_judge_endpoint

if TYPE_CHECKING:
    from workload.evaluation.runner import EvalSummary

__all__ = ["EXIT_GATE", "Budgets", "add_parser", "resolve_budgets", "run"]

#: Exit status when a --fail-under gate failed (not an error: the check worked).
EXIT_GATE: Final = 3

_DESCRIPTION = """\
Run a dataset through the lab's traced chat call and score it with
mlflow.genai.evaluate: code scorers (reply_received, within_completion_budget)
and MLflow's Guidelines judges (expectations_guidelines on each row's own
guidelines, guidelines on every --guideline), judged by the judge deployment
(LLMOPS_JUDGE_DEPLOYMENT or the stack output openai_judge_deployment, else the
chat deployment). Each row leaves a trace in the experiment with its scores
attached; the judges' own calls leave none.

Every request, the judges' included, is paced evenly within --tpm and --rpm
(tokens counted as Azure counts them at admission: prompt plus max_tokens),
as Azure evaluates its limits over windows of seconds, not minutes.

Through the stack's AI Gateway (--via gateway, the default when the stack has
one) the rows go to its serving endpoint and the judges to the judge's, with
your Databricks identity, paced by the gateway's limit
(databricks_gateway_tokens_per_minute: the per-user limit when set).

A judge that gives no verdict (its call failed after retries, its answer was
cut off or unparsable) is a judge error, counted per scorer, never a "no"; a
pass rate counts the verdicts and the rows whose own call failed. Each rate is
logged on the run as the metric <scorer>/pass_rate.

Exit status: 0 done, 1 the service refused (401/403/404, at once), every row
failed or every judge call of a scorer failed (the result is printed first),
2 bad settings or input (nothing sent), 3 a --fail-under gate failed.
"""

#: Each judge answer's max_tokens: room for the detailed rationale MLflow's prompt asks for
#: (some 380 words); a longer answer is retried once with 4x the room. At the lab's 10K TPM
#: a judge call (its prompt about 440 tokens) then takes one 10 s window's share to itself.
JUDGE_MAX_TOKENS: Final = 512


_positive = bounded(int, lambda n: n >= 1, "a whole number of at least 1")


def _gate(text: str) -> tuple[str, float]:
    name, sep, rate = text.partition("=")
    try:
        value = float(rate)
    except ValueError:
        value = -1.0
    if not sep or not name.strip() or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            "must be NAME=RATE with RATE between 0 and 1, e.g. expectations_guidelines=0.9"
        )
    return name.strip(), value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the sub-command."""
    parser = command_parser(
        subparsers,
        "eval",
        summary="score a prompt set with MLflow's scorers and judges, within the rate limits",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "--dataset",
        metavar="FILE",
        help='JSON Lines: {"inputs": {"prompt": ...}, "expectations": {"guidelines": '
        "[...]}} per line (default: the lab's prompt set shipped in the package)",
    )
    parser.add_argument(
        "--model", metavar="NAME", help="model name for an OpenAI-compatible server"
    )
    add_via_argument(parser)
    parser.add_argument(
        "--tpm",
        type=_positive,
        metavar="N",
        help="the chat deployment's tokens per minute (default: LLMOPS_TOKENS_PER_MINUTE, "
        "else, through the gateway, the output databricks_gateway_tokens_per_minute, else "
        "the output openai_tokens_per_minute, else 10000)",
    )
    parser.add_argument(
        "--rpm",
        type=_positive,
        metavar="N",
        help="its requests per minute (default: 6 per 1,000 TPM)",
    )
    parser.add_argument(
        "--judge-tpm",
        type=_positive,
        metavar="N",
        help="the judge deployment's tokens per minute (default: "
        "LLMOPS_JUDGE_TOKENS_PER_MINUTE, else openai_judge_tokens_per_minute); "
        "judges on the chat deployment share its budget",
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=4, metavar="N", help="requests in flight (4)"
    )
    parser.add_argument(
        "--max-tokens",
        type=_positive,
        default=256,
        metavar="N",
        help="each row's completion budget, max_tokens (256)",
    )
    parser.add_argument(
        "--judge-max-tokens",
        type=_positive,
        default=JUDGE_MAX_TOKENS,
        metavar="N",
        help=f"each judge answer's max_tokens ({JUDGE_MAX_TOKENS}); an answer cut off there "
        "is asked again once with four times the room",
    )
    parser.add_argument(
        "--guideline",
        action="append",
        default=[],
        metavar="TEXT",
        help="a guideline every reply must follow (repeatable): the 'guidelines' judge",
    )
    parser.add_argument(
        "--no-judge", action="store_true", help="code scorers only: no judge calls at all"
    )
    parser.add_argument(
        "--fail-under",
        action="append",
        default=[],
        type=_gate,
        metavar="NAME=RATE",
        help=f"exit {EXIT_GATE} when scorer NAME's pass rate is below RATE (repeatable)",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=5,
        metavar="N",
        help="retries of one request on 429, 5xx and timeouts, honouring Retry-After (5)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="per attempt (60)"
    )
    add_prompt_version_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Budgets:
    """The rate limits of the chat deployment and of the judge deployment."""

    chat_tpm: int
    chat_rpm: int
    judge_deployment: str
    """The judges' deployment: the chat deployment when there is no judge deployment."""
    judge_tpm: int
    judge_rpm: int

    @property
    def shared(self) -> bool:
        """The judges run on the chat deployment and share its budget."""
        return self.judge_tpm == 0


def _setting(
    name: str, env: Mapping[str, str], variable: str, outputs: Mapping[str, Any], output: str
) -> tuple[str, Any]:
    value = (env.get(variable) or "").strip()
    if value:
        return variable, value
    return f"stack output {output}", outputs.get(output)


def _count(source: str, raw: Any, problems: list[str]) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = -1
    if value < 0 or isinstance(raw, bool):
        problems.append(f"{source} = {raw!r} is not a whole number of tokens per minute")
        return None
    return value


def resolve_budgets(
    args: argparse.Namespace,
    outputs: Mapping[str, Any],
    env: Mapping[str, str],
    chat_deployment: str,
    *,
    via: Via = "direct",
) -> Budgets:
    """``--tpm``/``--rpm``/``--judge-tpm``, else the cluster's variables, else the outputs.

    Through the gateway the deployments are the serving endpoints, the chat budget the
    gateway's limit (``databricks_gateway_tokens_per_minute``: the per-user limit when one
    is set, else the deployment's), and the judge endpoint's budget its deployment's TPM,
    at most that limit (a per-user limit holds on every endpoint); RPM by Azure's ratio.
    """
    from workload.errors import SettingsError
    from workload.model.pacing import DEFAULT_TOKENS_PER_MINUTE, default_rpm

    problems: list[str] = []
    source, raw = _setting(
        "tpm", env, contract.ENV_TOKENS_PER_MINUTE, outputs, contract.OPENAI_TOKENS_PER_MINUTE
    )
    gateway_tpm = None
    if via == "gateway":
        gateway_tpm = _count(
            f"stack output {contract.DATABRICKS_GATEWAY_TOKENS_PER_MINUTE}",
            outputs.get(contract.DATABRICKS_GATEWAY_TOKENS_PER_MINUTE),
            problems,
        )
        if not (env.get(contract.ENV_TOKENS_PER_MINUTE) or "").strip() and gateway_tpm:
            source, raw = (
                f"stack output {contract.DATABRICKS_GATEWAY_TOKENS_PER_MINUTE}",
                gateway_tpm,
            )
    chat_tpm = args.tpm or _count(source, raw, problems) or DEFAULT_TOKENS_PER_MINUTE
    if via == "gateway":
        judge: Any = gateway_judge_endpoint(outputs, env)
    else:
        _, judge = _setting(
            "judge", env, contract.ENV_JUDGE_DEPLOYMENT, outputs, contract.OPENAI_JUDGE_DEPLOYMENT
        )
    judge_deployment = str(judge).strip() if isinstance(judge, str) and judge.strip() else ""
    source, raw = _setting(
        "judge tpm",
        env,
        contract.ENV_JUDGE_TOKENS_PER_MINUTE,
        outputs,
        contract.OPENAI_JUDGE_TOKENS_PER_MINUTE,
    )
    judge_tpm = _count(source, raw, problems)
    if problems:
        raise SettingsError("; ".join(problems))
    if not judge_deployment or judge_deployment == chat_deployment:
        if args.judge_tpm:
            raise SettingsError(
                "--judge-tpm is given but there is no judge deployment (set "
                "LLMOPS_JUDGE_DEPLOYMENT or llmops:judgeModel); judges on the chat "
                "deployment share --tpm"
            )
        return Budgets(chat_tpm, args.rpm or default_rpm(chat_tpm), chat_deployment, 0, 0)
    judge_tpm = args.judge_tpm or judge_tpm or DEFAULT_TOKENS_PER_MINUTE
    if gateway_tpm and not args.judge_tpm:
        judge_tpm = min(judge_tpm, gateway_tpm)
    return Budgets(
        chat_tpm,
        args.rpm or default_rpm(chat_tpm),
        judge_deployment,
        judge_tpm,
        default_rpm(judge_tpm),
    )


def _table(summary: EvalSummary, gates: list[tuple[str, float]]) -> str:
    rows = [("scorer", "pass rate", "mean", "n", "judge errors", "gate")]
    for scorer in summary.scorers:
        gate = next((rate for name, rate in gates if name == scorer.name), None)
        rows.append(
            (
                scorer.name,
                "-" if scorer.pass_rate is None else f"{scorer.pass_rate:.0%}",
                "-" if scorer.mean is None else f"{scorer.mean:.4g}",
                str(scorer.n),
                str(scorer.judge_errors),
                "-" if gate is None else f">= {gate:.0%}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    head = (
        f"run {summary.run_id} (experiment id {summary.experiment_id}): {summary.rows} rows, "
        f"{summary.errors} failed; {summary.requests} requests, {summary.throttled} x 429"
    )
    return "\n".join([head, "", *lines, "", *_footer(summary)])


def _footer(summary: EvalSummary) -> list[str]:
    """Which of the run's two rates gates, and why it can differ from MLflow's own."""
    failed = (
        "none failed here, so the two agree"
        if not summary.errors
        else f"{summary.errors} failed here, so /mean reads higher"
    )
    return [
        "pass rate: the run's metric <scorer>/pass_rate, the one --fail-under gates; a row "
        "whose own call failed counts as failed",
        "(a deployment that stops answering must not pass). MLflow's own <scorer>/mean "
        f"beside it leaves those rows out: {failed}.",
    ]


def _failed_gates(summary: EvalSummary, gates: list[tuple[str, float]]) -> list[str]:
    failed = []
    for name, rate in gates:
        scorer = summary.scorer(name)
        if scorer is None or scorer.pass_rate is None or scorer.pass_rate < rate:
            got = (
                "none" if scorer is None or scorer.pass_rate is None else f"{scorer.pass_rate:.0%}"
            )
            failed.append(f"{name} {got} < {rate:.0%}")
    return failed


def _record_gates(run_id: str, failed: list[str]) -> None:
    """The run's tag ``llmops.gates``: what ``promote`` reads to know the gates held."""
    from mlflow import MlflowClient

    from workload.releases.promotion import GATES_TAG, gates_tag

    MlflowClient().set_tag(run_id, GATES_TAG, gates_tag(failed))


def run(args: argparse.Namespace) -> int:
    """Check everything, evaluate, print, apply the gates."""
    import contextlib
    import json
    import sys

    from workload.config.context import resolve_context
    from workload.errors import ServiceError, SettingsError
    from workload.evaluation.dataset import load_dataset
    from workload.evaluation.runner import EvalPlan, scorer_names

    bad = [f"--max-retries {args.max_retries} is below 0"] if args.max_retries < 0 else []
    bad += [f"--timeout {args.timeout:g} is not above 0"] if not args.timeout > 0 else []
    if args.no_judge and args.guideline:
        bad.append("--guideline needs the judges: drop --no-judge, or the --guideline")
    if bad:
        raise SettingsError("; ".join(bad))
    rows = load_dataset(args.dataset)
    # The one code path every command takes: outputs, model and authentication,
    # tracking store and experiment.
    context = resolve_context(args)
    outputs, settings, experiment = context.outputs, context.settings, context.experiment

    budgets = resolve_budgets(args, outputs, os.environ, settings.model, via=settings.via)
    guidelines = tuple(g.strip() for g in args.guideline if g.strip())
    plan = EvalPlan(
        experiment=experiment,
        chat_model=settings.model,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        guidelines=guidelines,
        judges=not args.no_judge,
        params={
            "dataset": args.dataset or "(shipped) lab_prompts.jsonl",
            "rows": str(len(rows)),
            "deployment": settings.model,
            "tokens_per_minute": str(budgets.chat_tpm),
            "requests_per_minute": str(budgets.chat_rpm),
            "max_tokens": str(args.max_tokens),
            "judge_deployment": "(none)" if args.no_judge else budgets.judge_deployment,
            "judge_tokens_per_minute": str(budgets.judge_tpm or budgets.chat_tpm),
            "concurrency": str(args.concurrency),
            "via": settings.via,
        },
    )
    known = scorer_names(rows, plan)
    unknown = [name for name, _ in args.fail_under if name not in known]
    if unknown:
        raise SettingsError(
            f"--fail-under names no scorer of this run: {', '.join(unknown)} "
            f"(this run's scorers: {', '.join(known)})"
        )

    from workload.evaluation.judges import JudgeClient
    from workload.evaluation.runner import run_evaluation
    from workload.model.chat import make_client
    from workload.model.gateway import DATABRICKS_CHECKS
    from workload.model.paced_client import RunControl, paced_client
    from workload.model.pacing import Budget, Pacer
    from workload.model.trace_tags import tag_traces
    from workload.progress import Progress, plain_stderr

    control = RunControl(args.concurrency)
    chat_pacer = Pacer(Budget(settings.model, budgets.chat_tpm, budgets.chat_rpm))
    judge_pacer = (
        chat_pacer
        if budgets.shared
        else Pacer(Budget(budgets.judge_deployment, budgets.judge_tpm, budgets.judge_rpm))
    )

    def client_for(model: str, pacer: Pacer) -> Any:
        base = make_client(
            replace(settings, model=model), max_retries=args.max_retries, timeout=args.timeout
        )
        return paced_client(base, pacer, control, timeout=args.timeout)

    chat_client = client_for(settings.model, chat_pacer)

    from workload.commands.prompt import chosen_prompt

    # A version or alias that does not exist stops here, before anything is sent (after the
    # credential: a missing one is the first thing to say, in one line).
    prompt = chosen_prompt(args, context)
    plan = replace(plan, prompt=prompt, params={**plan.params, "prompt_version": prompt.label})
    judge = None
    if not args.no_judge:
        judge_client = (
            chat_client if budgets.shared else client_for(budgets.judge_deployment, judge_pacer)
        )
        judge = JudgeClient(
            judge_client,
            budgets.judge_deployment,
            control,
            args.judge_max_tokens,
            secret=settings.secret,
        )
    pacers = [chat_pacer, judge_pacer]
    progress = Progress.for_terminal(len(rows), pacers)
    hint = {}
    if settings.via == "gateway":
        hint["stop_hint"] = (
            f"check that you, or the job's identity, have CAN_QUERY on serving endpoints "
            f"{settings.model!r} and {budgets.judge_deployment!r} (the stack grants it to the "
            f"workspace's users group), that they exist, and the credential: {DATABRICKS_CHECKS}"
        )
    with (
        progress if progress is not None else contextlib.nullcontext(),
        tag_traces(settings.via),
        # MLflow's summary goes to stderr (stdout is the result's), coloured for a terminal only.
        plain_stderr(),
    ):
        summary = run_evaluation(
            rows,
            plan,
            chat_client=chat_client,
            judge=judge,
            control=control,
            progress=progress,
            secret=settings.secret,
            pacers=pacers,
            **hint,
        )
    failed = _failed_gates(summary, args.fail_under)
    _record_gates(summary.run_id, failed)
    if args.json:
        result = {**summary.as_dict(), "passed": not failed, "prompt_version": prompt.label}
        print(json.dumps(result, indent=2))
    else:
        print(_table(summary, args.fail_under))
    if summary.errors == summary.rows:
        raise ServiceError(f"every row failed; the last: {summary.last_error}")
    silent = [s.name for s in summary.scorers if s.judge_errors and not s.verdicts]
    if silent:
        raise ServiceError(
            f"every judge call of {', '.join(silent)} failed (see judge_errors; the judge "
            "deployment, its limits or --judge-max-tokens)"
        )
    if failed:
        print(f"gate failed: {'; '.join(failed)}", file=sys.stderr)
        return EXIT_GATE
    return 0
