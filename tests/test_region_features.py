"""The one table of Databricks features per region, the keys that need them, and their rules."""

from __future__ import annotations

import pytest
from conftest import Run

from llmops_infra.errors import ConfigError
from llmops_infra.offline.engine import ProgramFailed, ProgramRun
from llmops_infra.stack import region_features
from llmops_infra.stack.config import declarations, parse_config
from llmops_infra.stack.region_features import (
    FEATURE_LABELS,
    READ_CELLS,
    REGION_FEATURES,
    Feature,
    draw_candidates,
    draw_problem,
    missing_features,
    needed_features,
    region_problem,
    region_warning,
    unconfirmed_features,
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
        "ai_guardrails": "AI Guardrails",
        "serverless_jobs": "serverless jobs",
    }


def test_the_lab_regions_as_read_from_their_sources() -> None:
    # Learn's "System tables availability": a check mark for three of the lab's regions, an
    # empty cell for switzerlandwest. The lab publisher's setup-serverless.ps1 (commit
    # 2076e18a): the same three on its list of serverless regions, switzerlandwest not. Learn's
    # model serving table (Model Serving, external models, pay-per-token for AI Guardrails)
    # was not readable: no region is recorded either way for those.
    assert {region: REGION_FEATURES.get(region, frozenset()) for region in LAB_REGIONS} == {
        "eastus2": {"system_tables", "serverless_jobs"},
        "northcentralus": {"system_tables", "serverless_jobs"},
        "swedencentral": {"system_tables", "serverless_jobs"},
        "switzerlandwest": frozenset(),
    }
    assert set(LAB_REGIONS) <= READ_CELLS["serverless_jobs"]
    assert READ_CELLS["model_serving"] == READ_CELLS["ai_guardrails"] == frozenset()


def test_serverless_regions_off_the_publishers_list_other_than_the_labs_are_not_guessed() -> None:
    # germanywestcentral is not on setup-serverless.ps1's list; only the lab's own region
    # left off it (switzerlandwest) is read as lacking.
    assert missing_features("germanywestcentral", ("serverless_jobs",)) == ()
    assert unconfirmed_features("germanywestcentral", ("serverless_jobs",)) == ("serverless_jobs",)
    assert missing_features("switzerlandwest", ("serverless_jobs",)) == ("serverless_jobs",)


def test_a_cell_read_empty_is_missing_and_a_cell_not_read_is_unconfirmed() -> None:
    asked: tuple[Feature, ...] = ("serverless_jobs", "system_tables", "model_serving")
    # eastus2: system tables and serverless read, offered; model serving was not read.
    assert missing_features("eastus2", asked) == ()
    assert unconfirmed_features("eastus2", asked) == ("model_serving",)
    # switzerlandwest: its system tables and serverless cells were read, and are empty.
    assert missing_features("switzerlandwest", asked) == ("serverless_jobs", "system_tables")
    assert unconfirmed_features("switzerlandwest", asked) == ("model_serving",)
    # A region the page's text did not reach is never guessed either way.
    assert missing_features("westus3", ("system_tables",)) == ()
    assert unconfirmed_features("westus3", ("system_tables",)) == ("system_tables",)
    assert missing_features("switzerlandwest", ()) == unconfirmed_features("eastus2", ()) == ()
    assert {"switzerlandwest", "eastus2"} <= READ_CELLS["system_tables"]


