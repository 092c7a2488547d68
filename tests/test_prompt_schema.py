"""``llmops:catalog``: the schema for the lab's prompt, its grants, the output and the jobs' env.

Without a catalog nothing changes for a stack: no schema, ``mlflow_prompt_name`` is
"", and the cluster's environment is what it was.
"""

from __future__ import annotations

import pytest
from conftest import Run

from llmops_infra.offline.engine import ProgramFailed, ProgramRun

SCHEMA = "databricks:index/schema:Schema"
GRANTS = "databricks:index/grants:Grants"
CLUSTER = "databricks:index/cluster:Cluster"
JOB = "databricks:index/job:Job"
CATALOG = {"catalog": "main"}


@pytest.fixture(scope="module")
def with_catalog(run: Run) -> ProgramRun:
    return run(CATALOG, stack="prompts")


def test_without_a_catalog_there_is_no_schema_no_name_and_no_new_variable(dev: ProgramRun) -> None:
    assert dev.by_type(SCHEMA) == [] and dev.by_type(GRANTS) == []
    assert dev.exports["mlflow_prompt_name"].value == ""
    assert "LLMOPS_PROMPT_NAME" not in dev.one(CLUSTER).inputs["sparkEnvVars"]


def test_a_catalog_gets_the_schema_and_the_grants_databricks_documents(
    with_catalog: ProgramRun,
) -> None:
    schema = with_catalog.one(SCHEMA).inputs
    assert (schema["catalogName"], schema["name"]) == ("main", "llmops")
    grants = with_catalog.one(GRANTS).inputs
    assert grants["schema"] == "main.llmops"
    assert grants["grants"] == [
        {
            "principal": "account users",
            "privileges": ["USE_SCHEMA", "CREATE_FUNCTION", "EXECUTE", "MANAGE"],
        }
    ], "CREATE FUNCTION, EXECUTE and MANAGE on the schema: what prompts need"


def test_the_prompts_name_is_exported_and_in_the_jobs_environment(
    with_catalog: ProgramRun,
) -> None:
    assert with_catalog.exports["mlflow_prompt_name"].value == "main.llmops.lab_chat"
    env = with_catalog.one(CLUSTER).inputs["sparkEnvVars"]
    assert env["LLMOPS_PROMPT_NAME"] == "main.llmops.lab_chat", "the jobs run on the cluster"


def test_serverless_jobs_are_given_the_prompts_name(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmops_infra.stack import region_features

    table = dict(region_features.REGION_FEATURES)
    table["eastus2"] = table.get("eastus2", frozenset()) | {"serverless_jobs"}
    monkeypatch.setattr(region_features, "REGION_FEATURES", table)
    read = dict(region_features.READ_CELLS)
    read["serverless_jobs"] = frozenset({"eastus2"})
    monkeypatch.setattr(region_features, "READ_CELLS", read)
    result = run(
        {**CATALOG, "schema": "prompts", "compute": "serverless", "region": "eastus2"},
        stack="prompts-serverless",
    )
    for job in result.by_type(JOB):
        parameters = job.inputs["tasks"][0]["pythonWheelTask"]["parameters"]
        assert "LLMOPS_PROMPT_NAME=main.prompts.lab_chat" in parameters, job.name


@pytest.mark.parametrize("config", [{"catalog": "main.x"}, {**CATALOG, "schema": "a b"}])
def test_a_name_unity_catalog_refuses_stops_before_anything(
    run: Run, config: dict[str, str]
) -> None:
    with pytest.raises(ProgramFailed, match="must be a Unity Catalog name") as err:
        run(config)
    assert err.value.registered == 0


def test_a_second_up_with_a_catalog_changes_nothing(run: Run, with_catalog: ProgramRun) -> None:
    second = run(CATALOG, stack="prompts", seed="another-machine", state=with_catalog)
    before = {r.urn: r.inputs for r in with_catalog.resources}
    after = {r.urn: r.inputs for r in second.resources}
    assert set(after) == set(before)
    assert [urn for urn in before if before[urn] != after[urn]] == []
