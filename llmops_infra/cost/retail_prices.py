"""Unit prices from the Azure Retail Prices API, cached for a day, with a bundled fallback.

The API (https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices)
needs no sign-in: ``GET /api/retail/prices?$filter=...`` answers ``{"Items": [...],
"NextPageLink": ...}``, at most 100 items a page, so a price may sit on a later page and
every ``NextPageLink`` is followed. Filter values are case-sensitive.

One query's items also hold prices a pay-as-you-go stack never pays: Windows
(``productName`` ends in `` Windows``), Spot and Low Priority (in ``skuName``),
reservations and Dev/Test (``type``). :func:`pick` keeps the one a stack pays.

Who asks decides the clock (``today``): the cost command, never the Pulumi program. A day's
answers are kept in ``<cache>/llmops-databricks/prices/`` (``XDG_CACHE_HOME`` or
``~/.cache``), one file per query and day; an answer with no item is kept too (the API
said: no such price). When the API cannot be reached, the first failure is the last try:
every later query of the run goes straight to the bundled table (:mod:`.bundled`), and the
price says so (``source`` ``bundled``, with the table's date).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

__all__ = [
    "API_SOURCE",
    "BUNDLED_SOURCE",
    "DEFAULT_ENDPOINT",
    "Price",
    "PriceBook",
    "Query",
    "cache_dir",
    "endpoint",
    "fetch_items",
    "pick",
]

DEFAULT_ENDPOINT: Final = "https://prices.azure.com/api/retail/prices"
API_SOURCE: Final = "retail-prices-api"
BUNDLED_SOURCE: Final = "bundled"
Source = Literal["retail-prices-api", "bundled"]

#: At most this many pages per query: a filter this narrow answers in one or two.
_MAX_PAGES: Final = 20


@dataclass(frozen=True)
class Query:
    """One meter to price: the OData filter's fields, each compared for equality."""

    service: str
    region: str
    product: str | None = None
    meter: str | None = None
    arm_sku: str | None = None
    unit: str | None = None
    """The unit the price must be in (``1 Hour``, ``1K``); checked on the item, not filtered."""

    def odata(self) -> str:
        """The ``$filter`` text: every field given, quotes doubled as OData escapes them."""
        fields = {
            "serviceName": self.service,
            "armRegionName": self.region,
            "productName": self.product,
            "meterName": self.meter,
            "armSkuName": self.arm_sku,
        }
        return " and ".join(
            f"{name} eq '{value.replace(chr(39), chr(39) * 2)}'"
            for name, value in fields.items()
            if value is not None
        )

    def matches(self, item: Mapping[str, Any]) -> bool:
        """Whether ``item`` answers this query (the bundled table is searched with it)."""
        wanted = {
            "serviceName": self.service,
            "armRegionName": self.region,
            "productName": self.product,
            "meterName": self.meter,
            "armSkuName": self.arm_sku,
        }
        return all(v is None or item.get(k) == v for k, v in wanted.items())


@dataclass(frozen=True)
class Price:
    """One unit price, and where it came from."""

    unit_price: float
    unit: str
    meter: str
    currency: str
    source: Source
    as_of: str
    """The day the API answered (or the cache kept its answer), or the bundled table's date."""


def _skip_reason(item: Mapping[str, Any]) -> str | None:
    if item.get("type", "Consumption") != "Consumption":
        return "not pay-as-you-go"  # Reservation, DevTestConsumption
    if str(item.get("productName", "")).endswith("Windows"):
        return "Windows"
    sku = str(item.get("skuName", "")) + " " + str(item.get("meterName", ""))
    if "Spot" in sku or "Low Priority" in sku:
        return "Spot or Low Priority"
    return None


def pick(items: Iterable[Mapping[str, Any]], query: Query) -> Mapping[str, Any] | None:
    """The pay-as-you-go item a stack pays: Consumption, Linux, not Spot or Low Priority,
    in the query's unit; among several (tiers), the one from the first unit on."""
    fitting = [
        item
        for item in items
        if query.matches(item)
        and _skip_reason(item) is None
        and (query.unit is None or item.get("unitOfMeasure") == query.unit)
    ]
    if not fitting:
        return None
    return min(fitting, key=lambda item: float(item.get("tierMinimumUnits", 0.0)))


