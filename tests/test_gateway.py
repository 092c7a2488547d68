"""The gateway (``llmops:gateway``) under the offline engine: a serving endpoint with AI Gateway
in front of each deployment, who may call it, what the cluster holds, what `plan` shows, what
the pack checks, and a second `up` that changes nothing."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any, get_args

import pytest
from conftest import Run
from plan_runs import start_in_fork

from llmops_infra.offline.engine import PROJECT_DIR, ProgramFailed, ProgramRun, Secret
from llmops_infra.offline.policy_check import PolicyAnalyzer
from llmops_infra.stack import region_features
from llmops_infra.stack.gateway import endpoint_name, inference_table_prefix

SERVING = "databricks:index/modelServing:ModelServing"
PERMISSIONS = "databricks:index/permissions:Permissions"
SECRET = "databricks:index/secret:Secret"
CLUSTER = "databricks:index/cluster:Cluster"
ACCOUNT = "azure-native:cognitiveservices:Account"
PROVIDER = "pulumi:providers:databricks"
GATEWAY = "llmops:databricks:LabGateway"

#: Every gateway option at once: judge, guardrails, per-user limit, inference table.
FULL = {
    "gateway": "true",
    "region": "eastus2",
    "capacity": "20",
    "judgeModel": "gpt-4o-mini",
    "judgeCapacity": "5",
    "gatewayUserTokensPerMinute": "4000",
    "gatewayGuardrails": "true",
    "inferenceTable": "main.llmops",
}


@pytest.fixture(scope="module", autouse=True)
def _eastus2_offers_every_feature() -> Iterator[None]:
    """These tests are about the endpoints, not the region rule: eastus2 offers everything.

    The region table as read on 2026-12-05 records no region with Model Serving (its
    module says why), so the program would refuse the gateway everywhere. The runs fork
    from this process, so they see the patched table.
    """
    offers_all = frozenset(get_args(region_features.Feature))
    table = MappingProxyType({**region_features.REGION_FEATURES, "eastus2": offers_all})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(region_features, "REGION_FEATURES", table)
        yield


@pytest.fixture(scope="module")
def full(run: Run) -> ProgramRun:
    return run(FULL)


@pytest.fixture(scope="module")
def plain(run: Run) -> ProgramRun:
    """The gateway alone: no judge, no per-user limit, no table, no guardrails."""
    return run({"gateway": "true", "region": "eastus2"})


def endpoint(run: ProgramRun, name: str) -> dict[str, Any]:
    return next(r for r in run.by_type(SERVING) if r.inputs["name"] == name).inputs


def azure(inputs: dict[str, Any]) -> dict[str, Any]:
    (entity,) = inputs["config"]["servedEntities"]
    return entity["externalModel"]["openaiConfig"]


# --- the endpoints ------------------------------------------------------------------------------


def test_no_endpoint_and_empty_gateway_outputs_by_default(dev: ProgramRun) -> None:
    assert dev.by_type(SERVING) == [] and dev.by_type(PERMISSIONS) == []
    assert dev.exports["databricks_serving_endpoint"].value == ""
    assert dev.exports["databricks_judge_serving_endpoint"].value == ""
    assert dev.exports["databricks_gateway_tokens_per_minute"].value == 0


def test_the_chat_endpoint_serves_the_azure_deployment_as_an_external_model(
    plain: ProgramRun,
) -> None:
    inputs = endpoint(plain, "llmops-gpt-4o")
    (entity,) = inputs["config"]["servedEntities"]
    model = entity["externalModel"]
    assert (model["provider"], model["task"], model["name"]) == ("openai", "llm/v1/chat", "gpt-4o")
    account = plain.one(ACCOUNT).outputs["properties"]["endpoint"]
    assert azure(inputs) == {
        "openaiApiType": "azure",
        "openaiApiBase": account,
        "openaiDeploymentName": "gpt-4o",
        "openaiApiVersion": "2024-05-01-preview",
        "openaiApiKey": "{{secrets/llmops/azure-openai-api-key}}",
    }, "the Azure settings, and the key only as a reference to the stack's secret"
    assert [r.name for r in plain.by_type(SERVING)] == ["databricks-gateway-chat"]
    assert plain.exports["databricks_serving_endpoint"].value == "llmops-gpt-4o"
    assert plain.exports["databricks_judge_serving_endpoint"].value == ""


def test_the_endpoint_never_holds_the_key_and_waits_for_its_secret(full: ProgramRun) -> None:
    secret = full.one(SECRET)
    key = secret.inputs["stringValue"]
    assert isinstance(key, Secret) and key.value, "the key itself is in the secret alone"
    for serving in full.by_type(SERVING):
        text = json.dumps([serving.inputs, serving.outputs], default=str)
        assert key.value not in text, f"{serving.name} must never carry the key's value"
        assert secret.urn in serving.dependencies, "created after the secret it reads"
        assert azure(serving.inputs)["openaiApiKey"] == secret.outputs["configReference"]


def test_endpoints_are_created_in_the_workspace_under_the_gateway_component(
    full: ProgramRun,
) -> None:
    gateway = full.one(GATEWAY)
    provider = full.one(PROVIDER).urn
    for resource in [*full.by_type(SERVING), *full.by_type(PERMISSIONS)]:
        assert resource.parent == gateway.urn, resource.name
        assert resource.name.startswith(f"{gateway.name}-")
        assert resource.provider.startswith(provider + "::"), "through the workspace's provider"


def test_each_endpoint_is_limited_by_its_own_deployment(full: ProgramRun) -> None:
    def limits(name: str) -> list[tuple[str, str, int]]:
        return [
            (
                limit["key"],
                "tokens" if "tokens" in limit else "calls",
                limit.get("tokens", limit.get("calls")),
            )
            for limit in endpoint(full, name)["aiGateway"]["rateLimits"]
            if limit["renewalPeriod"] == "minute"
        ]

    # chat: capacity 20 = 20,000 TPM and 120 RPM at Azure; judge: capacity 5.
    assert limits("llmops-gpt-4o") == [
        ("endpoint", "tokens", 20000),
        ("endpoint", "calls", 120),
        ("user", "tokens", 4000),
    ]
    assert limits("llmops-gpt-4o-mini") == [
        ("endpoint", "tokens", 5000),
        ("endpoint", "calls", 30),
        ("user", "tokens", 4000),
    ]
    assert full.exports["databricks_gateway_tokens_per_minute"].value == 4000


def test_without_a_per_user_limit_only_the_endpoint_is_limited(plain: ProgramRun) -> None:
    limits = endpoint(plain, "llmops-gpt-4o")["aiGateway"]["rateLimits"]
    assert {limit["key"] for limit in limits} == {"endpoint"}
    assert plain.exports["databricks_gateway_tokens_per_minute"].value == 10000


def test_usage_tracking_always_table_and_guardrails_only_when_set(
    plain: ProgramRun, full: ProgramRun
) -> None:
    bare = endpoint(plain, "llmops-gpt-4o")["aiGateway"]
    assert bare["usageTrackingConfig"] == {"enabled": True}
    assert "inferenceTableConfig" not in bare and "guardrails" not in bare
    for name, prefix in (("llmops-gpt-4o", "llmops_gpt_4o"), ("llmops-gpt-4o-mini", None)):
        gateway = endpoint(full, name)["aiGateway"]
        assert gateway["usageTrackingConfig"] == {"enabled": True}
        table = gateway["inferenceTableConfig"]
        assert (table["catalogName"], table["schemaName"], table["enabled"]) == (
            "main",
            "llmops",
            True,
        )
        assert prefix is None or table["tableNamePrefix"] == prefix
        assert gateway["guardrails"] == {
            "input": {"pii": {"behavior": "BLOCK"}, "safety": True},
            "output": {"pii": {"behavior": "BLOCK"}},
        }, "PII blocked both ways, safety on input; no deprecated keyword or topic lists"


@pytest.mark.parametrize(
    ("deployment", "prefix"),
    [
        ("gpt-4o", "llmops_gpt_4o"),
        ("GPT-4o-Prod", "llmops_gpt_4o_prod"),
        ("My_Chat", "llmops_my_chat"),
    ],
)
def test_the_table_prefix_is_spelled_as_unity_catalog_keeps_names(
    deployment: str, prefix: str
) -> None:
    # Unity Catalog stores every object name in lower case: a prefix sent in capitals would
    # never be what Databricks reads back.
    assert inference_table_prefix(endpoint_name(deployment)) == prefix


def test_everyone_in_the_workspace_may_query_each_endpoint(full: ProgramRun) -> None:
    endpoints = {r.name: r for r in full.by_type(SERVING)}
    grants = {r.name: r for r in full.by_type(PERMISSIONS)}
    assert set(grants) == {f"{name}-permissions" for name in endpoints}
    for name, serving in endpoints.items():
        permissions = grants[f"{name}-permissions"].inputs
        assert permissions["servingEndpointId"] == serving.outputs["servingEndpointId"]
        assert permissions["accessControls"] == [
            {"groupName": "users", "permissionLevel": "CAN_QUERY"}
        ]


def test_the_judge_endpoint_exists_only_with_a_judge(full: ProgramRun, plain: ProgramRun) -> None:
    assert sorted(r.inputs["name"] for r in full.by_type(SERVING)) == [
        "llmops-gpt-4o",
        "llmops-gpt-4o-mini",
    ]
    assert azure(endpoint(full, "llmops-gpt-4o-mini"))["openaiDeploymentName"] == "gpt-4o-mini"
    assert full.exports["databricks_judge_serving_endpoint"].value == "llmops-gpt-4o-mini"
    assert len(plain.by_type(SERVING)) == 1


# --- the cluster --------------------------------------------------------------------------------


def test_the_cluster_holds_no_key_and_names_the_endpoints(
    full: ProgramRun, plain: ProgramRun, dev: ProgramRun
) -> None:
    env = full.one(CLUSTER).inputs["sparkEnvVars"]
    assert "AZURE_OPENAI_API_KEY" not in env
    assert not any("secrets/" in str(value) for value in env.values()), "not even a reference"
    assert env["LLMOPS_GATEWAY_ENDPOINT"] == "llmops-gpt-4o"
    assert env["LLMOPS_GATEWAY_JUDGE_ENDPOINT"] == "llmops-gpt-4o-mini"
    # eval on the cluster paces by what its own identity may use at the gateway.
    assert (env["LLMOPS_TOKENS_PER_MINUTE"], env["LLMOPS_JUDGE_TOKENS_PER_MINUTE"]) == (
        "4000",
        "4000",
    )
    assert full.by_type(SECRET), "the secret stays, for the endpoints"
    bare = plain.one(CLUSTER).inputs["sparkEnvVars"]
    assert "LLMOPS_GATEWAY_JUDGE_ENDPOINT" not in bare and "AZURE_OPENAI_API_KEY" not in bare
    assert bare["LLMOPS_TOKENS_PER_MINUTE"] == "10000"
    lab = dev.one(CLUSTER).inputs["sparkEnvVars"]
    assert lab["AZURE_OPENAI_API_KEY"] == dev.one(SECRET).outputs["configReference"]
    assert "LLMOPS_GATEWAY_ENDPOINT" not in lab, "the lab's own way stays the default"


# --- what stops the program ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "needles"),
    [
        ({"gateway": "true", "authMode": "entra"}, ["llmops:gateway", "Beta"]),
        (
            {"gateway": "true", "gatewayUserTokensPerMinute": "10001"},
            ["llmops:gatewayUserTokensPerMinute", "10000"],
        ),
        (
            {"gateway": "true", "deploymentName": "gpt-4.1"},
            ["llmops:deploymentName", "'llmops-gpt-4.1'", "letters, digits, dashes"],
        ),
        (
            {"gateway": "true", "judgeModel": "gpt-4.1-mini"},
            ["llmops:judgeModel", "'llmops-gpt-4.1-mini'"],
        ),
    ],
    ids=["entra", "user-limit-above-deployment", "endpoint-name", "judge-endpoint-name"],
)
def test_a_gateway_it_cannot_build_stops_before_any_resource(
    run: Run, config: dict[str, str], needles: list[str]
) -> None:
    with pytest.raises(ProgramFailed) as caught:
        run({"region": "eastus2", **config})
    assert caught.value.registered == 0, "stopped before any resource is registered"
    message = str(caught.value)
    assert "\n" not in message and all(n in message for n in needles), message


# --- a second `up` ------------------------------------------------------------------------------


def test_a_second_up_of_the_full_gateway_changes_nothing(run: Run, full: ProgramRun) -> None:
    second = run(FULL, seed="another-machine", state=full)
    before = {r.urn: r.inputs for r in full.resources}
    after = {r.urn: r.inputs for r in second.resources}
    assert set(after) == set(before), "the same resources"
    assert [urn for urn in before if before[urn] != after[urn]] == []
    assert {k: v.value for k, v in full.exports.items()} == {
        k: v.value for k, v in second.exports.items()
    }


def test_a_second_up_of_the_full_gateway_calls_no_api(run: Run, full: ProgramRun) -> None:
    # What the program sends against what the provider reads back, as the Terraform-based
    # provider diffs them (llmops_infra/offline/replay.py).
    second = run(FULL, seed="another-machine", state=full)
    steps = {r.name: (r.change, r.diff) for r in second.resources if r.change != "same"}
    assert steps == {}, "nothing differs from what the providers read back"


WITHOUT_TABLE = {k: v for k, v in FULL.items() if k != "inferenceTable"}


@pytest.fixture(scope="module")
def table_taken_out(run: Run, full: ProgramRun) -> tuple[ProgramRun, ProgramRun]:
    """``llmops:inferenceTable`` removed from a deployed stack that had it, then one more up."""
    removed = run(WITHOUT_TABLE, seed="another-machine", state=full)
    return removed, run(WITHOUT_TABLE, seed="a-third-machine", state=removed)


def test_a_table_taken_out_of_the_configuration_is_kept_without_a_diff(
    table_taken_out: tuple[ProgramRun, ProgramRun],
) -> None:
    # Databricks keeps the table (the provider cannot send enabled = false, issue #5504) and
    # reads it back: a program that stopped sending it would diff, and call the API in vain,
    # on this up and every later one.
    for run_ in table_taken_out:
        steps = {r.name: (r.change, r.diff) for r in run_.by_type(SERVING)}
        assert steps == {
            "databricks-gateway-chat": ("same", ()),
            "databricks-gateway-judge": ("same", ()),
        }
        for serving in run_.by_type(SERVING):
            table = serving.inputs["aiGateway"]["inferenceTableConfig"]
            assert (table["catalogName"], table["enabled"]) == ("main", True), "as last sent"


def test_a_table_added_to_a_deployed_gateway_is_sent(run: Run, plain: ProgramRun) -> None:
    added = run(
        {"gateway": "true", "region": "eastus2", "inferenceTable": "main.llmops"},
        seed="another-machine",
        state=plain,
    )
    (serving,) = added.by_type(SERVING)
    assert (serving.change, serving.diff) == ("update", ("aiGateway.inferenceTableConfig",))
    table = serving.outputs["aiGateway"]["inferenceTableConfig"]
    assert (table["catalogName"], table["tableNamePrefix"], table["enabled"]) == (
        "main",
        "llmops_gpt_4o",
        True,
    ), "Databricks holds the table the program sent"


def _worded(run: ProgramRun, description: str) -> ProgramRun:
    """The run as a stack deployed by a program that worded the endpoints' description so."""

    def reworded(props: dict[str, Any]) -> dict[str, Any]:
        return {**props, "description": description}

    resources = [
        dataclasses.replace(r, inputs=reworded(r.inputs), outputs=reworded(r.outputs))
        if r.type == SERVING
        else r
        for r in run.resources
    ]
    return dataclasses.replace(run, resources=resources)


