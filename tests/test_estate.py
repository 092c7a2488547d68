"""Into an existing estate: ``llmops:resourceGroupName``, ``llmops:workspaceResourceId`` and
``llmops:monitorSchedule`` under the offline engine, whose world holds the tenant's groups
and workspaces (DESIGN.md, "Into an existing estate")."""

from __future__ import annotations

import json

import pytest
from conftest import Run
from plan_runs import start_in_fork

from llmops_infra.offline import plan
from llmops_infra.offline.engine import (
    FAKE_SUBSCRIPTION_ID,
    HeldWorkspace,
    ProgramFailed,
    ProgramRun,
    World,
)
from llmops_infra.stack.config import parse_config
from llmops_infra.stack.estate import _lookup_failure, network_refusal
from llmops_infra.stack.quartz_cron import cron_problem

GROUP = "azure-native:resources:ResourceGroup"
WORKSPACE = "azure-native:databricks:Workspace"
SHUFFLE = "random:index/randomShuffle:RandomShuffle"
PROVIDER = "pulumi:providers:databricks"
JOB = "databricks:index/job:Job"
GET_GROUP = "azure-native:resources:getResourceGroup"
GET_WORKSPACE = "azure-native:databricks:getWorkspace"

PLATFORM_GROUP = "rg-platform-llmops"
WORKSPACE_ID = (
    f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/rg-data/providers/"
    "Microsoft.Databricks/workspaces/dbw-data"
)
OTHER_SUBSCRIPTION_ID = WORKSPACE_ID.replace(
    FAKE_SUBSCRIPTION_ID, "99999999-9999-9999-9999-999999999999"
)

#: A tenant whose platform team made a group (in a region the lab never uses: a group's own
#: region holds only its metadata) and whose data lives in a Premium workspace.
ESTATE = World(
    resource_groups={PLATFORM_GROUP: "westeurope"},
    workspaces={WORKSPACE_ID: HeldWorkspace(location="northcentralus")},
)


def _failure(run: Run, config: dict[str, str], world: World = ESTATE) -> ProgramFailed:
    with pytest.raises(ProgramFailed) as failed:
        run(config, world=world)
    return failed.value


def _azure(run: ProgramRun) -> list:
    return [r for r in run.resources if r.custom and r.type.startswith("azure-native:")]


def _workspace_url(run: ProgramRun) -> str:
    (lookup,) = [i for i in run.invokes if i.token == GET_WORKSPACE]
    assert lookup.result is not None
    return f"https://{lookup.result['workspaceUrl']}"


# --- the default stack ---------------------------------------------------------------------------


def test_a_stack_without_the_keys_makes_its_own_group_and_workspace_and_looks_nothing_up(
    dev: ProgramRun,
) -> None:
    assert len(dev.by_type(GROUP)) == 1 and len(dev.by_type(WORKSPACE)) == 1
    assert len(dev.by_type(SHUFFLE)) == 1, "the region is drawn"
    assert not [i for i in dev.invokes if i.token in (GET_GROUP, GET_WORKSPACE)]
    assert dev.exports["resource_group_name"].value == dev.one(GROUP).outputs["name"]


# --- llmops:resourceGroupName --------------------------------------------------------------------


