"""``python -m llmops_infra preflight``: can ``pulumi up`` deploy the models where it may land?

Two failures otherwise show up deep into ``pulumi up``, after the slow
workspace is built, and then repeat at every retry because the drawn region is
kept in state: the region does not offer the model with the Standard SKU (or
not the pinned version), or the subscription's quota there is too small
(``InsufficientQuota``). For each allowed region this asks Azure Resource
Manager for the per-region models list and the subscription's quotas, adds up
what the stack's deployments need per model (the chat deployment and the
judge deployment share one quota when they deploy the same model), and lists
the soft-deleted accounts, which keep their name and quota for 48 hours.

``--pin`` then makes the stack's random draw itself, among the regions where
everything fits, and writes ``llmops:region`` into ``Pulumi.<stack>.yaml``. It
first asks the Pulumi CLI for the stack's ``region`` output: a stack deployed
without ``--pin`` keeps its draw in the state, not in that file, and a new
region would replace every resource, so a deployed stack is never pinned anew.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from llmops_infra.azure_api.clients import purge_command
from llmops_infra.stack.region_features import (
    FEATURE_LABELS,
    Feature,
    draw_candidates,
    feature_keys,
    missing_features,
    unconfirmed_features,
)
from llmops_infra.stack_arguments import add_stack_arguments
from workload.config.outputs import PULUMI_TIMEOUT, run_pulumi
from workload.contract import PROJECT_DIR, REGION
from workload.errors import first_line

if TYPE_CHECKING:
    from azure.mgmt.cognitiveservices.models import AccountModel, Model, Usage

    from llmops_infra.azure_api.clients import ArmSession
    from llmops_infra.stack.config import LlmopsConfig

__all__ = [
    "DeletedAccount",
    "Demand",
    "ModelCheck",
    "RegionCheck",
    "StackUnknownError",
    "add_parser",
    "check",
    "demands",
    "deployed_region",
    "find_subscription",
    "pin_region",
    "report",
    "run",
]

_GROUP = re.compile(r"/resourceGroups/([^/]+)/", re.IGNORECASE)
#: The deployment SKU the stack uses (regional Standard, not GlobalStandard).
SKU: Final = "Standard"
#: The account kind the stack creates; the models list also lists other kinds' models.
_KIND: Final = "openai"
REGION_KEY: Final = "llmops:region"
#: Seconds ``pulumi stack output`` may take: a Pulumi Cloud backend is asked over the network.
#: What the pulumi CLI says of a stack never deployed: no such stack, or one (new, or
#: destroyed) without outputs. Any other failure leaves the question open.
_NOT_DEPLOYED: Final = ("no stack named", "does not have output property")


@dataclass(frozen=True)
class DeletedAccount:
    """A soft-deleted Cognitive Services account of the subscription."""

    name: str
    resource_group: str
    location: str

    def purge_command(self) -> str:
        """The Azure CLI command that purges it."""
        return purge_command(self.name, self.resource_group, self.location)


@dataclass(frozen=True)
class Demand:
    """What the stack deploys of one model: its versions and the capacity they add up to."""

    model: str
    versions: tuple[str | None, ...]
    """Pinned versions; None is Azure's default version."""
    capacity: int
    """Thousands of tokens per minute, all deployments of the model together."""
    keys: tuple[str, ...]
    """The configuration keys whose capacities add up here (``llmops:capacity`` ...)."""


def demands(settings: LlmopsConfig) -> list[Demand]:
    """The chat model and, when set, the judge model; one model twice is one demand."""
    wanted = [("llmops:capacity", settings.model_name, settings.model_version, settings.capacity)]
    if settings.judge_model:
        wanted.append(
            (
                "llmops:judgeCapacity",
                settings.judge_model,
                settings.judge_model_version,
                settings.judge_capacity,
            )
        )
    merged: dict[str, Demand] = {}
    for key, model, version, capacity in wanted:
        seen = merged.get(model)
        if seen is None:
            merged[model] = Demand(model, (version,), capacity, (key,))
        else:
            versions = seen.versions if version in seen.versions else (*seen.versions, version)
            merged[model] = Demand(model, versions, seen.capacity + capacity, (*seen.keys, key))
    return list(merged.values())


