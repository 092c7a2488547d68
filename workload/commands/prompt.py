"""``python -m workload prompt push|list``: the lab's prompt in MLflow's Prompt Registry.

``push`` registers a prompt file (the packaged one by default) as a new version
only when its messages or model config changed; the first version becomes
``production``. ``list`` shows the versions, their aliases and the history of
``production``'s moves by promote and rollback (:mod:`workload.releases.registry`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workload.config.context import command_parser

if TYPE_CHECKING:
    from workload.config.context import WorkloadContext
    from workload.releases.registry import PromptChoice

__all__ = [
    "add_parser",
    "add_prompt_name_argument",
    "add_prompt_version_arguments",
    "chosen_prompt",
    "run_list",
    "run_push",
]

_DESCRIPTION = """\
The lab's two messages as one chat prompt in MLflow's Prompt Registry, so that
a change to them is a new version that is evaluated, compared, promoted and
rolled back. The prompt's name: --prompt-name, else LLMOPS_PROMPT_NAME, else
the stack output mlflow_prompt_name (<catalog>.<schema>.lab_chat in Unity
Catalog), else lab_chat on a local store.

Exit status: 0 done, 1 the registry failed, 2 bad settings or a bad file
(nothing registered).
"""


def add_prompt_name_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--prompt-name``: the prompt in the registry (chat, eval and the prompt commands)."""
    parser.add_argument(
        "--prompt-name",
        metavar="NAME",
        help="the prompt in the registry (else LLMOPS_PROMPT_NAME, else the stack output "
        "mlflow_prompt_name, else lab_chat on a local store)",
    )


def add_prompt_version_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--prompt-version N|ALIAS`` and ``--prompt-name``: the prompt a call runs."""
    add_prompt_name_argument(parser)
    parser.add_argument(
        "--prompt-version",
        metavar="N|ALIAS",
        default="production",
        help="the registered prompt version (a number or an alias) whose messages make the "
        "request (production); the packaged prompt when the registry has no such prompt",
    )


def chosen_prompt(args: argparse.Namespace, context: WorkloadContext) -> PromptChoice:
    """The version ``--prompt-version`` names, checked before anything is sent (exit 2)."""
    import os

    from workload.releases.registry import choose_prompt, resolve_prompt_name

    name = resolve_prompt_name(args.prompt_name, context.outputs, os.environ)
    return choose_prompt(name, str(args.prompt_version).strip())


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prompt`` and its two sub-commands."""
    parser = subparsers.add_parser(
        "prompt",
        help="push and list the lab's prompt versions in MLflow's Prompt Registry",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="prompt_command", required=True, metavar="ACTION")
    push = command_parser(
        actions,
        "push",
        summary="register a prompt file as a new version when it changed",
        description=_DESCRIPTION,
    )
    add_prompt_name_argument(push)
    push.add_argument(
        "--file", metavar="FILE", help="the prompt file (default: the packaged lab_chat.json)"
    )
    push.add_argument("--message", metavar="TEXT", help="the version's commit message")
    push.add_argument(
        "--alias", metavar="NAME", help="point this alias at the pushed (or unchanged) version"
    )
    push.add_argument("--json", action="store_true", help="print name, version, created")
    push.set_defaults(run=run_push)
    listing = command_parser(
        actions,
        "list",
        summary="the prompt's versions, aliases and production's history",
        description=_DESCRIPTION,
    )
    add_prompt_name_argument(listing)
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(run=run_list)
    for command in actions.choices.values():
        command.set_defaults(parser=command)


def _name(args: argparse.Namespace) -> str:
    import os

    from workload.config.context import resolve_context
    from workload.releases.registry import require_prompt_name

    def check(outputs: Mapping[str, Any], env: Mapping[str, str]) -> None:
        require_prompt_name(args.prompt_name, outputs, env)  # exit 2 before anything is reached

    context = resolve_context(args, model=False, check=check)
    return require_prompt_name(args.prompt_name, context.outputs, os.environ)


def run_push(args: argparse.Namespace) -> int:
    """Check the file (exit 2, nothing registered), then register it if it changed."""
    import json

    from workload.releases.registry import push_prompt
    from workload.releases.template import load_template_file, packaged_template

    template = load_template_file(args.file) if args.file else packaged_template()
    name = _name(args)
    result = push_prompt(name, template, message=args.message, alias=args.alias)
    if args.json:
        print(json.dumps({"name": name, "version": result.version, "created": result.created}))
    elif result.created:
        print(f"{name}: registered version {result.version}")
    else:
        print(f"{name}: unchanged, version {result.version} already holds it (nothing registered)")
    if args.alias and not args.json:
        print(f"{args.alias} -> version {result.version}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print the versions, their aliases and production's history."""
    import json

    from workload.releases.registry import describe_prompt

    described = describe_prompt(_name(args))
    if args.json:
        print(json.dumps(described))
        return 0
    print(f"{described['name']}: production = version {described['production']}")
    for version in described["versions"]:
        aliases = ", ".join(version["aliases"]) or "-"
        print(
            f"  {version['version']:>4}  {aliases:<24} {version['created'] or ''}  "
            f"{version['message'] or ''}".rstrip()
        )
    for move in described["history"]:
        print(
            f"  {move['time']}  {move['action']}: {move['from_version']} -> "
            f"{move['to_version']} (run {move['run_id']}, by {move['user']})"
        )
    return 0
