"""The one table of Databricks features per region, the keys that need them, and their rules."""

from __future__ import annotations

import pytest
from conftest import Run

from llmops_infra.errors import ConfigError
from llmops_infra.offline.engine import ProgramFailed
from llmops_infra.stack import region_features
from llmops_infra.stack.config import declarations, parse_config
from llmops_infra.stack.region_features import (
    FEATURE_LABELS,
    REGION_FEATURES,
    Feature,
    missing_features,
    needed_features,
    region_problem,
    unusable_regions,
)
from llmops_infra.stack.regions import AZURE_REGIONS

SHUFFLE = "random:index/randomShuffle:RandomShuffle"
GROUP = "azure-native:resources:ResourceGroup"
LAB_REGIONS = ("eastus2", "northcentralus", "swedencentral", "switzerlandwest")


def test_the_table_names_real_regions_and_known_features() -> None:
    assert set(REGION_FEATURES) <= AZURE_REGIONS
    assert all(features <= set(FEATURE_LABELS) for features in REGION_FEATURES.values())
    assert dict(FEATURE_LABELS) == {
        "model_serving": "Model Serving",
        "external_models": "external models",
        "system_tables": "system tables",
        "serverless_jobs": "serverless jobs",
    }


def test_the_lab_regions_as_read_from_microsoft_learn() -> None:
    # "System tables availability": a check mark for three of the lab's regions, an empty
    # cell for switzerlandwest (the gateway issue says so too). The serverless and model
    # serving tables were not readable: no region is recorded as offering those.
    assert {region: REGION_FEATURES.get(region, frozenset()) for region in LAB_REGIONS} == {
        "eastus2": {"system_tables"},
        "northcentralus": {"system_tables"},
        "swedencentral": {"system_tables"},
        "switzerlandwest": frozenset(),
    }


def test_missing_features_keeps_the_order_asked_and_treats_unknown_regions_as_offering_none() -> (
    None
):
    assert missing_features("eastus2", ("serverless_jobs", "system_tables", "model_serving")) == (
        "serverless_jobs",
        "model_serving",
    )
    assert missing_features("eastus2", ("system_tables",)) == ()
    assert missing_features("narnia", ("system_tables",)) == ("system_tables",)
    assert missing_features("switzerlandwest", ()) == ()


@pytest.mark.parametrize(
    ("settings", "needed"),
    [
        ({}, ()),
        ({"gateway": "true"}, ("model_serving", "external_models", "system_tables")),
        ({"compute": "serverless"}, ("serverless_jobs",)),
        (
            {"gateway": "true", "compute": "serverless"},
            ("model_serving", "external_models", "system_tables", "serverless_jobs"),
        ),
    ],
)
def test_needed_features_follow_the_options(
    settings: dict[str, str], needed: tuple[str, ...]
) -> None:
    assert needed_features(parse_config(settings.get)) == needed


def test_the_region_message_names_region_features_key_and_preflight_pin() -> None:
    config = parse_config({"compute": "serverless"}.get)
    message = region_problem(config, "switzerlandwest")
    assert message is not None and "\n" not in message
    assert "region switzerlandwest" in message
    assert "serverless jobs" in message and "llmops:compute=serverless" in message
    assert "python -m llmops_infra preflight --pin" in message
    assert region_problem(parse_config({}.get), "switzerlandwest") is None, "nothing needed"


def test_unusable_regions_lists_each_allowed_region_with_what_it_lacks() -> None:
    config = parse_config(
        {"gateway": "true", "allowedRegions": '["eastus2", "switzerlandwest"]'}.get
    )
    assert unusable_regions(config) == {
        "eastus2": ("model_serving", "external_models"),
        "switzerlandwest": ("model_serving", "external_models", "system_tables"),
    }
    assert unusable_regions(parse_config({}.get)) == {}


# --- the new keys' own rules ------------------------------------------------------------------


def test_the_new_keys_defaults_come_from_pulumi_yaml() -> None:
    declared = declarations()
    assert {
        key: declared[key].default
        for key in (
            "gateway",
            "gatewayUserTokensPerMinute",
            "gatewayGuardrails",
            "inferenceTable",
            "compute",
        )
    } == {
        "gateway": False,
        "gatewayUserTokensPerMinute": 0,
        "gatewayGuardrails": False,
        "inferenceTable": "",
        "compute": "cluster",
    }


def test_a_full_gateway_configuration_parses() -> None:
    config = parse_config(
        {
            "gateway": "true",
            "gatewayUserTokensPerMinute": "10000",
            "gatewayGuardrails": "true",
            "inferenceTable": "main.llmops-lab",
            "compute": "serverless",
        }.get
    )
    assert (config.gateway, config.gateway_user_tokens_per_minute, config.gateway_guardrails) == (
        True,
        10000,
        True,
    )
    assert (config.inference_table, config.compute) == ("main.llmops-lab", "serverless")