@pytest.mark.parametrize(
    ("settings", "needed"),
    [
        ({}, ()),
        ({"gateway": "true"}, ("model_serving", "external_models", "system_tables")),
        ({"compute": "serverless"}, ("serverless_jobs",)),
        (
            {"gateway": "true", "gatewayGuardrails": "true"},
            ("model_serving", "external_models", "system_tables", "ai_guardrails"),
        ),
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
    config = parse_config({"gateway": "true"}.get)
    message = region_problem(config, "switzerlandwest")
    assert message is not None and "\n" not in message
    assert "region switzerlandwest" in message
    assert "system tables" in message and "llmops:gateway=true" in message
    assert "python -m llmops_infra preflight --pin" in message
    assert region_problem(parse_config({}.get), "switzerlandwest") is None, "nothing needed"
    guarded = parse_config({"gateway": "true", "gatewayGuardrails": "true"}.get)
    assert region_problem(guarded, "eastus2") is None, "a cell nobody read does not stop it"
    serverless = parse_config({"compute": "serverless"}.get)
    assert region_problem(serverless, "eastus2") is None
    message = region_problem(serverless, "switzerlandwest")
    assert message is not None and "serverless jobs" in message
    assert "llmops:compute=serverless" in message


def test_what_the_table_cannot_confirm_is_a_warning_naming_the_page() -> None:
    guarded = parse_config({"gateway": "true", "gatewayGuardrails": "true"}.get)
    warning = region_warning(guarded, "eastus2")
    assert warning is not None and "\n" not in warning
    assert "region eastus2" in warning and "AI Guardrails" in warning
    assert "not confirmed" in warning and "feature-region-support" in warning
    assert region_warning(parse_config({}.get), "eastus2") is None
    assert region_warning(parse_config({"compute": "serverless"}.get), "eastus2") is None, (
        "serverless cells are read now"
    )


def test_unusable_regions_lists_each_allowed_region_with_what_it_lacks() -> None:
    config = parse_config(
        {"gateway": "true", "allowedRegions": '["eastus2", "switzerlandwest"]'}.get
    )
    assert unusable_regions(config) == {"switzerlandwest": ("system_tables",)}
    assert unusable_regions(parse_config({}.get)) == {}


@pytest.mark.parametrize(
    ("settings", "candidates"),
    [
        ({}, LAB_REGIONS),
        ({"gateway": "true"}, LAB_REGIONS[:3]),
        ({"compute": "serverless"}, LAB_REGIONS[:3]),
        # AI Guardrails' cells are not confirmed anywhere: they keep every region in.
        ({"gateway": "true", "gatewayGuardrails": "true"}, LAB_REGIONS[:3]),
        # westus3's system tables cell was not read: it stays, as it would not stop `up`.
        ({"gateway": "true", "allowedRegions": '["switzerlandwest", "westus3"]'}, ("westus3",)),
        ({"gateway": "true", "allowedRegions": '["switzerlandwest"]'}, ()),
    ],
)
def test_the_draw_picks_among_the_allowed_regions_no_needed_feature_is_read_lacking_in(
    settings: dict[str, str], candidates: tuple[str, ...]
) -> None:
    config = parse_config(settings.get)
    assert draw_candidates(config) == candidates
    assert (draw_problem(config) is None) == bool(candidates)


def test_with_nothing_to_draw_from_the_message_names_each_region_and_what_it_lacks() -> None:
    config = parse_config(
        {"compute": "serverless", "gateway": "true", "allowedRegions": '["switzerlandwest"]'}.get
    )
    message = draw_problem(config)
    assert message is not None and "\n" not in message
    assert "switzerlandwest lacks system tables, serverless jobs" in message
    assert "llmops:compute=serverless and llmops:gateway=true need" in message
    assert "llmops:allowedRegions" in message


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


def test_with_no_allowed_region_offering_what_the_options_need_nothing_is_registered(
    run: Run,
) -> None:
    with pytest.raises(ProgramFailed) as failure:
        run({"gateway": "true", "allowedRegions": '["switzerlandwest"]'})
    message = str(failure.value)
    assert failure.value.registered == 0, "nothing registered, not even the draw"
    assert "no region of llmops:allowedRegions" in message
    assert "switzerlandwest lacks system tables" in message and "llmops:gateway=true" in message
    assert "\n" not in message


def test_the_default_labs_draw_keeps_exactly_its_inputs(run: Run) -> None:
    assert run({}).one(SHUFFLE).inputs == {"inputs": list(LAB_REGIONS), "resultCount": 1}, (
        "the lab's four regions, as before: existing default stacks see no diff"
    )


@pytest.mark.parametrize(
    "settings",
    [
        {"gateway": "true"},
        {"compute": "serverless"},
        {"gateway": "true", "gatewayGuardrails": "true", "compute": "serverless"},
    ],
)
def test_a_first_draw_picks_only_among_the_regions_that_offer_what_the_options_need(
    run: Run, settings: dict[str, str]
) -> None:
    result = run(settings)
    assert result.one(SHUFFLE).inputs == {"inputs": list(LAB_REGIONS[:3]), "resultCount": 1}, (
        "switzerlandwest (no system tables, no serverless jobs) is never drawn"
    )
    assert result.one(GROUP).inputs["location"] in LAB_REGIONS[:3]


def _region_bound(result: ProgramRun) -> dict[str, object]:
    return {r.urn: r.inputs["location"] for r in result.resources if "location" in r.inputs}


@pytest.mark.parametrize(
    "later",
    [
        {"gateway": "true", "compute": "serverless"},
        {"allowedRegions": '["eastus2", "northcentralus"]'},
    ],
    ids=["options", "allowed-regions"],
)
def test_the_draw_is_kept_when_the_options_change_afterwards(
    run: Run, later: dict[str, str]
) -> None:
    first = run({}, stack="kept")
    drawn = first.one(GROUP).inputs["location"]
    assert drawn == "swedencentral", "this stack's draw (the engine's seed) offers everything"
    second = run(later, stack="kept", state=first)
    # pulumi-random replaces a shuffle when its inputs change: the same inputs mean no
    # replacement, so no new draw and no region-bound resource replaced.
    assert second.one(SHUFFLE).inputs == first.one(SHUFFLE).inputs, "no diff on the draw"
    assert second.one(SHUFFLE).outputs["results"] == [drawn]
    assert set(_region_bound(second).values()) == {drawn}
    assert _region_bound(second).keys() >= _region_bound(first).keys()
    kept_outside = [w for w in second.warnings if "no longer lists" in w]
    assert bool(kept_outside) == ("allowedRegions" in later), (
        "a region drawn before and no longer allowed is kept, and said"
    )


def test_an_option_added_later_that_the_drawn_region_lacks_stops_before_anything_changes(
    run: Run,
) -> None:
    first = run({}, stack="stays")
    assert first.one(GROUP).inputs["location"] == "switzerlandwest", "this stack's draw"
    with pytest.raises(ProgramFailed) as failure:
        run({"gateway": "true"}, stack="stays", state=first)
    message = str(failure.value)
    assert "the drawn region switzerlandwest does not offer system tables" in message
    assert "llmops:gateway=true" in message and "preflight --pin" in message
    created = [t for t in failure.value.types if not t.startswith(("random:", "llmops:"))]
    assert created == [], "no Azure or Databricks resource, only the kept draw and parents"


@pytest.mark.usefixtures("every_lab_region_offers_everything")
@pytest.mark.parametrize(
    "settings",
    [{"gateway": "true"}, {"compute": "serverless"}, {"gateway": "true", "compute": "serverless"}],
)
def test_with_every_region_offering_the_options_the_draw_is_the_labs(
    run: Run, settings: dict[str, str]
) -> None:
    plain = run({}).one(SHUFFLE)
    with_options = run(settings)
    assert (
        with_options.one(SHUFFLE).inputs
        == plain.inputs
        == {
            "inputs": list(LAB_REGIONS),
            "resultCount": 1,
        }
    ), "nothing to leave out: the lab's draw"
    assert with_options.one(GROUP).inputs["location"] in LAB_REGIONS


@pytest.mark.usefixtures("every_lab_region_offers_everything")
def test_a_region_that_offers_the_features_deploys(run: Run) -> None:
    pinned = run({"gateway": "true", "compute": "serverless", "region": "switzerlandwest"})
    assert pinned.one(GROUP).inputs["location"] == "switzerlandwest"