def test_an_existing_group_is_looked_up_never_registered_and_holds_every_resource(run: Run) -> None:
    built = run({"resourceGroupName": PLATFORM_GROUP}, world=ESTATE)
    assert not built.by_type(GROUP), "no resource group is a resource of the stack"
    assert [i.args for i in built.invokes if i.token == GET_GROUP] == [
        {"resourceGroupName": PLATFORM_GROUP}
    ]
    groups = {
        r.name: r.inputs.get("resourceGroupName", r.inputs.get("resource_group_name"))
        for r in built.resources
        if r.custom and ("resourceGroupName" in r.inputs or "resource_group_name" in r.inputs)
    }
    assert {"openai-account", "openai-deployment", "databricks-workspace"} <= set(groups)
    assert "openai-account-purge" in groups, "the purge looks in the same group"
    assert set(groups.values()) == {PLATFORM_GROUP}, f"every resource in the group: {groups}"
    assert built.exports["resource_group_name"].value == PLATFORM_GROUP
    # The region rules are unchanged: still drawn among the allowed regions, never the
    # group's own westeurope.
    assert len(built.by_type(SHUFFLE)) == 1
    region = built.exports["region"].value
    assert region in ("eastus2", "northcentralus", "swedencentral", "switzerlandwest")
    assert {r.inputs["location"] for r in _azure(built) if "location" in r.inputs} == {region}


def test_a_group_that_does_not_exist_stops_the_program_before_anything_naming_it(
    run: Run,
) -> None:
    failure = _failure(run, {"resourceGroupName": "rg-typo"})
    message = str(failure)
    assert "llmops:resourceGroupName" in message and "'rg-typo'" in message
    assert "no such resource group" in message
    assert "\n" not in message, "one line"
    assert "RESPONSE 404" not in message and "ERROR CODE" not in message, (
        "not the provider's error passed through"
    )
    assert failure.registered == 0, f"nothing registered: {failure.types}"


# --- llmops:workspaceResourceId ------------------------------------------------------------------


def test_an_existing_workspace_is_used_through_its_url_in_its_region_without_a_draw(
    run: Run,
) -> None:
    built = run({"workspaceResourceId": WORKSPACE_ID}, world=ESTATE)
    assert not built.by_type(WORKSPACE), "no workspace registered"
    assert not any("dbw-managed" in repr(r.inputs) for r in built.resources), (
        "no managed group asked for"
    )
    assert not built.by_type(SHUFFLE), "no draw is registered at all"
    url = _workspace_url(built)
    provider = built.one(PROVIDER)
    assert provider.inputs["host"] == url, "the provider signs in to the existing workspace"
    assert provider.inputs["azureWorkspaceResourceId"] == WORKSPACE_ID
    inside = [r for r in built.resources if r.type.startswith("databricks:index/")]
    assert {r.type for r in inside} >= {
        "databricks:index/secretScope:SecretScope",
        "databricks:index/mlflowExperiment:MlflowExperiment",
        "databricks:index/workspaceFile:WorkspaceFile",
        "databricks:index/cluster:Cluster",
        JOB,
    }
    assert all(r.provider.startswith(provider.urn) for r in inside), (
        "the workspace side is built through the existing workspace's provider"
    )
    assert built.exports["region"].value == "northcentralus", "the workspace's region"
    locations = {r.inputs["location"] for r in _azure(built) if "location" in r.inputs}
    assert locations == {"northcentralus"}, "the account beside the workspace"
    assert built.exports["databricks_workspace_url"].value == url
    assert built.exports["databricks_workspace_resource_id"].value == WORKSPACE_ID
    assert len(built.by_type(GROUP)) == 1, "without resourceGroupName the stack makes its group"


def test_an_existing_group_and_workspace_together(run: Run) -> None:
    built = run(
        {"resourceGroupName": PLATFORM_GROUP, "workspaceResourceId": WORKSPACE_ID}, world=ESTATE
    )
    assert not built.by_type(GROUP) and not built.by_type(WORKSPACE)
    assert not built.by_type(SHUFFLE)
    assert {r.inputs["resourceGroupName"] for r in _azure(built)} == {PLATFORM_GROUP}
    assert {r.inputs["location"] for r in _azure(built) if "location" in r.inputs} == {
        "northcentralus"
    }
    assert built.exports["resource_group_name"].value == PLATFORM_GROUP
    assert built.exports["databricks_workspace_url"].value == _workspace_url(built)