@dataclass(frozen=True)
class ModelCheck:
    """One model in one region: offered or not, and its quota, in thousands of TPM."""

    demand: Demand
    offered: bool
    """Every wanted version is offered with the Standard SKU."""
    versions: tuple[str, ...]
    """The versions a deployment would get (a pinned one, or the region's default)."""
    limit: int
    used: int

    @property
    def free(self) -> int:
        """Quota still unassigned in the region."""
        return max(self.limit - self.used, 0)

    @property
    def fits(self) -> bool:
        """Whether every deployment of the model would be granted: offered, and enough quota."""
        return self.offered and self.free >= self.demand.capacity


@dataclass(frozen=True)
class RegionCheck:
    """One allowed region: each model's check and the soft-deleted accounts there."""

    region: str
    models: tuple[ModelCheck, ...]
    deleted: tuple[DeletedAccount, ...]
    lacks: tuple[Feature, ...] = ()
    """Databricks features the options need that the region does not offer (region_features)."""
    needed_by: tuple[str, ...] = ()
    """The settings that need what it lacks (``llmops:gateway=true``...)."""
    unconfirmed: tuple[Feature, ...] = ()
    """Features the options need whose cell for this region nobody recorded: said, not held
    against the region (region_features)."""

    @property
    def fits(self) -> bool:
        """Whether the stack fits: every deployment, and every Databricks feature it uses."""
        return all(m.fits for m in self.models) and not self.lacks


def _region(value: object) -> str:
    return str(value or "").replace(" ", "").lower()


def _entries(models: Sequence[Model], name: str) -> list[AccountModel]:
    """The region's OpenAI-account entries of one model (every version, every SKU)."""
    return [
        m.model
        for m in models
        if m.model is not None
        and m.model.name == name
        and (m.kind is None or m.kind.lower() == _KIND)
    ]


def _standard(entry: AccountModel) -> bool:
    return any(sku.name == SKU for sku in entry.skus or [])


def _offered_version(entries: Sequence[AccountModel], version: str | None) -> str | None:
    """The version a Standard deployment would get, or None when the region has none."""
    if version is not None:
        return version if any(e.version == version and _standard(e) for e in entries) else None
    defaults = [e for e in entries if e.is_default_version]
    candidates = defaults or entries  # without a default marked, any version will do
    found = sorted(str(e.version or "") for e in candidates if _standard(e))
    return found[-1] if found else None


def _usage_name(entries: Sequence[AccountModel], model: str) -> str:
    """The quota's name: the Standard SKU's ``usageName``, else Azure's usual pattern."""
    for entry in entries:
        for sku in entry.skus or []:
            if sku.name == SKU and sku.usage_name:
                return str(sku.usage_name)
    return f"OpenAI.{SKU}.{model}"


def _model_check(demand: Demand, models: Sequence[Model], usages: Sequence[Usage]) -> ModelCheck:
    entries = _entries(models, demand.model)
    found = [_offered_version(entries, v) for v in demand.versions]
    wanted = _usage_name(entries, demand.model)
    limit = used = 0
    for usage in usages:
        if usage.name is not None and usage.name.value == wanted:
            limit, used = int(usage.limit or 0), int(usage.current_value or 0)
    return ModelCheck(
        demand=demand,
        offered=all(v is not None for v in found),
        versions=tuple(v for v in found if v is not None),
        limit=limit,
        used=used,
    )


def check(session: ArmSession, settings: LlmopsConfig) -> list[RegionCheck]:
    """Ask Azure, per allowed region, for the models offered, the quotas and deleted accounts."""
    deleted: list[DeletedAccount] = []
    for account in session.deleted_accounts():
        match = _GROUP.search(str(account.id or ""))
        deleted.append(
            DeletedAccount(
                name=str(account.name or ""),
                resource_group=match.group(1) if match else "?",
                location=_region(account.location),
            )
        )
    wanted = demands(settings)
    keys = feature_keys(settings)
    regions = []
    for region in settings.allowed_regions:
        models = session.models(region)
        usages = session.usages(region)
        lacks = missing_features(region, keys)
        regions.append(
            RegionCheck(
                region=region,
                models=tuple(_model_check(d, models, usages) for d in wanted),
                deleted=tuple(d for d in deleted if d.location == region),
                lacks=lacks,
                needed_by=tuple(sorted({keys[feature] for feature in lacks})),
                unconfirmed=unconfirmed_features(region, keys),
            )
        )
    return regions