def test_a_reworded_description_replaces_the_endpoint_once(run: Run, plain: ProgramRun) -> None:
    # The provider neither updates a description nor replaces for it: an update would leave
    # the old wording in place and diff on every later up.
    config = {"gateway": "true", "region": "eastus2"}
    reworded = run(config, seed="another-machine", state=_worded(plain, "an older wording"))
    (serving,) = reworded.by_type(SERVING)
    assert (serving.change, serving.diff) == ("replace", ("description",))
    assert serving.options.delete_before_replace, "the new endpoint takes the same name"
    after = run(config, seed="a-third-machine", state=reworded)
    assert [(r.change, r.diff) for r in after.by_type(SERVING)] == [("same", ())]


def test_the_description_names_only_what_names_the_endpoint(full: ProgramRun) -> None:
    # Its one variable part is the deployment, which is also in the endpoint's name (a change
    # replaces the endpoint anyway); the wording is pinned: a new one replaces every endpoint.
    for serving in full.by_type(SERVING):
        deployment = azure(serving.inputs)["openaiDeploymentName"]
        assert serving.inputs["description"] == (
            f"Azure OpenAI deployment {deployment} behind AI Gateway (LLMOps lab, llmops:gateway)."
        )


def test_each_endpoint_states_what_databricks_would_fill_in(full: ProgramRun) -> None:
    # The engine answers as Databricks does: it names an unnamed entity, routes traffic to a
    # lone entity and keys a limit to the endpoint when the request leaves them out. A
    # program that left them out would see them come back (a diff on every up with the
    # Terraform-based provider); this one sends exactly what comes back.
    for serving in full.by_type(SERVING):
        for block in ("config", "aiGateway"):
            assert serving.outputs[block] == serving.inputs[block], f"{serving.name}.{block}"