def test_keyless_in_an_existing_group_and_workspace_builds_its_connector_beside_the_account(
    run: Run,
) -> None:
    built = run(
        {
            "resourceGroupName": PLATFORM_GROUP,
            "workspaceResourceId": WORKSPACE_ID,
            "authMode": "entra",
        },
        world=ESTATE,
    )
    connector = built.one("azure-native:databricks:AccessConnector")
    assert connector.inputs["resourceGroupName"] == PLATFORM_GROUP
    assert connector.inputs["location"] == "northcentralus"
    metastore = [i for i in built.invokes if "getCurrentMetastore" in i.token]
    assert metastore and metastore[0].provider.startswith(built.one(PROVIDER).urn), (
        "Unity Catalog is asked through the existing workspace"
    )
    roles = built.by_type("azure-native:authorization:RoleAssignment")
    assert len(roles) == 2 and all(PLATFORM_GROUP in r.inputs["scope"] for r in roles)


@pytest.mark.parametrize(
    ("config", "world", "says"),
    [
        (
            {"workspaceResourceId": WORKSPACE_ID.replace("dbw-data", "dbw-gone")},
            ESTATE,
            "no such workspace",
        ),
        (
            {"workspaceResourceId": WORKSPACE_ID.replace("rg-data", "rg-gone")},
            ESTATE,
            "no such workspace",
        ),
        (
            {"workspaceResourceId": WORKSPACE_ID},
            World(workspaces={WORKSPACE_ID: HeldWorkspace(location="westeurope")}),
            "is in westeurope, which llmops:allowedRegions (eastus2, northcentralus, "
            "swedencentral, switzerlandwest) does not list",
        ),
        (
            {"workspaceResourceId": WORKSPACE_ID, "region": "swedencentral"},
            ESTATE,
            "llmops:region = 'swedencentral' differs from the region of the existing workspace",
        ),
        (
            {"workspaceResourceId": WORKSPACE_ID},
            World(workspaces={WORKSPACE_ID: HeldWorkspace(sku="standard")}),
            "is a Standard workspace, which cannot hold the lab",
        ),
        (
            {"workspaceResourceId": WORKSPACE_ID},
            World(workspaces={WORKSPACE_ID: HeldWorkspace(compute_mode="Serverless")}),
            "is a serverless workspace, which has no classic compute for the lab's cluster",
        ),
        (
            {"workspaceResourceId": OTHER_SUBSCRIPTION_ID},
            ESTATE,
            "the workspace must be in the subscription the stack deploys to",
        ),
        (
            {"workspaceResourceId": WORKSPACE_ID, "compute": "serverless"},
            World(workspaces={WORKSPACE_ID: HeldWorkspace(location="switzerlandwest")}),
            "is in switzerlandwest, which does not offer serverless jobs on Azure Databricks, "
            "which llmops:compute=serverless needs",
        ),
    ],
    ids=[
        "missing",
        "missing-group",
        "region-not-allowed",
        "pinned-region-differs",
        "standard-sku",
        "serverless-workspace",
        "other-subscription",
        "region-lacks-a-feature",
    ],
)
def test_a_workspace_that_cannot_hold_the_lab_stops_the_program_before_anything(
    run: Run, config: dict[str, str], world: World, says: str
) -> None:
    failure = _failure(run, config, world)
    message = str(failure)
    assert says in message
    assert "llmops:workspaceResourceId" in message, "the message names the key"
    assert "\n" not in message and "RESPONSE 404" not in message
    assert failure.registered == 0, f"nothing registered: {failure.types}"


def test_a_workspace_in_an_allowed_region_passes_a_trial_workspace_too(run: Run) -> None:
    world = World(workspaces={WORKSPACE_ID: HeldWorkspace(location="eastus2", sku="trial")})
    built = run({"workspaceResourceId": WORKSPACE_ID}, world=world)
    assert built.exports["region"].value == "eastus2"