def _table(regions: Sequence[RegionCheck], settings: LlmopsConfig, out: TextIO) -> None:
    print(
        f"{SKU} deployments per allowed region (quota in thousands of tokens per minute):",
        file=out,
    )
    header = ("region", "model", "version", "offered", "limit", "used", "free", "needs", "fits")
    rows = [(*header, "soft-deleted accounts")]
    for r in regions:
        for m in r.models:
            pinned = [v for v in m.demand.versions if v]
            rows.append(
                (
                    r.region + _region_label(r.region, settings),
                    m.demand.model,
                    ",".join(m.versions or pinned) or "-",
                    "yes" if m.offered else "no",
                    str(m.limit),
                    str(m.used),
                    str(m.free),
                    str(m.demand.capacity),
                    "yes" if m.fits else "no",
                    ", ".join(d.name for d in r.deleted) or "-",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) + 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )
    lacking = [r for r in regions if r.lacks]
    if lacking:
        # A region without a feature the options use never fits, whatever its quota.
        print(
            'Not fitting for Azure Databricks (Microsoft Learn, "Features with limited regional '
            'availability"): '
            + "; ".join(
                f"{r.region} lacks {', '.join(FEATURE_LABELS[f] for f in r.lacks)}" for r in lacking
            ),
            file=out,
        )
    unsure = [r for r in regions if r.unconfirmed]
    if unsure:
        print(
            "Not confirmed from Microsoft Learn's table of Databricks features by region (check "
            "https://learn.microsoft.com/azure/databricks/resources/feature-region-support): "
            + "; ".join(
                f"{r.region} ({', '.join(FEATURE_LABELS[f] for f in r.unconfirmed)})"
                for r in unsure
            ),
            file=out,
        )


def _region_label(region: str, settings: LlmopsConfig) -> str:
    if region != settings.region:
        return ""
    return " (the workspace's)" if settings.workspace_resource_id else " (pinned)"


class _Refused(Exception):
    """A setting preflight cannot check with (exit 2), in one line."""


def in_workspace_region(session: ArmSession, settings: LlmopsConfig) -> LlmopsConfig:
    """The settings narrowed to the existing workspace's region (``llmops:workspaceResourceId``):
    the stack goes there, so no other region is checked. Raises _Refused as ``up`` refuses."""
    from llmops_infra.azure_api.clients import ArmError

    resource_id = settings.workspace_resource_id
    assert resource_id is not None
    key = f"llmops:workspaceResourceId = {resource_id!r}"
    try:
        workspace = session.workspace(resource_id)
    except ArmError as err:
        if err.status == 404:
            raise _Refused(f"{key}: no such workspace ({err.code or 'HTTP 404'})") from None
        if err.status == 403:
            raise _Refused(
                f"{key}: the identity may not read the workspace ({err.code or 'HTTP 403'}): "
                "it needs at least Reader on it (docs/estate.md lists the roles)"
            ) from None
        raise
    region = _region(workspace.get("location"))
    if region not in settings.allowed_regions:
        raise _Refused(
            f"{key} is in {region}, which llmops:allowedRegions "
            f"({', '.join(settings.allowed_regions)}) does not list: the stack goes to the "
            "workspace's region"
        )
    if settings.region is not None and settings.region != region:
        raise _Refused(
            f"llmops:region = {settings.region!r} differs from the existing workspace's "
            f"region, {region} ({key}): leave llmops:region unset"
        )
    return dataclasses.replace(settings, region=region, allowed_regions=(region,))


def _why_not(region: RegionCheck) -> list[str]:
    reasons = []
    if region.lacks:
        # Microsoft Learn, "Features with limited regional availability" (region_features).
        reasons.append(
            f"{region.region} does not offer {', '.join(FEATURE_LABELS[f] for f in region.lacks)}"
            f" on Azure Databricks, which {' and '.join(region.needed_by)} "
            f"{'need' if len(region.needed_by) > 1 else 'needs'}"
        )
    for m in region.models:
        if not m.offered:
            wanted = ", ".join(v or "its default version" for v in m.demand.versions)
            reasons.append(
                f"{region.region} does not offer {m.demand.model} ({wanted}) with the {SKU} SKU"
            )
        elif not m.fits:
            reasons.append(
                f"{region.region} has {m.free} free for {m.demand.model}, "
                f"{' + '.join(m.demand.keys)} {'need' if len(m.demand.keys) > 1 else 'needs'} "
                f"{m.demand.capacity}"
            )
    return reasons


