"""``python -m workload chat``: the lab's MLflow-traced chat call, from the stack's outputs."""

from __future__ import annotations

import argparse

from workload.commands.prompt import add_prompt_version_arguments
from workload.config.context import add_source_arguments, add_via_argument
from workload.config.defaults import LAB_USER_PROMPT

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the sub-command."""
    parser = subparsers.add_parser(
        "chat",
        help="run the lab's traced chat call",
        description=(
            "Run the lab's cell: mlflow.openai.autolog(), one MLflow run, one chat completion, "
            "log_param('completion_tokens'), print the reply. Settings come from the stack "
            "outputs (--outputs or --stack), overridden by AZURE_OPENAI_ENDPOINT, "
            "AZURE_OPENAI_API_KEY, AZURE_OPENAI_API_VERSION and AZURE_OPENAI_DEPLOYMENT. "
            "Keyless (LLMOPS_AUTH_MODE=entra, or the stack's openai_auth_mode): no key, a "
            "bearer token from AZURE_OPENAI_AD_TOKEN, the cluster's service credential "
            "(LLMOPS_SERVICE_CREDENTIAL) or DefaultAzureCredential (az login). "
            "OPENAI_BASE_URL with OPENAI_API_KEY and --model/OPENAI_MODEL selects an "
            "OpenAI-compatible server instead. Through the stack's AI Gateway (--via gateway, "
            "the default when the stack has one) the call goes to its Databricks serving "
            "endpoint with your Databricks identity (DATABRICKS_TOKEN, az login, the "
            "cluster's own), never with the key. The messages are those of the prompt version "
            "--prompt-version names (production; the packaged prompt when the registry has "
            "none). Traces go to MLFLOW_TRACKING_URI, tagged llmops.via and "
            "llmops.prompt_version. "
            "Exit status: 0 done, 1 the service refused or kept failing, 2 bad settings."
        ),
    )
    add_source_arguments(parser)
    add_via_argument(parser)
    parser.add_argument(
        "--prompt", metavar="TEXT", default=LAB_USER_PROMPT, help="the user prompt (the lab's)"
    )
    parser.add_argument(
        "--system-prompt",
        metavar="TEXT",
        help="a system prompt instead of the prompt version's messages (tagged override)",
    )
    add_prompt_version_arguments(parser)
    parser.add_argument(
        "--model", metavar="NAME", help="model name for an OpenAI-compatible server"
    )
    parser.add_argument(
        "--max-retries",
        metavar="N",
        type=int,
        default=5,
        help="retries on 429, 5xx and timeouts, with backoff that honours Retry-After (5)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=60.0,
        help="seconds to wait for each attempt (60)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the reply"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the settings (nothing is sent if they are bad), then make the traced call."""
    import json

    from workload.config.context import resolve_context
    from workload.errors import SettingsError

    bad = [f"--max-retries {args.max_retries} is below 0"] if args.max_retries < 0 else []
    bad += [f"--timeout {args.timeout:g} is not above 0"] if not args.timeout > 0 else []
    if bad:
        raise SettingsError("; ".join(bad))
    context = resolve_context(args)
    settings = context.settings

    from workload.model.chat import make_client, traced_chat
    from workload.model.retry_notice import retry_notices

    # In entra mode this fetches the first token: no credential is exit 2, nothing sent.
    client = make_client(settings, max_retries=args.max_retries, timeout=args.timeout)

    from workload.commands.prompt import chosen_prompt

    # A version or alias that does not exist stops here, before anything is sent (after the
    # credential: a missing one is the first thing to say, in one line).
    prompt = None if args.system_prompt is not None else chosen_prompt(args, context)
    try:
        with retry_notices():  # a 429's wait is said on stderr, not waited in silence
            result = traced_chat(
                client,
                model=settings.model,
                user_prompt=args.prompt,
                prompt=prompt,
                system_prompt=args.system_prompt,
                experiment=context.experiment,
                secret=settings.secret,
                auth_mode=settings.auth_mode,
                via=settings.via,
            )
    finally:
        import mlflow

        # The trace (a failed call's too) is written before the process ends; terminating
        # the export thread here spares MLflow's exit hook a second wait for it.
        mlflow.flush_trace_async_logging(terminate=True)
    print(json.dumps(result.as_dict()) if args.json else result.reply)
    return 0
