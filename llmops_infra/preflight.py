"""``python -m llmops_infra preflight``: is there gpt-4o quota where ``pulumi up`` will deploy?

A quota shortfall otherwise shows up as ``InsufficientQuota`` deep into
``pulumi up``, after the slow workspace is built. For each allowed region this
asks Azure Resource Manager for the subscription's quota of the model's
Standard deployment type (the usage named ``OpenAI.Standard.<model>``, in
units of 1,000 tokens per minute) and lists the soft-deleted Cognitive
Services accounts, which keep their name and quota for 48 hours.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from llmops_infra.arm import ArmClient
    from llmops_infra.stack.config import LlmopsConfig

__all__ = [
    "DeletedAccount",
    "RegionQuota",
    "add_parser",
    "check",
    "find_subscription",
    "report",
    "run",
]

#: The project folder (Pulumi.yaml), without importing the Pulumi SDK for it.
_PROJECT_DIR = Path(__file__).resolve().parent.parent
_GROUP = re.compile(r"/resourceGroups/([^/]+)/", re.IGNORECASE)


@dataclass(frozen=True)
class DeletedAccount:
    """A soft-deleted Cognitive Services account of the subscription."""

    name: str
    resource_group: str
    location: str

    def purge_command(self) -> str:
        """The Azure CLI command that purges it."""
        return (
            f"az cognitiveservices account purge --name {self.name} "
            f"--resource-group {self.resource_group} --location {self.location}"
        )


@dataclass(frozen=True)
class RegionQuota:
    """One region's quota for the deployment, in thousands of tokens per minute."""

    region: str
    limit: int
    used: int
    deleted: tuple[DeletedAccount, ...]

    @property
    def free(self) -> int:
        """Quota still unassigned in the region."""
        return max(self.limit - self.used, 0)

    def fits(self, capacity: int) -> bool:
        """Whether a deployment of ``capacity`` would be granted."""
        return self.free >= capacity


def usage_name(model_name: str) -> str:
    """Azure's name for the subscription's Standard quota of a model."""
    return f"OpenAI.Standard.{model_name}"


def _region(value: Any) -> str:
    return str(value or "").replace(" ", "").lower()


def check(client: ArmClient, subscription: str, settings: LlmopsConfig) -> list[RegionQuota]:
    """Ask Azure for each allowed region's quota and the soft-deleted accounts there."""
    base = f"/subscriptions/{subscription}/providers/Microsoft.CognitiveServices"
    deleted: list[DeletedAccount] = []
    for item in client.list_all(f"{base}/deletedAccounts"):
        match = _GROUP.search(str(item.get("id", "")))
        deleted.append(
            DeletedAccount(
                name=str(item.get("name", "")),
                resource_group=match.group(1) if match else "?",
                location=_region(item.get("location")),
            )
        )
    wanted = usage_name(settings.model_name)
    regions = []
    for region in settings.allowed_regions:
        limit = used = 0
        for usage in client.list_all(f"{base}/locations/{region}/usages"):
            if (usage.get("name") or {}).get("value") == wanted:
                limit = int(usage.get("limit") or 0)
                used = int(usage.get("currentValue") or 0)
        regions.append(
            RegionQuota(
                region=region,
                limit=limit,
                used=used,
                deleted=tuple(d for d in deleted if d.location == region),
            )
        )
    return regions


