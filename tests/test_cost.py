"""``python -m llmops_infra cost`` against a local fake of the Azure Retail Prices API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fake_prices import FakePrices, lab_items

from llmops_infra.cost.command import price_stack
from llmops_infra.cost.estimate import RegionCost
from llmops_infra.offline.stack_files import read_stack_config
from workload.contract import PROJECT_DIR

DAY = date(2026, 12, 7)
ROWS = 23  # the packaged prompt set's rows (workload/evaluation/datasets/lab_prompts.jsonl)


@pytest.fixture
def prices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakePrices]:
    with FakePrices(lab_items("eastus2") + lab_items("swedencentral", 1.2)) as fake:
        monkeypatch.setenv("LLMOPS_PRICES_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        yield fake


def _cost(*pairs: str) -> list[RegionCost]:
    overrides = dict(pair.split("=", 1) for pair in pairs)
    config = read_stack_config(PROJECT_DIR, "dev", overrides)
    costs, _ = price_stack(config, DAY)
    return costs


def _by_resource(cost: RegionCost) -> dict[str, Any]:
    return {item.resource: item for item in cost.items}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmops_infra", "cost", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cluster_stack_as_a_user_runs_cost(prices: FakePrices, tmp_path: Path) -> None:
    env = {"LLMOPS_PRICES_ENDPOINT": prices.endpoint, "XDG_CACHE_HOME": str(tmp_path)}
    done = _run(env, "--config", "llmops:region=eastus2", "--hours", "6", "--students", "20",
                "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["region"], shown["currency"], shown["source"]) == (
        "eastus2", "USD", "retail-prices-api"
    )  # fmt: skip
    items = {item["resource"]: item for item in shown["items"]}
    vm = items["cluster VM (Standard_D4ds_v5, Linux)"]
    assert (vm["unit_price"], vm["unit"], vm["quantity_per_hour"], vm["hourly"]) == (
        0.226, "1 Hour", 1.0, 0.226
    ), "the Linux pay-as-you-go price, one node"  # fmt: skip
    dbu = items["cluster DBUs (all-purpose, Premium)"]
    assert (dbu["meter"], dbu["unit_price"], dbu["quantity_per_hour"]) == (
        "Premium All-purpose Compute DBU", 0.55, 1.0
    ), "Standard_D4ds_v5 burns 1 DBU an hour (Azure Databricks pricing page)"  # fmt: skip
    assert shown["running_per_hour"] == pytest.approx(0.776)
    assert shown["idle_per_hour"] == 0, "a terminated cluster and idle deployments bill nothing"
    lab = 30 * 0.00275 + 100 * 0.011  # per 1,000 calls: tokens a call x price per 1K tokens
    row = 30 * 0.00275 + 150 * 0.011 + 440 * 0.00275 + 400 * 0.011
    assert shown["per_1000_calls"] == pytest.approx(lab)
    assert shown["per_1000_eval_rows"] == pytest.approx(row)
    assert shown["total"] == pytest.approx(20 * (0.776 * 6 + lab / 1000 + row * ROWS / 1000)), (
        "a class day: per student the stack up 6 hours, one lab call and one eval run"
    )
    assert shown["regions"][0]["unknown"] == [] and shown["partial"] is False
    assert date.fromisoformat(shown["as_of"]) >= DAY, "the day the API answered"


def test_the_draw_prices_each_region_and_an_unlisted_one_is_unknown(prices: FakePrices) -> None:
    costs = _cost()
    assert [c.region for c in costs] == [
        "eastus2", "northcentralus", "swedencentral", "switzerlandwest"
    ], "with no region pinned, every region the draw can land on"  # fmt: skip
    east, north, sweden, _ = costs
    assert sweden.running_per_hour == pytest.approx(0.776 * 1.2), "each region at its own price"
    assert not east.partial
    assert north.partial and all(not item.known for item in north.items)
    assert north.running_per_hour == 0 and "cluster VM (Standard_D4ds_v5, Linux)" in north.unknown
    assert all(item.price is None for item in north.items), "never another region's price"


def test_serverless_prices_its_dbu_and_says_the_hour_is_unknown(prices: FakePrices) -> None:
    (cost,) = _cost("llmops:region=eastus2", "llmops:compute=serverless")
    items = _by_resource(cost)
    assert not any(name.startswith("cluster") for name in items), "no cluster in serverless mode"
    jobs = items["serverless jobs compute"]
    assert jobs.price is not None and jobs.price.unit_price == 0.45
    assert jobs.price.meter == "Premium Automated Serverless Compute DBU"
    assert jobs.hourly is None and cost.partial, "DBUs an hour of a serverless job: unknown"


def test_a_judge_deployment_prices_the_eval_judge_on_its_own_meters(prices: FakePrices) -> None:
    (cost,) = _cost(
        "llmops:region=eastus2", "llmops:judgeModel=gpt-4o-mini",
        "llmops:judgeModelVersion=2024-07-18",
    )  # fmt: skip
    judge = [item for item in cost.eval_row_items if item.resource.startswith("eval judge")]
    assert [item.price.meter for item in judge if item.price] == [
        "gpt-4o-mini-0718-Inp-regnl Tokens", "gpt-4o-mini-0718-Outp-regnl Tokens"
    ]  # fmt: skip
    assert cost.per_1000_eval_rows == pytest.approx(
        30 * 0.00275 + 150 * 0.011 + 440 * 0.000165 + 400 * 0.00066
    )


def test_the_gateway_adds_an_unknown_item_that_bills_idle(prices: FakePrices) -> None:
    (cost,) = _cost("llmops:region=eastus2", "llmops:gateway=true")
    gateway = _by_resource(cost)["gateway serving endpoints (1)"]
    assert gateway.idle and gateway.price is None
    assert cost.partial and "gateway serving endpoints (1)" in cost.unknown


def test_private_mode_adds_an_unknown_item_that_bills_idle(prices: FakePrices) -> None:
    (cost,) = _cost("llmops:region=eastus2", "llmops:network=private")
    private = _by_resource(cost)["private endpoint and DNS zone (private mode)"]
    assert private.idle and private.price is None
    assert cost.partial and "private endpoint and DNS zone (private mode)" in cost.unknown
    (public,) = _cost("llmops:region=eastus2")
    assert "private endpoint and DNS zone (private mode)" not in _by_resource(public)


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/retail/prices"


def test_a_closed_endpoint_prices_from_the_bundled_table_and_says_so(tmp_path: Path) -> None:
    env = {"LLMOPS_PRICES_ENDPOINT": _closed_port(), "XDG_CACHE_HOME": str(tmp_path)}
    done = _run(env, "--config", "llmops:region=eastus2", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["source"], shown["as_of"]) == ("bundled", "2026-09-30")
    items = {item["resource"]: item for item in shown["items"]}
    assert items["cluster VM (Standard_D4ds_v5, Linux)"]["unit_price"] == "unknown"
    assert items["cluster VM (Standard_D4ds_v5, Linux)"]["hourly"] == "unknown"
    assert shown["partial"] is True
    text = _run(env, "--config", "llmops:region=eastus2").stdout
    assert "the bundled table of 2026-09-30 (the Retail Prices API could not be reached)" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--students", "0"), "error: --students '0' must be a whole number >= 1"),
        (("--hours", "-1"), "error: --hours '-1' must be a number of hours >= 0, e.g. 8"),
        (("--hours", "eight"), "error: --hours 'eight' must be a number of hours >= 0, e.g. 8"),
    ],
)
def test_bad_input_exits_2_in_one_line_before_any_request(
    prices: FakePrices, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    env = {"LLMOPS_PRICES_ENDPOINT": prices.endpoint, "XDG_CACHE_HOME": str(tmp_path)}
    done = _run(env, *args)
    assert (done.returncode, done.stderr, done.stdout) == (2, message + "\n", "")
    assert prices.filters == [], "nothing is asked of the API"


def test_the_plan_ends_with_the_cost_line(prices: FakePrices, tmp_path: Path) -> None:
    env = {"LLMOPS_PRICES_ENDPOINT": prices.endpoint, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "llmops_infra", "plan", "--no-policy",
         "--config", "llmops:region=eastus2"],
        cwd=PROJECT_DIR, env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    last = done.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("Cost: $0.78 an hour running, $0.00 idle in eastus2 (Azure Retail "
                           "Prices API, "), last  # fmt: skip
    assert last.endswith("`python -m llmops_infra cost` for each item and a class day)"), last
    assert prices.filters, "the prices came from the API"


def test_the_plan_line_says_bundled_and_partial_without_the_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from llmops_infra.cost.command import plan_line

    monkeypatch.setenv("LLMOPS_PRICES_ENDPOINT", _closed_port())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    line = plan_line("dev", ["llmops:region=eastus2"])
    assert line.startswith(
        "Cost: unknown an hour running, $0.00 idle in eastus2 (bundled prices of 2026-09-30, the "
        "API unreachable; partial: some prices unknown; "
    ), "the cluster's hour has no bundled price: unknown, never $0.00: " + line
    assert plan_line("dev", ["llmops:capacity=0"]) == "", "bad settings: the plan says why"


def test_a_hanging_lookup_leaves_the_plan_to_price_offline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import threading

    from llmops_infra.cost import command
    from llmops_infra.offline import plan_command

    release = threading.Event()
    asked: list[bool] = []

    def lookup(stack: str, pairs: list[str], *, offline: bool = False) -> str:
        asked.append(offline)
        if not offline:
            release.wait(timeout=60)  # a name lookup no socket timeout bounds
            return "Cost: from the API"
        return "Cost: from the cache and the bundled table"

    monkeypatch.setattr(command, "plan_line", lookup)
    monkeypatch.setattr(plan_command, "run", lambda args: 0)
    monkeypatch.setattr(plan_command, "COST_WAIT_SECONDS", 0.05)
    args = argparse.Namespace(stack="dev", config=[], json=False)
    try:
        assert plan_command.run_with_cost(args) == 0
    finally:
        release.set()
    assert capsys.readouterr().out == "\nCost: from the cache and the bundled table\n"
    assert asked == [False, True], "the plan did not wait for the hanging lookup"


def test_the_plan_line_shows_a_partly_known_hour_as_a_lower_bound() -> None:
    from llmops_infra.cost.estimate import Item, RegionCost
    from llmops_infra.cost.report import plan_line
    from llmops_infra.cost.retail_prices import Price

    vm = Price(0.2, "1 Hour", "D4ds v5", "USD", "retail-prices-api", "2026-12-07")
    cost = RegionCost(
        "eastus2",
        (
            Item("cluster VM", "D4ds v5", vm, quantity_per_hour=1),
            Item("cluster DBUs", "Premium All-purpose Compute DBU", None, quantity_per_hour=1),
        ),
    )
    line = plan_line([cost], "2026-12-07")
    assert line.startswith("Cost: at least $0.20 an hour running, $0.00 idle in eastus2"), (
        "an hour with an unknown price is a lower bound, said so: " + line
    )
