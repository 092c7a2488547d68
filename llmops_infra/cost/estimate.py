"""The stack's bill, item by item, for one region: what bills per hour and per call.

The items follow the stack's settings (:class:`~llmops_infra.stack.config.LlmopsConfig`,
parsed as ``plan`` parses them): the cluster's VM and its DBUs while it runs, or serverless
jobs' DBUs; the chat deployment's tokens per 1,000 lab calls; an eval row's tokens (the row's
call and its judge's call, on the judge deployment when there is one); the gateway's serving
endpoints. An item whose price or quantity no source gives is ``unknown`` (None here), and
every total it would enter is marked partial, never counted as 0.

A class day (:attr:`RegionCost.total`) is one stack per student: per student, ``hours`` of
the stack up with its cluster running, the lab's chat call :data:`LAB_CALLS_PER_STUDENT`
times and one eval run of the packaged prompt set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from llmops_infra.cost.dbu import DBU_PER_HOUR
from llmops_infra.cost.retail_prices import Price, PriceBook, Query
from llmops_infra.stack.config import LlmopsConfig

__all__ = [
    "EVAL_ROW",
    "JUDGE_CALL",
    "LAB_CALL",
    "LAB_CALLS_PER_STUDENT",
    "Item",
    "RegionCost",
    "TokenCounts",
    "estimate",
    "token_meters",
]


@dataclass(frozen=True)
class TokenCounts:
    """Tokens one call sends and receives (the assumption a per-call price rests on)."""

    input: int
    output: int


#: The lab's call: its system and user prompts (some 25 tokens) with the chat format's
#: overhead; a short joke back (the lab sets no max_tokens).
LAB_CALL: Final = TokenCounts(input=30, output=100)
#: An eval row's own call: a prompt of the packaged set, the reply within its 256 budget.
EVAL_ROW: Final = TokenCounts(input=30, output=150)
#: The row's judge (MLflow's guidelines judge, one call per row): its prompt is about 440
#: tokens (workload/commands/evaluate.py), its rationale up to JUDGE_MAX_TOKENS (512).
JUDGE_CALL: Final = TokenCounts(input=440, output=400)
#: The chat calls a student makes in a class day, besides one eval run.
LAB_CALLS_PER_STUDENT: Final = 1

#: Standard-deployment (regional) token meters of the Retail Prices API, by model and
#: version; None: the version Azure deploys when none is pinned, priced as the newest listed.
_TOKEN_METERS: Final[dict[tuple[str, str | None], tuple[str, str]]] = {
    ("gpt-4o", "2024-11-20"): ("gpt 4o 1120 Inp regnl Tokens", "gpt 4o 1120 Outp regnl Tokens"),
    ("gpt-4o", None): ("gpt 4o 1120 Inp regnl Tokens", "gpt 4o 1120 Outp regnl Tokens"),
    ("gpt-4o", "2024-08-06"): ("gpt-4o-0806-Inp-regnl Tokens", "gpt-4o-0806-Outp-regnl Tokens"),
    ("gpt-4o", "2024-05-13"): (
        "gpt 4o 0513 Input regional Tokens",
        "gpt 4o 0513 Output regional Tokens",
    ),
    ("gpt-4o-mini", "2024-07-18"): (
        "gpt-4o-mini-0718-Inp-regnl Tokens",
        "gpt-4o-mini-0718-Outp-regnl Tokens",
    ),
    ("gpt-4o-mini", None): (
        "gpt-4o-mini-0718-Inp-regnl Tokens",
        "gpt-4o-mini-0718-Outp-regnl Tokens",
    ),
}

_OPENAI: Final = ("Foundry Models", "Azure OpenAI")
_UNIT_TOKENS: Final = {"1K": 1_000, "1M": 1_000_000, "1": 1}


def token_meters(model: str, version: str | None) -> tuple[str, str] | None:
    """The input and output meters of a Standard deployment, or None when not known here."""
    return _TOKEN_METERS.get((model, version))


@dataclass(frozen=True)
class Item:
    """One line of the bill."""

    resource: str
    meter: str
    price: Price | None
    quantity_per_hour: float | None = None
    """Hourly items: units an hour (None: unknown)."""
    tokens_per_call: int | None = None
    """Per-call items: tokens one call spends on this meter."""
    idle: bool = False
    """Bills with nothing running (the stack merely exists)."""
    note: str = ""

    @property
    def hourly(self) -> float | None:
        """What an hour costs, None when unknown (or not an hourly item)."""
        if self.tokens_per_call is not None or self.price is None:
            return None
        if self.quantity_per_hour is None:
            return None
        return self.price.unit_price * self.quantity_per_hour

    @property
    def per_1000_calls(self) -> float | None:
        """What 1,000 calls cost on this meter, None when unknown (or an hourly item)."""
        if self.tokens_per_call is None or self.price is None:
            return None
        per_unit = _UNIT_TOKENS.get(self.price.unit)
        if per_unit is None:
            return None
        return self.price.unit_price * self.tokens_per_call * 1000 / per_unit

    @property
    def known(self) -> bool:
        """Both the price and the quantity are known."""
        if self.tokens_per_call is not None:
            return self.per_1000_calls is not None
        return self.hourly is not None


@dataclass(frozen=True)
class RegionCost:
    """The bill in one region."""

    region: str
    items: tuple[Item, ...]
    lab_call_items: tuple[Item, ...] = field(default=())
    eval_row_items: tuple[Item, ...] = field(default=())

    def _sum(self, values: list[float | None]) -> float:
        return sum(v for v in values if v is not None)

    @property
    def hourly_items(self) -> tuple[Item, ...]:
        """The items billed by the hour."""
        return tuple(i for i in self.items if i.tokens_per_call is None)

    @property
    def running_per_hour(self) -> float:
        """An hour with the cluster up (known items only; see :attr:`partial`)."""
        return self._sum([i.hourly for i in self.hourly_items])

    @property
    def idle_per_hour(self) -> float:
        """An hour with nothing running."""
        return self._sum([i.hourly for i in self.hourly_items if i.idle])

    @property
    def per_1000_calls(self) -> float:
        """1,000 lab calls on the chat deployment."""
        return self._sum([i.per_1000_calls for i in self.lab_call_items])

    @property
    def per_1000_eval_rows(self) -> float:
        """1,000 eval rows: each row's call and its judge's call."""
        return self._sum([i.per_1000_calls for i in self.eval_row_items])

    def total(self, hours: float, students: int, eval_rows: int) -> float:
        """A class day: per student, the stack up ``hours``, the lab's calls, one eval run."""
        per_student = (
            self.running_per_hour * hours
            + self.per_1000_calls * LAB_CALLS_PER_STUDENT / 1000
            + self.per_1000_eval_rows * eval_rows / 1000
        )
        return per_student * students

    @property
    def unknown(self) -> tuple[str, ...]:
        """The items no source prices: the totals leave them out and say so."""
        return tuple(i.resource for i in self.items if not i.known)

    @property
    def partial(self) -> bool:
        """Some item is unknown, so the totals are lower bounds."""
        return bool(self.unknown)