def report(regions: Sequence[RegionQuota], settings: LlmopsConfig, out: TextIO) -> int:
    """Print the table and the advice; the exit status (0 fits, 1 does not)."""
    capacity = settings.capacity
    print(
        f"{usage_name(settings.model_name)} quota per region, in thousands of tokens per minute "
        f"(llmops:capacity = {capacity}):",
        file=out,
    )
    header = ("region", "limit", "used", "free", "fits", "soft-deleted accounts")
    rows = [
        (
            r.region + (" (pinned)" if r.region == settings.region else ""),
            str(r.limit),
            str(r.used),
            str(r.free),
            "yes" if r.fits(capacity) else "no",
            ", ".join(d.name for d in r.deleted) or "-",
        )
        for r in regions
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )

    fitting = [r.region for r in regions if r.fits(capacity)]
    candidates = [r for r in regions if settings.region in (None, r.region)]
    short = [r for r in candidates if not r.fits(capacity)]
    deleted = [d for r in candidates for d in r.deleted]
    print(file=out)
    if not short:
        print(f"OK: capacity {capacity} fits in every region the stack can use.", file=out)
        return 0
    if settings.region is None and fitting:
        print(
            f"OK: capacity {capacity} fits in {', '.join(fitting)}; the random draw may still "
            f"land on {', '.join(r.region for r in short)}. To exclude "
            + ("it" if len(short) == 1 else "them")
            + ":",
            file=out,
        )
        print("  pulumi config rm llmops:allowedRegions", file=out)
        for i, region in enumerate(fitting):
            print(f"  pulumi config set --path 'llmops:allowedRegions[{i}]' {region}", file=out)
        _print_purges(deleted, out)
        return 0
    where = settings.region or "any allowed region"
    print(f"NOT ENOUGH QUOTA: capacity {capacity} does not fit in {where}.", file=out)
    if settings.region is not None and fitting:
        print(f"  pin a region that fits: pulumi config set llmops:region {fitting[0]}", file=out)
    largest = max((r.free for r in candidates), default=0)
    if largest > 0:
        print(f"  or ask for less: pulumi config set llmops:capacity {largest}", file=out)
    print(
        "  or request more quota: Azure AI Foundry portal > Management center > Quota "
        "(https://aka.ms/oai/quotaincrease)",
        file=out,
    )
    _print_purges(deleted, out)
    return 1


def _print_purges(deleted: Sequence[DeletedAccount], out: TextIO) -> None:
    if deleted:
        print("Soft-deleted accounts hold their name and quota for 48 hours; purge with:", file=out)
        for account in deleted:
            print(f"  {account.purge_command()}", file=out)


def find_subscription(
    explicit: str | None, env: Mapping[str, str], config: Mapping[str, str]
) -> str | None:
    """--subscription, else AZURE_/ARM_SUBSCRIPTION_ID, else the stack's, else the Azure CLI's."""
    for value in (
        explicit,
        env.get("AZURE_SUBSCRIPTION_ID"),
        env.get("ARM_SUBSCRIPTION_ID"),
        config.get("azure-native:subscriptionId"),
    ):
        if value and value.strip():
            return value.strip()
    az = shutil.which("az")
    if az is None:
        return None
    try:
        done = subprocess.run(
            [az, "account", "show", "--query", "id", "-o", "tsv"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the sub-command."""
    parser = subparsers.add_parser(
        "preflight",
        help="check gpt-4o quota and soft-deleted accounts in the allowed regions (calls Azure)",
        description=(
            "Before `pulumi up`: for each allowed region, ask Azure for the subscription's "
            "quota of the model's Standard deployment type and list the soft-deleted accounts "
            "holding quota there. Exit 0 when llmops:capacity fits where the stack can deploy "
            "(the pinned region, else at least one allowed region), 1 when it does not, 2 when "
            "Azure cannot be asked (no credentials, unreachable) or the configuration is bad. "
            "Read-only: it changes nothing in Azure."
        ),
    )
    parser.add_argument(
        "--stack", default="dev", metavar="NAME", help="stack whose Pulumi.<NAME>.yaml to read"
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration value, e.g. llmops:capacity=20 (repeatable)",
    )
    parser.add_argument(
        "--subscription",
        metavar="ID",
        help="subscription to check (else AZURE_SUBSCRIPTION_ID, ARM_SUBSCRIPTION_ID, the "
        "stack's azure-native:subscriptionId, or `az account show`)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, client: ArmClient | None = None) -> int:
    """Assemble the configuration, ask Azure, print the table; the exit status."""
    from llmops_infra.arm import ArmClient, ArmError, ArmUnavailable, default_credential
    from llmops_infra.offline.stack_files import parse_overrides, read_stack_config
    from llmops_infra.stack.config import NAMESPACE, parse_config

    config = read_stack_config(_PROJECT_DIR, args.stack, parse_overrides(args.config))
    settings = parse_config(lambda key: config.get(f"{NAMESPACE}:{key}"))
    subscription = find_subscription(args.subscription, os.environ, config)
    if subscription is None:
        print(
            "error: no Azure subscription: pass --subscription ID, set AZURE_SUBSCRIPTION_ID, "
            "or sign in with `az login`",
            file=sys.stderr,
        )
        return 2
    try:
        regions = check(client or ArmClient(default_credential()), subscription, settings)
    except ArmUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ArmError as err:
        hint = (
            " (reading quota needs the Cognitive Services Usages Reader or Reader role on the "
            "subscription)"
            if err.status == 403
            else ""
        )
        print(f"error: {err}{hint}", file=sys.stderr)
        return 2
    return report(regions, settings, sys.stdout)