@pytest.mark.parametrize(
    ("provider_error", "says"),
    [
        # azure-native 3 (azcore), then the older autorest text: both carry ARM's code.
        ("RESPONSE 404: 404 Not Found\nERROR CODE: ResourceGroupNotFound\n", "no such"),
        ('Status=404 Code="ResourceGroupNotFound" Message="Resource group', "no such"),
        ("RESPONSE 403: 403 Forbidden\nERROR CODE: AuthorizationFailed\n", "needs at least Reader"),
        ("connection reset by peer", "could not be looked up (connection reset by peer)"),
    ],
)
def test_a_failed_lookup_is_one_line_naming_the_key_and_what_to_do(
    provider_error: str, says: str
) -> None:
    error = Exception(provider_error)
    message = str(_lookup_failure("resourceGroupName", "rg-x", "resource group", error))
    assert "llmops:resourceGroupName = 'rg-x'" in message and says in message
    assert "\n" not in message


def test_an_existing_workspace_with_private_networking_is_refused(run: Run) -> None:
    failure = _failure(run, {"workspaceResourceId": WORKSPACE_ID, "network": "private"})
    assert failure.registered == 0, "refused before anything is registered"
    message = str(failure)
    assert "llmops:workspaceResourceId" in message and "llmops:network private" in message
    assert len(message.strip().splitlines()) == 1, message
    assert network_refusal(WORKSPACE_ID, "public") is None
    assert network_refusal(None, "private") is None


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("resourceGroupName", "rg.", "not ending in a period"),
        ("resourceGroupName", "rg with space", "an existing resource group's name"),
        ("workspaceResourceId", "dbw-data", "an Azure Databricks workspace's resource id"),
        (
            "workspaceResourceId",
            WORKSPACE_ID.replace("Databricks/workspaces", "Databricks/accessConnectors"),
            "an Azure Databricks workspace's resource id",
        ),
    ],
)
def test_an_estate_key_of_the_wrong_shape_is_an_invalid_value(
    run: Run, key: str, value: str, says: str
) -> None:
    failure = _failure(run, {key: value})
    assert f"llmops:{key} = {value!r} is not valid" in str(failure) and says in str(failure)
    assert failure.registered == 0
    assert plan.check_config({f"llmops:{key}": value}) is not None, "plan exits 2 on it"


def test_workspace_sku_does_not_apply_to_an_existing_workspace() -> None:
    with pytest.raises(Exception, match=r"llmops:workspaceResourceId .* leave workspaceSku unset"):
        parse_config({"workspaceResourceId": WORKSPACE_ID, "workspaceSku": "trial"}.get)


# --- a second up ---------------------------------------------------------------------------------


def test_a_second_up_with_both_keys_changes_nothing(run: Run) -> None:
    config = {
        "resourceGroupName": PLATFORM_GROUP,
        "workspaceResourceId": WORKSPACE_ID,
        "monitorSchedule": "0 30 7 ? * MON-FRI",
    }
    first = run(config, stack="estate", world=ESTATE)
    second = run(config, stack="estate", seed="another-machine", state=first, world=ESTATE)
    assert {r.urn for r in second.resources} == {r.urn for r in first.resources}
    steps = {r.name: (r.change, r.diff) for r in second.resources if r.change != "same"}
    assert steps == {}, "nothing changes on a second up"
    assert {k: v.value for k, v in first.exports.items()} == {
        k: v.value for k, v in second.exports.items()
    }


# --- llmops:monitorSchedule ----------------------------------------------------------------------


def _monitor_schedule(run: ProgramRun) -> dict:
    (monitor,) = [r for r in run.by_type(JOB) if r.name.endswith("-monitor")]
    return monitor.inputs["schedule"]


def test_without_a_schedule_the_monitor_stays_paused(dev: ProgramRun) -> None:
    assert _monitor_schedule(dev) == {
        "quartzCronExpression": "0 0 6 * * ?",
        "timezoneId": "UTC",
        "pauseStatus": "PAUSED",
    }


