"""The Retail Prices API client: the right item, every page, the day cache, the fallback."""

from __future__ import annotations

import socket
from datetime import date
from pathlib import Path

import pytest
from fake_prices import FakePrices, lab_items

from llmops_infra.cost import bundled
from llmops_infra.cost.retail_prices import PriceBook, Query

D4 = Query("Virtual Machines", "eastus2", arm_sku="Standard_D4ds_v5", unit="1 Hour")
DAY = date(2026, 12, 7)


@pytest.fixture
def prices() -> FakePrices:
    with FakePrices(lab_items("eastus2") + lab_items("swedencentral", 1.2)) as fake:
        yield fake


def test_the_pay_as_you_go_linux_price_is_picked_on_a_later_page(
    prices: FakePrices, tmp_path: Path
) -> None:
    book = PriceBook(DAY, base=prices.endpoint, cache=tmp_path)
    price = book.price(D4)
    assert price is not None and price.unit_price == 0.226, (
        "the Linux pay-as-you-go D4ds v5 price, not Windows, Spot, Low Priority, a "
        "reservation or Dev/Test"
    )
    assert (price.source, price.as_of, price.unit) == ("retail-prices-api", "2026-12-07", "1 Hour")
    # six VM items at three a page: the right one sits on the second page
    assert (
        prices.filters
        == [
            "serviceName eq 'Virtual Machines' and armRegionName eq 'eastus2' and "
            "armSkuName eq 'Standard_D4ds_v5'"
        ]
        * 2
    ), "the filter names service, region and SKU, and NextPageLink is followed"


def test_the_region_asked_is_the_region_priced(prices: FakePrices, tmp_path: Path) -> None:
    book = PriceBook(DAY, base=prices.endpoint, cache=tmp_path)
    query = Query("Virtual Machines", "swedencentral", arm_sku="Standard_D4ds_v5", unit="1 Hour")
    price = book.price(query)
    assert price is not None and price.unit_price == pytest.approx(0.226 * 1.2)


def test_a_meter_the_api_does_not_list_is_unknown_not_zero(
    prices: FakePrices, tmp_path: Path
) -> None:
    book = PriceBook(DAY, base=prices.endpoint, cache=tmp_path)
    query = Query("Virtual Machines", "switzerlandwest", arm_sku="Standard_D4ds_v5")
    assert book.price(query) is None
    assert book.reachable, "an empty answer is an answer: the API stays in use"


def test_the_day_cache_answers_the_second_ask_and_a_new_day_asks_again(
    prices: FakePrices, tmp_path: Path
) -> None:
    PriceBook(DAY, base=prices.endpoint, cache=tmp_path).price(D4)
    asked = len(prices.filters)
    again = PriceBook(DAY, base=prices.endpoint, cache=tmp_path).price(D4)
    assert again is not None and again.unit_price == 0.226
    assert len(prices.filters) == asked, "the same day's second ask is served from the cache"
    assert sorted(p.name[:10] for p in tmp_path.iterdir()) == ["2026-12-07"]

    prices.items[:] = lab_items("eastus2", 2.0)
    tomorrow = PriceBook(date(2026, 12, 8), base=prices.endpoint, cache=tmp_path).price(D4)
    assert tomorrow is not None and tomorrow.unit_price == pytest.approx(0.452)
    assert len(prices.filters) > asked, "a new day asks the API again"


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/retail/prices"


def test_a_closed_endpoint_falls_back_to_the_bundled_table_once(tmp_path: Path) -> None:
    asked: list[str] = []
    book = PriceBook(DAY, base=_closed_port(), cache=tmp_path, timeout=2)
    real_fetch = book.fetch

    def counting(*args: object, **kwargs: object) -> object:
        asked.append("x")
        return real_fetch(*args, **kwargs)

    book.fetch = counting  # type: ignore[assignment]
    tokens = Query("Foundry Models", "eastus2", product="Azure OpenAI",
                   meter="gpt 4o 1120 Inp regnl Tokens")  # fmt: skip
    price = book.price(tokens)
    assert price is not None and price.source == "bundled" and price.as_of == bundled.AS_OF
    assert price.unit_price == pytest.approx(0.00275) and price.unit == "1K"
    assert book.price(D4) is None, "the bundled table has no VM price: unknown, never 0"
    assert len(asked) == 1, "after the first failure the run does not ask again"
    assert not list(tmp_path.iterdir()), "a failure is not cached"


def test_a_server_error_falls_back_too(prices: FakePrices, tmp_path: Path) -> None:
    prices.status = 503
    book = PriceBook(DAY, base=prices.endpoint, cache=tmp_path)
    assert book.price(D4) is None and not book.reachable


def test_the_budget_bounds_all_queries_together_on_the_books_own_clock(tmp_path: Path) -> None:
    now = [100.0]
    timeouts: list[float] = []

    def slow_api(base: str, odata: str, *, timeout: float) -> list[dict[str, object]]:
        timeouts.append(timeout)
        now[0] += 2.0  # each answer takes two seconds of the book's clock
        return []

    book = PriceBook(DAY, base="http://fake", cache=None, budget=3.0, clock=lambda: now[0])
    book.fetch = slow_api  # type: ignore[assignment]
    tokens = Query("Foundry Models", "eastus2", product="Azure OpenAI",
                   meter="gpt 4o 1120 Inp regnl Tokens")  # fmt: skip
    assert book.price(D4) is None  # the API answered: no item
    assert book.price(D4) is None
    price = book.price(tokens)
    assert timeouts == [3.0, 1.0], "each request gets what is left of the budget"
    assert not book.reachable and price is not None and price.source == "bundled", (
        "once the budget is spent the rest comes from the bundled table at once"
    )
