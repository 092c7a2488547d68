"""The priced stack for people (a table per region) and machines (one JSON object).

Shared by ``cost`` and the plan's last line, so both say the same figures the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmops_infra.cost.estimate import (
    EVAL_ROW,
    JUDGE_CALL,
    LAB_CALL,
    LAB_CALLS_PER_STUDENT,
    Item,
    RegionCost,
)
from llmops_infra.cost.retail_prices import API_SOURCE, BUNDLED_SOURCE

__all__ = ["as_of", "plan_line", "source", "to_json", "to_text"]

UNKNOWN = "unknown"


def _items(costs: Sequence[RegionCost]) -> list[Item]:
    return [item for cost in costs for item in cost.items]


def source(costs: Sequence[RegionCost]) -> str:
    """``bundled`` when any price came from the shipped table, else the API's name."""
    sources = {i.price.source for i in _items(costs) if i.price is not None}
    return BUNDLED_SOURCE if BUNDLED_SOURCE in sources else API_SOURCE


def as_of(costs: Sequence[RegionCost], today: str) -> str:
    """The oldest date among the prices used (today when none was found)."""
    dates = [i.price.as_of for i in _items(costs) if i.price is not None]
    return min(dates, default=today)


def _money(value: float | None) -> Any:
    return UNKNOWN if value is None else round(value, 6)


def _item_json(item: Item) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "resource": item.resource,
        "meter": item.price.meter if item.price else item.meter,
        "unit": item.price.unit if item.price else UNKNOWN,
        "unit_price": _money(item.price.unit_price if item.price else None),
        "source": item.price.source if item.price else UNKNOWN,
        "idle": item.idle,
    }
    if item.tokens_per_call is not None:
        shown["tokens_per_call"] = item.tokens_per_call
        shown["per_1000_calls"] = _money(item.per_1000_calls)
        shown["hourly"] = None
    else:
        q = item.quantity_per_hour
        shown["quantity_per_hour"] = UNKNOWN if q is None else q
        shown["hourly"] = _money(item.hourly)
    if item.note:
        shown["note"] = item.note
    return shown


def _region_json(cost: RegionCost, hours: float, students: int, rows: int) -> dict[str, Any]:
    return {
        "region": cost.region,
        "items": [_item_json(item) for item in cost.items],
        "running_per_hour": round(cost.running_per_hour, 6),
        "idle_per_hour": round(cost.idle_per_hour, 6),
        "per_1000_calls": round(cost.per_1000_calls, 6),
        "per_1000_eval_rows": round(cost.per_1000_eval_rows, 6),
        "total": round(cost.total(hours, students, rows), 6),
        "partial": cost.partial,
        "unknown": list(cost.unknown),
    }


def to_json(
    costs: Sequence[RegionCost], *, pinned: bool, hours: float, students: int, rows: int,
    today: str, stack: str,
) -> str:  # fmt: skip
    """One JSON object: the dearest region's figures at the top level (the only one when the
    region is pinned) and every region of the draw under ``regions``."""
    regions = [_region_json(cost, hours, students, rows) for cost in costs]
    top = max(regions, key=lambda r: r["total"])
    return json.dumps(
        {
            "stack": stack,
            "currency": "USD",
            "region": top["region"] if pinned else None,
            "regions": regions,
            "source": source(costs),
            "as_of": as_of(costs, today),
            **{k: top[k] for k in ("items", "running_per_hour", "idle_per_hour")},
            **{k: top[k] for k in ("per_1000_calls", "per_1000_eval_rows", "total")},
            "partial": any(r["partial"] for r in regions),
            "hours": hours,
            "students": students,
            "assumptions": {
                "lab_call_tokens": vars(LAB_CALL),
                "eval_row_tokens": vars(EVAL_ROW),
                "judge_call_tokens": vars(JUDGE_CALL),
                "lab_calls_per_student": LAB_CALLS_PER_STUDENT,
                "eval_rows_per_student": rows,
                "total": "students x (running_per_hour x hours + lab calls + one eval run)",
            },
        },
        indent=2,
    )