def _tokens(
    book: PriceBook, region: str, role: str, deployment: str, model: str, version: str | None,
    call: TokenCounts,
) -> list[Item]:  # fmt: skip
    meters = token_meters(model, version)
    label = f"{role} on {deployment} ({model} {version or 'default version'})"
    if meters is None:
        note = "no Standard token meter known for this model and version"
        return [
            Item(f"{label} input tokens", f"{model} input", None, tokens_per_call=call.input,
                 note=note),
            Item(f"{label} output tokens", f"{model} output", None, tokens_per_call=call.output,
                 note=note),
        ]  # fmt: skip
    items = []
    for (meter, count), kind in zip(
        ((meters[0], call.input), (meters[1], call.output)), ("input", "output"), strict=True
    ):
        price = book.price(Query(_OPENAI[0], region, product=_OPENAI[1], meter=meter))
        items.append(Item(f"{label} {kind} tokens", meter, price, tokens_per_call=count))
    return items


def _compute(book: PriceBook, config: LlmopsConfig, region: str) -> list[Item]:
    if config.compute == "serverless":
        meter = "Premium Automated Serverless Compute DBU"
        price = book.price(
            Query("Azure Databricks", region, product="Azure Databricks Regional", meter=meter)
        )
        note = "serverless jobs bill the DBUs each run uses; Databricks publishes no rate an hour"
        return [Item("serverless jobs compute", meter, price, quantity_per_hour=None, note=note)]
    vm = book.price(Query("Virtual Machines", region, arm_sku=config.node_type, unit="1 Hour"))
    items = [Item(f"cluster VM ({config.node_type}, Linux)", config.node_type, vm, 1.0)]
    dbus = DBU_PER_HOUR.get(config.node_type)
    meter = "Premium All-purpose Compute DBU"
    if config.workspace_sku == "trial":
        note = "trial workspace: DBUs are free for the trial's 14 days, then Premium"
    else:
        note = "" if dbus is not None else "DBUs per hour of this node type not in the table"
    price = book.price(Query("Azure Databricks", region, product="Azure Databricks", meter=meter))
    items.append(Item("cluster DBUs (all-purpose, Premium)", meter, price, dbus, note=note))
    return items


def _gateway(config: LlmopsConfig) -> list[Item]:
    if not config.gateway:
        return []
    endpoints = 2 if config.judge_model else 1
    note = (
        "Databricks' charge for an external-model serving endpoint and its AI Gateway "
        "features is not among the meters priced here"
    )
    return [
        Item(f"gateway serving endpoints ({endpoints})", "Model Serving", None, None, idle=True,
             note=note)
    ]  # fmt: skip


def _network(config: LlmopsConfig) -> list[Item]:
    if config.network != "private":
        return []
    # The virtual network, its subnets, the security group and the zone's link cost nothing.
    note = (
        "Azure Private Link's per-hour and per-GB charges and the private DNS zone's monthly "
        "charge are not among the meters priced here (docs/networking.md gives them)"
    )
    return [
        Item("private endpoint and DNS zone (private mode)", "Private Link", None, None,
             idle=True, note=note)
    ]  # fmt: skip


def estimate(config: LlmopsConfig, region: str, book: PriceBook) -> RegionCost:
    """Price the stack in ``region``."""
    lab = _tokens(
        book, region, "chat", config.deployment_name, config.model_name, config.model_version,
        LAB_CALL,
    )  # fmt: skip
    row = _tokens(
        book, region, "eval row", config.deployment_name, config.model_name,
        config.model_version, EVAL_ROW,
    )  # fmt: skip
    if config.judge_model:
        judge_name, judge_model, judge_version = (
            config.judge_model, config.judge_model, config.judge_model_version
        )  # fmt: skip
    else:
        judge_name, judge_model, judge_version = (
            config.deployment_name, config.model_name, config.model_version
        )  # fmt: skip
    row += _tokens(book, region, "eval judge", judge_name, judge_model, judge_version, JUDGE_CALL)
    hourly = _compute(book, config, region) + _gateway(config) + _network(config)
    return RegionCost(
        region=region,
        items=tuple(hourly + lab + row),
        lab_call_items=tuple(lab),
        eval_row_items=tuple(row),
    )