def endpoint() -> str:
    """``LLMOPS_PRICES_ENDPOINT`` (a local fake, a mirror), else Azure's."""
    return os.environ.get("LLMOPS_PRICES_ENDPOINT") or DEFAULT_ENDPOINT


def cache_dir() -> Path:
    """The user's cache folder for the day's prices."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home / "llmops-databricks" / "prices"


class Unreachable(Exception):
    """The API did not answer (no network, a timeout, a server error)."""


def fetch_items(base: str, odata: str, *, timeout: float) -> list[dict[str, Any]]:
    """Every item the API lists for the filter, page after page."""
    url: str | None = f"{base}?{urllib.parse.urlencode({'$filter': odata})}"
    items: list[dict[str, Any]] = []
    for _ in range(_MAX_PAGES):
        if url is None:
            return items
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                page = json.load(response)
        except (OSError, ValueError) as err:  # URLError, timeouts, HTTP errors, bad JSON
            raise Unreachable(f"{base}: {err}") from None
        items.extend(page.get("Items") or [])
        url = page.get("NextPageLink") or None
    raise Unreachable(f"{base}: more than {_MAX_PAGES} pages for {odata}")


@dataclass
class PriceBook:
    """Prices for one run: the day's cache, else the API, else the bundled table."""

    today: date
    base: str = field(default_factory=endpoint)
    cache: Path | None = field(default_factory=cache_dir)
    """None: keep nothing (a test that wants every query to reach the fake)."""
    timeout: float = 5.0
    bundled: Sequence[Mapping[str, Any]] | None = None
    bundled_as_of: str = ""
    reachable: bool = True
    """False once the API failed to answer: the rest of the run uses the bundled table."""
    fetch: Callable[..., list[dict[str, Any]]] = fetch_items
    budget: float | None = None
    """Seconds all the run's requests may take together (the plan's bound); None: no bound."""
    clock: Callable[[], float] = time.monotonic
    _deadline: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.bundled is None:
            from llmops_infra.cost import bundled

            self.bundled = bundled.ITEMS
            self.bundled_as_of = bundled.AS_OF

    def _cache_file(self, query: Query) -> Path | None:
        if self.cache is None:
            return None
        key = hashlib.sha256(f"{self.base}\n{query.odata()}".encode()).hexdigest()[:24]
        return self.cache / f"{self.today.isoformat()}-{key}.json"

    def _items(self, query: Query) -> list[dict[str, Any]] | None:
        path = self._cache_file(query)
        if path is not None and path.is_file():
            try:
                cached: list[dict[str, Any]] = json.loads(path.read_text())
                return cached
            except ValueError:
                pass  # a torn write: ask again
        if not self.reachable:
            return None
        timeout = self.timeout
        if self.budget is not None:
            now = self.clock()
            if self._deadline is None:
                self._deadline = now + self.budget
            timeout = min(timeout, self._deadline - now)
            if timeout <= 0:
                self.reachable = False  # the budget is spent: the rest comes from the table
                return None
        try:
            items = self.fetch(self.base, query.odata(), timeout=timeout)
        except Unreachable:
            self.reachable = False
            return None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".{os.getpid()}.tmp")
                partial.write_text(json.dumps(items))
                partial.replace(path)
            except OSError:
                pass  # a read-only home still prices, only not twice as fast
        return items

    def price(self, query: Query) -> Price | None:
        """The query's unit price, or None when no source lists it (say ``unknown``)."""
        items = self._items(query)
        if items is not None:
            found = pick(items, query)
            source: Source = API_SOURCE
            as_of = self.today.isoformat()
        else:
            found = pick(self.bundled or (), query)
            source, as_of = BUNDLED_SOURCE, self.bundled_as_of
        if found is None:
            return None
        return Price(
            unit_price=float(found["retailPrice"]),
            unit=str(found.get("unitOfMeasure", "")),
            meter=str(found.get("meterName", "")),
            currency=str(found.get("currencyCode", "USD")),
            source=source,
            as_of=as_of,
        )