def _price_text(item: Item) -> str:
    if item.price is None:
        return UNKNOWN
    return f"${item.price.unit_price:.6g} / {item.price.unit}"


def _line(item: Item) -> str:
    if item.tokens_per_call is not None:
        amount = item.per_1000_calls
        what = f"{item.tokens_per_call} tokens a call"
        figure = f"${amount:.4f} per 1,000 calls" if amount is not None else UNKNOWN
    else:
        q = item.quantity_per_hour
        what = f"{q:g} an hour" if q is not None else "quantity unknown"
        figure = f"${item.hourly:.4f} an hour" if item.hourly is not None else UNKNOWN
        figure += " (bills idle)" if item.idle else ""
    note = f"  [{item.note}]" if item.note else ""
    return f"  {item.resource}: {item.meter}, {_price_text(item)} x {what} = {figure}{note}"


def to_text(
    costs: Sequence[RegionCost], *, hours: float, students: int, rows: int, today: str,
    stack: str,
) -> str:  # fmt: skip
    """A block per region: its items, then the hour, 1,000 calls and the class day."""
    origin = (
        f"the bundled table of {as_of(costs, today)} (the Retail Prices API could not be reached)"
        if source(costs) == BUNDLED_SOURCE
        else f"the Azure Retail Prices API, {as_of(costs, today)}"
    )
    lines = [f"Stack '{stack}' at Azure's retail list prices (USD, pay-as-you-go; {origin})"]
    for cost in costs:
        lines += ["", f"{cost.region}:"]
        lines += [_line(item) for item in cost.items]
        at_least = "at least " if cost.partial else ""
        lines.append(
            f"  running {at_least}${cost.running_per_hour:.2f} an hour, idle "
            f"{at_least}${cost.idle_per_hour:.2f} an hour; 1,000 lab calls "
            f"${cost.per_1000_calls:.2f}, 1,000 eval rows ${cost.per_1000_eval_rows:.2f}"
        )
        lines.append(
            f"  class day ({hours:g} h, {students} student{'s' if students != 1 else ''}, "
            f"{LAB_CALLS_PER_STUDENT} lab call and {rows} eval rows each): "
            f"{at_least}${cost.total(hours, students, rows):.2f}"
        )
        if cost.partial:
            lines.append(f"  partial: unknown {'; '.join(cost.unknown)}")
    lines += [
        "",
        "Not priced: storage, egress, taxes, discounts, the workspace's managed resources "
        "(docs/cost.md).",
    ]
    return "\n".join(lines)


def _per_hour(costs: Sequence[RegionCost], *, idle: bool) -> str:
    """The hourly figure over the regions: ``unknown`` when no billed item of it has a price,
    ``at least`` when some have none (an unknown price is never shown as $0)."""
    items = [[i for i in c.hourly_items if i.idle or not idle] for c in costs]
    known = [sum(i.hourly for i in these if i.hourly is not None) for these in items]
    if any(these and all(i.hourly is None for i in these) for these in items):
        return "unknown"
    low, high = min(known), max(known)
    figure = f"${low:.2f}" if low == high else f"${low:.2f}-${high:.2f}"
    missing = any(i.hourly is None for these in items for i in these)
    return f"at least {figure}" if missing else figure


def plan_line(costs: Sequence[RegionCost], today: str) -> str:
    """The plan's last line: running and idle per hour, where the prices came from."""
    partial = any(c.partial for c in costs)
    where = (
        costs[0].region if len(costs) == 1 else f"the {len(costs)} regions the stack can land in"
    )
    origin = (
        f"bundled prices of {as_of(costs, today)}, the API unreachable"
        if source(costs) == BUNDLED_SOURCE
        else f"Azure Retail Prices API, {as_of(costs, today)}"
    )
    more = "partial: some prices unknown; " if partial else ""
    return (
        f"Cost: {_per_hour(costs, idle=False)} an hour running, {_per_hour(costs, idle=True)} "
        f"idle in {where} ({origin}; {more}`python -m llmops_infra cost` for each item and a "
        "class day)"
    )
