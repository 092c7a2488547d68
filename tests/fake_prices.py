"""A local fake of the Azure Retail Prices API: a real HTTP server on 127.0.0.1.

It answers ``GET /api/retail/prices?$filter=...`` as the API does: ``{"BillingCurrency",
"CustomerEntityId", "CustomerEntityType", "Items", "NextPageLink", "Count"}``, a few items a
page (the API pages at 100; the fake at ``page_size`` so pages are exercised), each item in
the API's JSON shape. The filter is the API's OData subset the code sends: ``field eq
'value'`` joined by ``and``, values case-sensitive, quotes doubled. Every request's filter
is recorded.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from typing import Any

from fake_azure_openai import JsonHandler, LoopbackServer

__all__ = ["FakePrices", "item", "lab_items"]

_CLAUSE = re.compile(r"(\w+) eq '((?:[^']|'')*)'")


def item(
    region: str,
    service: str,
    product: str,
    meter: str,
    price: float,
    *,
    sku: str = "",
    arm_sku: str = "",
    unit: str = "1 Hour",
    type: str = "Consumption",
) -> dict[str, Any]:
    """One price item as the API lists it."""
    return {
        "currencyCode": "USD",
        "tierMinimumUnits": 0.0,
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": region,
        "location": region,
        "effectiveStartDate": "2024-01-01T00:00:00Z",
        "meterId": f"meter-{abs(hash((region, meter, sku, type, product))) % 10**8}",
        "meterName": meter,
        "productId": "DZH000000000",
        "skuId": "DZH000000000/0001",
        "productName": product,
        "skuName": sku or meter,
        "serviceName": service,
        "serviceId": "DZH000000000",
        "serviceFamily": "Compute",
        "unitOfMeasure": unit,
        "type": type,
        "isPrimaryMeterRegion": True,
        "armSkuName": arm_sku,
    }


def lab_items(region: str, scale: float = 1.0) -> list[dict[str, Any]]:
    """What the API lists for the lab's meters in one region, with the prices a stack never
    pays beside the right ones (Windows, Spot, Low Priority, reservation, Dev/Test)."""
    vm = "Virtual Machines"
    series = "Virtual Machines Ddsv5 Series"
    d4 = "Standard_D4ds_v5"
    dbx = "Azure Databricks"
    openai = ("Foundry Models", "Azure OpenAI")
    return [
        item(region, vm, series + " Windows", "D4ds v5", 0.4 * scale, sku="D4ds v5", arm_sku=d4),
        item(region, vm, series, "D4ds v5 Spot", 0.05 * scale, sku="D4ds v5 Spot", arm_sku=d4),
        item(region, vm, series, "D4ds v5 Low Priority", 0.04 * scale, arm_sku=d4,
             sku="D4ds v5 Low Priority"),
        item(region, vm, series, "D4ds v5", 1400.0 * scale, sku="D4ds v5", arm_sku=d4,
             type="Reservation", unit="1 Year"),
        item(region, vm, series, "D4ds v5", 0.15 * scale, sku="D4ds v5", arm_sku=d4,
             type="DevTestConsumption"),
        item(region, vm, series, "D4ds v5", 0.226 * scale, sku="D4ds v5", arm_sku=d4),
        item(region, dbx, dbx, "Premium All-purpose Compute DBU", 0.55 * scale,
             sku="Premium All-purpose Compute"),
        item(region, dbx, dbx, "Premium Jobs Compute DBU", 0.30 * scale,
             sku="Premium Jobs Compute"),
        item(region, dbx, "Azure Databricks Regional", "Premium Automated Serverless Compute DBU",
             0.45 * scale, sku="Premium Automated Serverless Compute"),
        item(region, *openai, "gpt 4o 1120 Inp glbl Tokens", 0.0025 * scale, unit="1K"),
        item(region, *openai, "gpt 4o 1120 Inp regnl Tokens", 0.00275 * scale, unit="1K"),
        item(region, *openai, "gpt 4o 1120 Outp regnl Tokens", 0.011 * scale, unit="1K"),
        item(region, *openai, "gpt-4o-mini-0718-Inp-regnl Tokens", 0.000165 * scale, unit="1K"),
        item(region, *openai, "gpt-4o-mini-0718-Outp-regnl Tokens", 0.00066 * scale, unit="1K"),
    ]  # fmt: skip


def _matches(filter_text: str, entry: dict[str, Any]) -> bool:
    return all(
        entry.get(name) == value.replace("''", "'") for name, value in _CLAUSE.findall(filter_text)
    )


class _Handler(JsonHandler):
    server_state: FakePrices

    def do_GET(self) -> None:
        state = self.server_state
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        with state.lock:
            state.filters.append(query.get("$filter", [""])[0])
        if parsed.path != "/api/retail/prices":
            self._send(404, {"Error": {"Code": "NotFound"}})
            return
        if state.status != 200:
            self._send(state.status, {"Error": {"Code": "ServerError"}})
            return
        filter_text = query.get("$filter", [""])[0]
        skip = int(query.get("$skip", ["0"])[0])
        found = [entry for entry in state.items if _matches(filter_text, entry)]
        page = found[skip : skip + state.page_size]
        following = skip + state.page_size
        next_link = None
        if following < len(found):
            rest = urllib.parse.urlencode({"$filter": filter_text, "$skip": following})
            next_link = f"{state.base}/api/retail/prices?{rest}"
        self._send(
            200,
            {
                "BillingCurrency": "USD",
                "CustomerEntityId": "Default",
                "CustomerEntityType": "Retail",
                "Items": page,
                "NextPageLink": next_link,
                "Count": len(page),
            },
        )


class FakePrices(LoopbackServer):
    """The fake API; ``endpoint`` is what ``LLMOPS_PRICES_ENDPOINT`` takes."""

    def __init__(self, items: list[dict[str, Any]], *, page_size: int = 3) -> None:
        self.items = items
        self.page_size = page_size
        self.status = 200
        self.filters: list[str] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._serve(handler)
        self.base = self._address

    @property
    def endpoint(self) -> str:
        """The prices URL, as ``LLMOPS_PRICES_ENDPOINT`` takes it."""
        return f"{self.base}/api/retail/prices"