def report(
    regions: Sequence[RegionCheck],
    settings: LlmopsConfig,
    out: TextIO,
    pinning: bool = False,
    stack: str = "dev",
) -> int:
    """Print the table and the advice; the exit status (0 the stack fits, 1 it does not)."""
    _table(regions, settings, out)
    fitting = [r.region for r in regions if r.fits]
    if settings.region is not None:
        candidates = [r for r in regions if r.region == settings.region]
    else:
        # The draw leaves out the regions without a Databricks feature the options use;
        # with none left, every region is short.
        drawable = draw_candidates(settings)
        candidates = [r for r in regions if r.region in drawable] or list(regions)
    short = [r for r in candidates if not r.fits]
    deleted = [d for r in candidates for d in r.deleted]
    print(file=out)
    if pinning:
        return 0 if fitting else _not_fitting(regions, settings, short, deleted, out)
    if not short:
        print("OK: every deployment fits in every region the stack can use.", file=out)
        return 0
    if settings.region is None and fitting:
        print(
            f"OK: every deployment fits in {', '.join(fitting)}; the random draw may still "
            f"land where it does not:",
            file=out,
        )
        for reason in (reason for r in short for reason in _why_not(r)):
            print(f"  {reason}", file=out)
        print("Let the draw pick only among the regions that fit, and pin it:", file=out)
        print(f"  python -m llmops_infra preflight --stack {stack} --pin", file=out)
        _print_purges(deleted, out)
        return 0
    return _not_fitting(regions, settings, short, deleted, out)


def _guardrails_capacity_cap() -> int:
    """The guardrails' default cap on a deployment's capacity (``MAX_CAPACITY`` in the
    pack, its one home): the advice never suggests what ``pulumi up`` would then refuse.
    The pack is a folder Pulumi runs, not a package, so it is loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "llmops_guardrails", Path(__file__).resolve().parents[2] / "policy" / "guardrails.py"
    )
    assert spec is not None and spec.loader is not None
    pack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pack)
    return int(pack.MAX_CAPACITY)


def _not_fitting(
    regions: Sequence[RegionCheck],
    settings: LlmopsConfig,
    short: Sequence[RegionCheck],
    deleted: Sequence[DeletedAccount],
    out: TextIO,
) -> int:
    where = settings.region or "any allowed region"
    print(f"DOES NOT FIT: the stack's deployments do not fit in {where}:", file=out)
    for reason in (reason for r in short for reason in _why_not(r)):
        print(f"  {reason}", file=out)
    fitting = [r.region for r in regions if r.fits]
    remedies = []
    if settings.region is not None and fitting:
        remedies.append(f"pin a region that fits: pulumi config set {REGION_KEY} {fitting[0]}")
    cap = _guardrails_capacity_cap()
    for demand in demands(settings):
        offered = [m for r in short for m in r.models if m.demand == demand and m.offered]
        free = max((m.free for m in offered), default=0)
        largest = min(free, cap * len(demand.keys))  # the cap is per deployment
        if 0 < largest < demand.capacity:
            if len(demand.keys) == 1:
                remedies.append(f"ask for less: pulumi config set {demand.keys[0]} {largest}")
            else:
                remedies.append(
                    f"ask for less: {' + '.join(demand.keys)} at most {largest} "
                    f"({demand.model} shares one quota)"
                )
    remedies.append(
        "request more quota: Azure AI Foundry portal > Management center > Quota "
        "(https://aka.ms/oai/quotaincrease)"
    )
    print(f"  {remedies[0]}", file=out)
    for remedy in remedies[1:]:
        print(f"  or {remedy}", file=out)
    _print_purges(deleted, out)
    return 1


def _print_purges(deleted: Sequence[DeletedAccount], out: TextIO) -> None:
    if deleted:
        print("Soft-deleted accounts hold their name and quota for 48 hours; purge with:", file=out)
        for account in deleted:
            print(f"  {account.purge_command()}", file=out)


def pin_region(stack_file: Path, region: str) -> None:
    """Write ``llmops:region`` as ``pulumi config set`` would; every other byte stays.

    A round trip through ruamel.yaml keeps comments, quoting and the file's own
    indentation; the key goes where the CLI's sorted keys would put it.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.util import load_yaml_guess_indent

    text = stack_file.read_text(encoding="utf-8")
    data, indent, sequence_offset = load_yaml_guess_indent(text)
    if data is None:  # empty, or comments only: add the block after them
        new = text + ("" if not text or text.endswith("\n") else "\n")
        new += f"config:\n  {REGION_KEY}: {region}\n"
    else:
        yaml = YAML()
        yaml.preserve_quotes = True
        yaml.width = 4096
        mapping = _mapping_indent(text)
        if sequence_offset is None:  # no list yet: as the CLI writes them, dash 2 further in
            indent, sequence_offset = mapping + 2, mapping
        yaml.indent(mapping=mapping, sequence=indent, offset=sequence_offset)
        data = yaml.load(text)
        config = data.get("config")
        if config is None:
            config = data["config"] = CommentedMap()
        if not config:
            config.fa.set_block_style()
        keys = [str(k) for k in config]
        position = next((i for i, k in enumerate(keys) if k > REGION_KEY), len(keys))
        config.insert(position, REGION_KEY, region)
        from io import StringIO

        buffer = StringIO()
        yaml.dump(data, buffer)
        new = buffer.getvalue()
    temporary = stack_file.with_name(f".{stack_file.name}.pin")
    temporary.write_text(new, encoding="utf-8")
    os.replace(temporary, stack_file)