def test_a_schedule_makes_the_monitor_run_on_it_unpaused_in_utc(run: Run) -> None:
    built = run({"monitorSchedule": "0 30 7 ? * MON-FRI"})
    assert _monitor_schedule(built) == {
        "quartzCronExpression": "0 30 7 ? * MON-FRI",
        "timezoneId": "UTC",
        "pauseStatus": "UNPAUSED",
    }
    others = [r.inputs.get("schedule") for r in built.by_type(JOB) if "-monitor" not in r.name]
    assert others == [None, None], "only the monitor is scheduled"


@pytest.mark.parametrize(
    "expression",
    [
        "0 6 * * *",  # Unix cron: five fields
        "0 0 6 * * *",  # no ?
        "0 0 6 ? * ?",  # ? in both
        "0 0 25 * * ?",  # no hour 25
        "0 0 6 32 * ?",
        "0 0 6 ? * FUNDAY",
        "0 0 6 * 13 ?",
        "0 0 6 * * ? 1969",
        "0 0 6 * * ? 2027 x",
        "@daily",
    ],
)
def test_an_expression_that_is_not_quartz_cron_is_an_invalid_value(
    run: Run, expression: str
) -> None:
    failure = _failure(run, {"monitorSchedule": expression})
    assert f"llmops:monitorSchedule = {expression!r} is not valid" in str(failure)
    assert failure.registered == 0


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 6 * * ?",
        "0 0 12 ? * WED",
        "0 15 10 ? * MON-FRI",
        "0 0/5 14,18 * * ?",
        "0 15 10 L * ?",
        "0 15 10 15W * ?",
        "0 15 10 ? * 6#3",
        "0 15 10 ? * 6L 2026-2030",
        "0 0 6 1 JAN-MAR ?",
        "*/30 * * * * ?",
    ],
)
def test_quartz_cron_expressions_are_accepted(expression: str) -> None:
    assert cron_problem(expression) is None


# --- the offline plan ----------------------------------------------------------------------------


def test_the_plan_names_the_existing_group_and_workspace_and_shows_their_values_after_up(
    run: Run,  # loads the SDKs before the forks
) -> None:
    config = [
        f"llmops:resourceGroupName={PLATFORM_GROUP}",
        f"llmops:workspaceResourceId={WORKSPACE_ID}",
        "llmops:monitorSchedule=0 30 7 ? * MON-FRI",
    ]
    args = [arg for pair in zip(["--config"] * 3, config, strict=True) for arg in pair]
    as_json, as_text = (start_in_fork("--no-policy", *args, *more) for more in (["--json"], []))
    code, out, err = as_json.result()
    assert code == 0, err
    document = json.loads(out)
    types = {r["type"] for r in document["resources"]}
    assert GROUP not in types and WORKSPACE not in types and SHUFFLE not in types
    outputs = document["outputs"]
    assert outputs["resource_group_name"]["value"] == PLATFORM_GROUP
    assert outputs["databricks_workspace_resource_id"]["value"] == WORKSPACE_ID
    for looked_up in ("region", "databricks_workspace_url"):
        assert outputs[looked_up]["value"] == plan.KNOWN_AFTER_UP, looked_up
    assert document["estate"] == {"resource_group": PLATFORM_GROUP, "workspace": WORKSPACE_ID}
    code, text, err = as_text.result()
    assert code == 0, err
    assert (
        f"the stack uses resource group {PLATFORM_GROUP} (llmops:resourceGroupName) and "
        f"Databricks workspace {WORKSPACE_ID} (llmops:workspaceResourceId)"
    ) in text
    assert "it will not create or delete them" in text
    assert "in the existing workspace's region" in text and "preflight --pin" not in text
    assert "region: (the existing workspace's, known after up)" in text
    assert "UNPAUSED, 0 30 7 ? * MON-FRI (Quartz cron, UTC)" in text