# --- plan and policies --------------------------------------------------------------------------


def test_plan_shows_the_endpoints_and_no_key_in_the_cluster() -> None:
    # `plan`'s main in a fork of this process, which sees the patched region table.
    code, out, err = start_in_fork(
        "--json", "--config", "llmops:gateway=true", "--config", "llmops:region=eastus2"
    ).result()
    assert code == 0, err
    resources = json.loads(out)["resources"]
    (chat,) = [r["settings"] for r in resources if r["type"] == SERVING]
    assert chat["name"] == "llmops-gpt-4o"
    assert chat["external model"].startswith("openai gpt-4o (llm/v1/chat): Azure deployment gpt-4o")
    assert chat["key"] == "{{secrets/llmops/azure-openai-api-key}}"
    assert chat["rate limits"] == ["endpoint: 10,000 tokens/minute", "endpoint: 60 calls/minute"]
    assert chat["usage tracking"] == "on (system.serving.endpoint_usage)"
    assert chat["inference table"].startswith("none")
    assert chat["guardrails"].startswith("none")
    (grant,) = [r["settings"] for r in resources if r["type"] == PERMISSIONS]
    assert grant == {"grants": ["users: CAN_QUERY"]}
    (cluster,) = [r for r in resources if r["type"] == CLUSTER]
    assert "LLMOPS_GATEWAY_ENDPOINT" in cluster["settings"]["environment"]
    assert "AZURE_OPENAI_API_KEY" not in cluster["settings"]["environment"]
    assert "secrets/" not in json.dumps(cluster["inputs"])


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyAnalyzer]:
    with PolicyAnalyzer(PROJECT_DIR / "policy") as analyzer:
        yield analyzer