def _mapping_indent(text: str) -> int:
    """How far the file indents a nested mapping key (ruamel guesses only its lists')."""
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if stripped and line != stripped and not stripped.startswith(("#", "-")):
            return len(line) - len(stripped)
    return 2


class StackUnknownError(Exception):
    """pulumi failed otherwise than "no such stack or output": deployed or not is unknown."""


def deployed_region(stack: str, err: TextIO) -> str | None:
    """The region the stack is deployed in (its ``region`` output), or None when it is not.

    A draw that ``pulumi up`` made itself is kept in the state, not in
    ``Pulumi.<stack>.yaml``, so only the state can say the stack already has a
    region. None also when the pulumi CLI is not installed (a note on ``err``):
    nothing can be asked, and the draw goes on as it did before this check. Raises
    StackUnknownError on any other failure (not logged in, no passphrase, no
    answer in time): guessing "not deployed" there could replace every resource.
    """
    command = ["stack", "output", REGION, "--stack", stack]
    shown = " ".join(["pulumi", *command])
    try:
        done = run_pulumi(*command, timeout=PULUMI_TIMEOUT, project=PROJECT_DIR)
    except FileNotFoundError:
        print(
            f"note: the pulumi CLI is not on PATH: whether stack {stack} is already deployed "
            "was not checked",
            file=err,
        )
        return None
    except subprocess.TimeoutExpired:
        raise StackUnknownError(f"`{shown}` did not answer in {PULUMI_TIMEOUT} s") from None
    except OSError as error:
        raise StackUnknownError(f"cannot run `{shown}`: {first_line(error)}") from None
    if done.returncode == 0:
        return done.stdout.strip() or None
    if any(marker in done.stderr for marker in _NOT_DEPLOYED):
        return None
    errors = [line for line in done.stderr.splitlines() if line.strip().startswith("error:")]
    detail = first_line(errors[-1] if errors else done.stderr) or f"exit {done.returncode}"
    raise StackUnknownError(f"`{shown}` failed ({detail})")


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
        help="check the models, quota and soft-deleted accounts in the allowed regions "
        "(calls Azure); --pin draws the region",
        description=(
            "Before `pulumi up`: for each allowed region, ask Azure whether it offers each "
            "model the stack deploys with the Standard SKU (and the pinned version), the "
            "subscription's quota for it, and the soft-deleted accounts there. Exit 0 when "
            "every deployment fits where the stack can deploy (the pinned region, else at "
            "least one allowed region), 1 when not, 2 when Azure cannot be asked (no "
            "credentials, unreachable) or the configuration is bad. Read-only in Azure."
        ),
    )
    add_stack_arguments(parser, example="llmops:capacity=20")
    parser.add_argument(
        "--subscription",
        metavar="ID",
        help="subscription to check (else AZURE_SUBSCRIPTION_ID, ARM_SUBSCRIPTION_ID, the "
        "stack's azure-native:subscriptionId, or `az account show`)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help=f"draw the region at random among the allowed regions where everything fits and "
        f"write {REGION_KEY} into Pulumi.<NAME>.yaml (exit 1 when none fits, 2 when "
        f"{REGION_KEY} is already set or the stack is already deployed)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Assemble the configuration, ask Azure, print the table (and pin); the exit status."""
    from llmops_infra.azure_api.clients import ArmError, ArmSession
    from llmops_infra.offline.stack_files import parse_overrides, read_stack_config
    from llmops_infra.stack.config import NAMESPACE, parse_config

    config = read_stack_config(PROJECT_DIR, args.stack, parse_overrides(args.config))
    settings = parse_config(lambda key: config.get(f"{NAMESPACE}:{key}"))
    stack_file = PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    if args.pin and settings.region is not None:
        print(
            f"error: {REGION_KEY} is already {settings.region}; --pin writes nothing. On a "
            "deployed stack another region replaces every resource: change it on purpose with "
            f"`pulumi config set {REGION_KEY} <region>`",
            file=sys.stderr,
        )
        return 2
    if args.pin and settings.workspace_resource_id is not None:
        print(
            "error: llmops:workspaceResourceId is set: the stack goes to the existing "
            "workspace's region, so there is nothing to draw or pin; --pin writes nothing",
            file=sys.stderr,
        )
        return 2
    if args.pin:
        refusal = _deployed_refusal(args.stack)
        if refusal is not None:
            print(refusal, file=sys.stderr)
            return 2
    subscription = find_subscription(args.subscription, os.environ, config)
    if subscription is None:
        print(
            "error: no Azure subscription: pass --subscription ID, set AZURE_SUBSCRIPTION_ID "
            "or ARM_SUBSCRIPTION_ID, set the stack's azure-native:subscriptionId, "
            "or sign in with `az login`",
            file=sys.stderr,
        )
        return 2
    try:
        with ArmSession(subscription) as session:
            if settings.workspace_resource_id is not None:
                settings = in_workspace_region(session, settings)
                print(
                    f"llmops:workspaceResourceId: the stack deploys to the existing "
                    f"workspace's region, {settings.region}; only {settings.region} is checked.",
                    file=sys.stdout,
                )
            regions = check(session, settings)
    except _Refused as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ArmError as err:
        hint = (
            " (reading models and quota needs the Cognitive Services Usages Reader or Reader "
            "role on the subscription)"
            if err.status == 403
            else ""
        )
        print(f"error: {err}{hint}", file=sys.stderr)
        return 2
    status = report(regions, settings, sys.stdout, pinning=args.pin, stack=args.stack)
    if not args.pin or status != 0:
        return status
    fitting = [r.region for r in regions if r.fits]
    region = random.SystemRandom().choice(fitting)
    pin_region(stack_file, region)
    print(
        f"Pinned {REGION_KEY}: {region} in {stack_file.name}, drawn among {', '.join(fitting)}.",
        file=sys.stdout,
    )
    return 0


def _deployed_refusal(stack: str) -> str | None:
    """The one-line refusal when the stack is deployed, or cannot be told not to be."""
    try:
        deployed = deployed_region(stack, sys.stderr)
    except StackUnknownError as err:
        return (
            f"error: cannot tell whether stack {stack} is deployed: {err}; --pin writes nothing. "
            "Log in to the stack's backend (the local one needs PULUMI_CONFIG_PASSPHRASE), or "
            f"choose the region yourself: `pulumi config set {REGION_KEY} <region>`"
        )
    if deployed is None:
        return None
    return (
        f"error: stack {stack} is deployed in {deployed}; --pin writes nothing, as a new region "
        f"would replace every resource. Keep it: `pulumi config set {REGION_KEY} {deployed}`"
    )