def test_the_gateway_is_refused_for_a_keyless_stack_with_one_message() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({"gateway": "true", "authMode": "entra", "gatewayGuardrails": "true"}.get)
    message = str(refused.value)
    assert message.count("llmops:") == 1, f"one problem, not the guardrails' too: {message}"
    assert "llmops:gateway" in message and "entra" in message
    assert "Databricks secret" in message and "Beta" in message


@pytest.mark.parametrize(
    ("settings", "ceiling"),
    [
        ({"capacity": "10"}, 10000),
        ({"capacity": "30", "judgeModel": "gpt-4o-mini", "judgeCapacity": "20"}, 20000),
        ({"capacity": "5", "judgeModel": "gpt-4o-mini", "judgeCapacity": "20"}, 5000),
    ],
)
def test_the_per_user_limit_is_at_most_each_endpoints_deployment(
    settings: dict[str, str], ceiling: int
) -> None:
    base = {"gateway": "true", **settings}
    parse_config({**base, "gatewayUserTokensPerMinute": str(ceiling)}.get)
    with pytest.raises(ConfigError, match=rf"llmops:gatewayUserTokensPerMinute.*at most {ceiling}"):
        parse_config({**base, "gatewayUserTokensPerMinute": str(ceiling + 1)}.get)


def test_a_negative_per_user_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"gatewayUserTokensPerMinute = '-5'.*>= 0"):
        parse_config({"gateway": "true", "gatewayUserTokensPerMinute": "-5"}.get)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("gatewayUserTokensPerMinute", "1000"),
        ("gatewayGuardrails", "true"),
        ("inferenceTable", "main.llmops"),
    ],
)
def test_the_gateways_keys_without_the_gateway_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"llmops:{key} .*only to the gateway.*gateway true"):
        parse_config({key: value}.get)


@pytest.mark.parametrize(
    "table",
    ["main", "a.b.c", ".llmops", "main.", "main.my schema", "main/x.y", "a" * 256 + ".b", "m.\x07"],
)
def test_the_inference_table_must_be_catalog_dot_schema(table: str) -> None:
    with pytest.raises(ConfigError, match=r"llmops:inferenceTable .*catalog\.schema"):
        parse_config({"gateway": "true", "inferenceTable": table}.get)


def test_compute_is_cluster_or_serverless() -> None:
    assert parse_config({"compute": "cluster"}.get).compute == "cluster"
    with pytest.raises(ConfigError, match=r"llmops:compute = 'Serverless'.*cluster, serverless"):
        parse_config({"compute": "Serverless"}.get)


# --- the region rule in the program -------------------------------------------------------


EVERYTHING: frozenset[Feature] = frozenset(FEATURE_LABELS)


@pytest.fixture
def every_lab_region_offers_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table as if every lab region offered every feature (the runs fork after this)."""
    table = {region: EVERYTHING for region in LAB_REGIONS}
    monkeypatch.setattr(region_features, "REGION_FEATURES", table)


def test_a_pinned_region_without_a_needed_feature_stops_before_anything(run: Run) -> None:
    with pytest.raises(ProgramFailed) as failure:
        run({"gateway": "true", "region": "switzerlandwest"})
    message = str(failure.value)
    assert failure.value.registered == 0, "nothing registered, not even the random ones"
    assert "region switzerlandwest" in message and "system tables" in message
    assert "llmops:gateway=true" in message and "preflight --pin" in message
    assert "\n" not in message


def test_a_drawn_region_without_a_needed_feature_stops_right_after_the_draw(run: Run) -> None:
    with pytest.raises(ProgramFailed) as failure:
        run({"compute": "serverless"})
    message = str(failure.value)
    assert "the drawn region" in message and "serverless jobs" in message
    assert "llmops:compute=serverless" in message and "preflight --pin" in message
    assert SHUFFLE in failure.value.types, "the draw happened"
    created = [t for t in failure.value.types if not t.startswith(("random:", "llmops:"))]
    assert created == [], "no Azure or Databricks resource, only the draw and logical parents"


@pytest.mark.usefixtures("every_lab_region_offers_everything")
@pytest.mark.parametrize(
    "settings",
    [{"gateway": "true"}, {"compute": "serverless"}, {"gateway": "true", "compute": "serverless"}],
)
def test_the_options_never_change_the_draws_inputs(run: Run, settings: dict[str, str]) -> None:
    plain = run({}).one(SHUFFLE)
    with_options = run(settings)
    assert (
        with_options.one(SHUFFLE).inputs
        == plain.inputs
        == {
            "inputs": list(LAB_REGIONS),
            "resultCount": 1,
        }
    ), "the same draw: a deployed stack keeps its region and every resource"
    assert with_options.one(GROUP).inputs["location"] in LAB_REGIONS


@pytest.mark.usefixtures("every_lab_region_offers_everything")
def test_a_region_that_offers_the_features_deploys(run: Run) -> None:
    pinned = run({"gateway": "true", "compute": "serverless", "region": "switzerlandwest"})
    assert pinned.one(GROUP).inputs["location"] == "switzerlandwest"