def _with_gateway(run: ProgramRun, name: str, **changes: Any) -> list[Any]:
    """The run's resources with one endpoint's AI Gateway changed, as sent and as returned."""

    def change(props: dict[str, Any]) -> dict[str, Any]:
        gateway = {**props["aiGateway"], **changes}
        return {**props, "aiGateway": {k: v for k, v in gateway.items() if v is not None}}

    return [
        dataclasses.replace(r, inputs=change(r.inputs), outputs=change(r.outputs))
        if r.type == SERVING and r.inputs["name"] == name
        else r
        for r in run.resources
    ]


def test_the_pack_holds_each_endpoints_limits_to_its_deployment(
    pack: PolicyAnalyzer, full: ProgramRun
) -> None:
    assert [v for v in pack.analyze(full.resources) if v.level == "mandatory"] == []
    raised = _with_gateway(
        full,
        "llmops-gpt-4o-mini",
        rateLimits=[
            {"key": "endpoint", "renewalPeriod": "minute", "tokens": 20000},
            {"key": "user", "renewalPeriod": "minute", "calls": 31},
        ],
    )
    found = [v for v in pack.analyze(raised) if v.policy == "gateway-limits-within-deployment"]
    assert {v.level for v in found} == {"mandatory"}
    messages = sorted(v.message for v in found)
    assert len(messages) == 2
    assert "endpoint limit of 20000 tokens" in messages[0] and "at most 5000" in messages[0]
    assert "user limit of 31 calls" in messages[1] and "at most 30" in messages[1]
    assert all(v.urn.endswith("::databricks-gateway-judge") for v in found)


def test_the_pack_advises_usage_tracking(pack: PolicyAnalyzer, full: ProgramRun) -> None:
    advice = [v for v in pack.analyze(full.resources) if v.policy == "gateway-usage-tracking"]
    assert advice == [], "the stack's endpoints track usage"
    off = _with_gateway(full, "llmops-gpt-4o", usageTrackingConfig={"enabled": False})
    advice = [v for v in pack.analyze(off) if v.policy == "gateway-usage-tracking"]
    assert [(v.level, v.urn.rsplit("::", 1)[-1]) for v in advice] == [
        ("advisory", "databricks-gateway-chat")
    ]


# --- docs/gateway.md ----------------------------------------------------------------------------

GUIDE = PROJECT_DIR / "docs" / "gateway.md"


def test_the_guide_is_linked_and_names_what_the_gateway_creates(full: ProgramRun) -> None:
    assert "(docs/gateway.md)" in (PROJECT_DIR / "README.md").read_text(), "README links it"
    text = GUIDE.read_text()
    gateway = full.one(GATEWAY)
    created = {r.name for r in full.resources if r.parent == gateway.urn}
    assert {name for name in created if f"`{name}`" not in text} == set()
    for name in ("llmops-gpt-4o", "{{secrets/<secretScope>/azure-openai-api-key}}", "CAN_QUERY"):
        assert name in text
    for key in ("gateway", "gatewayUserTokensPerMinute", "gatewayGuardrails", "inferenceTable"):
        assert f"llmops:{key}" in text, key
    assert "preflight --pin" in text and "Beta" in text and "system.serving.endpoint_usage" in text
