"""The guardrails pack (policy/), run as the Pulumi CLI runs it, over real runs of the program.

One analyzer process serves the whole module (``pack``): each check configures it
afresh, as the CLI does at the start of every update. The resources come from the
program under the offline engine with changed configuration; where no setting of
the stack can produce a breach (dynamic quota, Photon, a key in clear text), a
real run's record is changed in just that one input.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from plan_runs import start_in_fork, start_process

from llmops_infra.offline.engine import PROJECT_DIR, ProgramRun, RecordedResource, Secret
from llmops_infra.offline.plan_policy import resource_of, with_violations_text
from llmops_infra.offline.policy_check import PolicyAnalyzer, PolicyPackError, Violation
from llmops_infra.offline.policy_config import Level

Run = Callable[..., ProgramRun]

ACCOUNT = "azure-native:cognitiveservices:Account"
DEPLOYMENT = "azure-native:cognitiveservices:Deployment"
WORKSPACE = "azure-native:databricks:Workspace"
CLUSTER = "databricks:index/cluster:Cluster"
ADVISORIES = {
    ("openai-keyless", "openai-account"),
    ("deployment-pinned-version", "openai-deployment"),
}


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyAnalyzer]:
    """The project's pack, started once, as ``pulumi up --policy-pack policy`` starts it."""
    with PolicyAnalyzer(PROJECT_DIR / "policy") as analyzer:
        yield analyzer


def found(violations: list[Violation]) -> set[tuple[str, str, str]]:
    """``(policy, level, resource name)`` of each violation."""
    return {(v.policy, v.level, resource_of(v.urn)[1]) for v in violations}


def mandatory(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(v.policy, resource_of(v.urn)[1]) for v in violations if v.level == "mandatory"}


def changed(run: ProgramRun, type_: str, **inputs: Any) -> list[RecordedResource]:
    """The run's resources with one resource's inputs changed (None removes an input)."""
    target = run.one(type_)
    new = {**target.inputs, **inputs}
    new = {k: v for k, v in new.items() if v is not None}
    return [dataclasses.replace(r, inputs=new) if r is target else r for r in run.resources]


@pytest.fixture(scope="module")
def preview(run: Run) -> ProgramRun:
    """The default stack as `plan` and `pulumi preview` see it (region and key unknown)."""
    return run({}, preview=True)


@pytest.fixture(scope="module")
def big(run: Run) -> ProgramRun:
    """A stack whose deployment asks for 100K TPM, twice the cap."""
    return run({"capacity": "100"}, preview=True)


@pytest.fixture(scope="module")
def up(run: Run) -> ProgramRun:
    """The default stack as `pulumi up` sees it (the region drawn, the secret's reference)."""
    return run({})


def test_default_stack_passes_every_mandatory_policy(
    pack: PolicyAnalyzer, run: Run, preview: ProgramRun, up: ProgramRun
) -> None:
    for program in (preview, up):
        violations = pack.analyze(program.resources)
        assert not mandatory(violations), f"the lab's defaults break no rule: {violations}"
        assert {(p, name) for p, _, name in found(violations)} == ADVISORIES
        assert all(v.level == "advisory" for v in violations)
    # The keyless stack: no key in the cluster, local auth off, so the keyless advice is gone.
    keyless = run({"authMode": "entra"}, preview=True)
    violations = pack.analyze(keyless.resources)
    assert not mandatory(violations), f"the keyless stack breaks no rule: {violations}"
    assert {(p, name) for p, _, name in found(violations)} == ADVISORIES - {
        ("openai-keyless", "openai-account")
    }
    assert pack.info()["name"] == "llmops-guardrails"


def test_region_outside_the_allowed_list_is_refused(
    pack: PolicyAnalyzer, run: Run, up: ProgramRun
) -> None:
    westus = run({"region": "westus", "allowedRegions": '["westus"]'}, preview=True)
    assert mandatory(pack.analyze(westus.resources)) == {
        ("allowed-regions", "openai-account"),
        ("allowed-regions", "databricks-workspace"),
    }
    message = next(
        v.message for v in pack.analyze(westus.resources) if v.policy == "allowed-regions"
    )
    assert "'westus'" in message and "swedencentral" in message
    sweden = run({"region": "swedencentral"}, preview=True)
    assert not mandatory(pack.analyze(sweden.resources))
    # The drawn region, known at `up`, is checked too; the pack's own list decides.
    drawn = up.one(ACCOUNT).inputs["location"]
    elsewhere = pack.analyze(up.resources, {"allowed-regions": {"allowedRegions": ["westus"]}})
    assert ("allowed-regions", "openai-account") in mandatory(elsewhere), drawn
    assert not mandatory(
        pack.analyze(westus.resources, {"allowed-regions": {"allowedRegions": ["westus"]}})
    )


def test_capacity_above_the_cap_is_refused(pack: PolicyAnalyzer, run: Run, big: ProgramRun) -> None:
    violations = pack.analyze(big.resources)
    assert mandatory(violations) == {("deployment-capacity-cap", "openai-deployment")}
    assert "100K TPM" in next(v.message for v in violations if v.level == "mandatory")
    assert not mandatory(pack.analyze(run({"capacity": "50"}, preview=True).resources))


def test_a_lower_cap_in_the_pack_config_refuses_the_default(
    pack: PolicyAnalyzer, preview: ProgramRun
) -> None:
    lowered = pack.analyze(preview.resources, {"deployment-capacity-cap": {"maxCapacity": 5}})
    assert mandatory(lowered) == {("deployment-capacity-cap", "openai-deployment")}
    assert "cap of 5" in next(v.message for v in lowered if v.level == "mandatory")


def test_dynamic_quota_is_refused(pack: PolicyAnalyzer, preview: ProgramRun) -> None:
    # The account's own setting (AccountPropertiesArgs.dynamic_throttling_enabled in
    # pulumi-azure-native; a deployment has no such input), which the program never sets.
    properties = preview.one(ACCOUNT).inputs["properties"]
    assert "dynamicThrottlingEnabled" not in properties, "the lab never turns it on"
    dynamic = changed(preview, ACCOUNT, properties={**properties, "dynamicThrottlingEnabled": True})
    assert mandatory(pack.analyze(dynamic)) == {("no-dynamic-quota", "openai-account")}
    off = changed(preview, ACCOUNT, properties={**properties, "dynamicThrottlingEnabled": False})
    assert not mandatory(pack.analyze(off))


def test_cluster_beyond_single_node_needs_few_workers(
    pack: PolicyAnalyzer, preview: ProgramRun
) -> None:
    four = changed(preview, CLUSTER, numWorkers=4.0, sparkConf={})
    assert mandatory(pack.analyze(four)) == {("cluster-size", "databricks-cluster")}
    autoscaled = changed(
        preview,
        CLUSTER,
        numWorkers=None,
        sparkConf={},
        autoscale={"minWorkers": 1.0, "maxWorkers": 8.0},
    )
    assert mandatory(pack.analyze(autoscaled)) == {("cluster-size", "databricks-cluster")}
    assert not mandatory(pack.analyze(changed(preview, CLUSTER, numWorkers=2.0, sparkConf={})))
    assert not mandatory(pack.analyze(four, {"cluster-size": {"maxWorkers": 8}}))


def test_auto_termination_must_be_on_and_within_the_bound(
    pack: PolicyAnalyzer, run: Run, preview: ProgramRun
) -> None:
    long = pack.analyze(run({"autoterminationMinutes": "500"}, preview=True).resources)
    assert mandatory(long) == {("cluster-auto-termination", "databricks-cluster")}
    assert "500 minutes" in next(v.message for v in long if v.level == "mandatory")
    assert not mandatory(pack.analyze(run({"autoterminationMinutes": "120"}).resources))
    never = changed(preview, CLUSTER, autoterminationMinutes=0.0)
    assert mandatory(pack.analyze(never)) == {("cluster-auto-termination", "databricks-cluster")}
    stricter = pack.analyze(preview.resources, {"cluster-auto-termination": {"maxMinutes": 20}})
    assert mandatory(stricter) == {("cluster-auto-termination", "databricks-cluster")}


def test_photon_is_off_unless_allowed(pack: PolicyAnalyzer, preview: ProgramRun) -> None:
    photon = changed(preview, CLUSTER, runtimeEngine="PHOTON")
    assert mandatory(pack.analyze(photon)) == {("cluster-no-photon", "databricks-cluster")}
    legacy = changed(preview, CLUSTER, runtimeEngine=None, sparkVersion="16.4.x-photon-scala2.12")
    assert mandatory(pack.analyze(legacy)) == {("cluster-no-photon", "databricks-cluster")}
    assert not mandatory(pack.analyze(photon, {"cluster-no-photon": {"allowPhoton": True}}))


def test_a_key_in_clear_text_on_the_cluster_is_refused_without_showing_it(
    pack: PolicyAnalyzer, up: ProgramRun
) -> None:
    environment = up.one(CLUSTER).inputs["sparkEnvVars"]
    assert environment["AZURE_OPENAI_API_KEY"].startswith("{{secrets/"), "the lab's wiring"
    # The wiring mistake: the account's key itself (a Pulumi secret) instead of its reference.
    key = up.one("databricks:index/secret:Secret").inputs["stringValue"]
    assert isinstance(key, Secret)
    leaked = changed(up, CLUSTER, sparkEnvVars={**environment, "AZURE_OPENAI_API_KEY": key})
    violations = pack.analyze(leaked)
    assert mandatory(violations) == {("cluster-no-clear-text-credentials", "databricks-cluster")}
    assert all(key.value not in v.message for v in violations), "the key is never shown"
    conf = {
        **up.one(CLUSTER).inputs["sparkConf"],
        "spark.hadoop.fs.azure.account.oauth2.client.secret": "s3cr3t-v4lue",
    }
    in_conf = pack.analyze(changed(up, CLUSTER, sparkConf=conf))
    assert mandatory(in_conf) == {("cluster-no-clear-text-credentials", "databricks-cluster")}
    assert "sparkConf.spark.hadoop.fs.azure.account.oauth2.client.secret" in in_conf[-1].message
    referenced = {
        **conf,
        "spark.hadoop.fs.azure.account.oauth2.client.secret": "{{secrets/llmops/sp}}",
    }
    assert not mandatory(pack.analyze(changed(up, CLUSTER, sparkConf=referenced)))


def test_advisories_point_to_keyless_mode_and_pinning(
    pack: PolicyAnalyzer, run: Run, preview: ProgramRun
) -> None:
    advice = {v.policy: v.message for v in pack.analyze(preview.resources)}
    assert "llmops:authMode entra" in advice["openai-keyless"]
    assert "llmops:modelVersion" in advice["deployment-pinned-version"]
    pinned = pack.analyze(run({"modelVersion": "2024-11-20"}, preview=True).resources)
    assert "deployment-pinned-version" not in {v.policy for v in pinned}
    properties = preview.one(ACCOUNT).inputs["properties"]
    keyless = changed(preview, ACCOUNT, properties={**properties, "disableLocalAuth": True})
    assert "openai-keyless" not in {v.policy for v in pack.analyze(keyless)}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"deployment-capacity-cap": "advisory"}, "advisory"),
        ({"deployment-capacity-cap": {"enforcementLevel": "disabled"}}, None),
        ({"all": "disabled"}, None),
        ({"all": "advisory", "deployment-capacity-cap": "mandatory"}, "mandatory"),
    ],
)
def test_enforcement_levels_follow_the_pack_config(
    pack: PolicyAnalyzer, big: ProgramRun, config: dict[str, Any], expected: str | None
) -> None:
    levels = {
        v.level
        for v in pack.analyze(big.resources, config)
        if v.policy == "deployment-capacity-cap"
    }
    assert levels == ({expected} if expected else set())


def test_an_advisory_made_mandatory_stops_the_default_stack(
    pack: PolicyAnalyzer, preview: ProgramRun
) -> None:
    violations = pack.analyze(preview.resources, {"openai-keyless": "mandatory"})
    assert mandatory(violations) == {("openai-keyless", "openai-account")}


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"deployment-capacity-cap": "strict"}, "'strict' is not an enforcement level"),
        ({"deployment-capacity-cap": {"maxCapacity": "lots"}}, "maxCapacity: expected integer"),
        (
            {"allowed-regions": {"allowedRegions": ["westus", 3]}},
            "allowedRegions[1]: expected string",
        ),
        ({"cluster-auto-termination": {"maxMinutes": 0}}, "at least 10"),
    ],
)
def test_bad_pack_config_is_refused(
    pack: PolicyAnalyzer, preview: ProgramRun, config: dict[str, Any], needle: str
) -> None:
    with pytest.raises(PolicyPackError) as caught:
        pack.analyze(preview.resources, config)
    assert needle in str(caught.value)


_ANY_PACK = """
from pulumi_policy import (
    EnforcementLevel, PolicyPack, ResourceValidationPolicy, StackValidationPolicy,
)

def count(args, report):
    if len(args.resources) > 3:
        report(f"{len(args.resources)} resources", None)

def leak(args, report):
    if args.resource_type == "databricks:index/secret:Secret":
        report("the value is " + args.props["stringValue"], None)

PolicyPack(name="another-pack", policies=[
    StackValidationPolicy(name="small-stack", description="Few resources.", validate=count,
                          enforcement_level=EnforcementLevel.MANDATORY),
    ResourceValidationPolicy(name="leaky", description="Says too much.", validate=leak),
])
"""


def test_any_python_pack_runs_and_stops_with_its_process(tmp_path: Path, up: ProgramRun) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text(_ANY_PACK)
    analyzer = PolicyAnalyzer(tmp_path)
    with analyzer:
        violations = analyzer.analyze(up.resources)
    stack = [v for v in violations if v.policy == "small-stack"]
    assert [(v.level, v.urn, v.pack) for v in stack] == [("mandatory", "", "another-pack")]
    assert stack[0].message == f"{len(up.resources)} resources"
    key = up.one("databricks:index/secret:Secret").inputs["stringValue"].value
    leaked = [v.message for v in violations if v.policy == "leaky"]
    assert leaked == ["the value is [secret]"], "a secret is masked whatever the pack says"
    assert all(key not in v.message for v in violations)
    with pytest.raises(ProcessLookupError):
        os.kill(analyzer.pid, 0)


def test_a_folder_without_a_pack_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyPackError, match=r"no PulumiPolicy\.yaml"):
        PolicyAnalyzer(tmp_path)
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: nodejs\n")
    with pytest.raises(PolicyPackError, match="Python packs only"):
        PolicyAnalyzer(tmp_path)


# --- `python -m llmops_infra plan` ------------------------------------------------------------


@pytest.fixture(scope="module")
def plans(run: Run, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    """The plans of a violating stack: the text one as a user runs it, the others forked.

    ``run`` (conftest) has loaded the provider SDKs into this process for the forks.
    """
    folder = tmp_path_factory.mktemp("pack-config")
    raised = folder / "raised.json"
    raised.write_text(json.dumps({"deployment-capacity-cap": {"maxCapacity": 100}}))
    strict = folder / "strict.json"
    strict.write_text(json.dumps({"deployment-capacity-cap": "strict"}))
    misspelt = folder / "misspelt.json"
    misspelt.write_text(json.dumps({"deployment-capacty-cap": {"maxCapacity": 5}}))
    started = {
        "text": start_process("--config", "llmops:capacity=100"),
        "strict": start_process("--policy-pack-config", str(strict)),
        "nopack": start_process("--policy-pack", str(folder)),
        "json": start_in_fork("--json", "--config", "llmops:autoterminationMinutes=500"),
        "raised": start_in_fork(
            "--config", "llmops:capacity=100", "--policy-pack-config", str(raised)
        ),
        "skipped": start_in_fork("--no-policy", "--config", "llmops:capacity=100"),
        "misspelt": start_in_fork("--policy-pack-config", str(misspelt)),
    }
    return {name: plan.result() for name, plan in started.items()}


def test_plan_shows_a_violation_under_its_resource_and_exits_3(
    plans: dict[str, tuple[int, str, str]],
) -> None:
    code, out, err = plans["text"]
    assert code == 3, err
    lines = out.splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if "cognitiveservices:Deployment  openai-deployment" in line
    )
    end = next(i for i in range(start + 1, len(lines)) if "─ " in lines[i])
    block = "\n".join(lines[start:end])
    assert "[mandatory] deployment-capacity-cap: capacity 100 (100K TPM)" in block
    assert "[advisory] deployment-pinned-version:" in block
    assert "Policies (llmops-guardrails): 1 mandatory violation, 2 advisory violations" in lines
    assert lines[-1].startswith("Cost: "), "the cost line ends the plan (llmops_infra/cost)"
    assert lines[-4].endswith("switzerlandwest"), "the plan's own closing lines stay last"


@pytest.mark.parametrize(
    ("levels", "summary"),
    [
        (["mandatory", "advisory"], "1 mandatory violation, 1 advisory violation"),
        (["advisory"], "0 mandatory violations, 1 advisory violation"),
        (["mandatory", "mandatory", "advisory"], "2 mandatory violations, 1 advisory violation"),
    ],
)
def test_the_summary_counts_each_level_with_its_own_noun(levels: list[Level], summary: str) -> None:
    violations = [Violation(f"p{i}", level, "m", "d", "", "pack") for i, level in enumerate(levels)]
    text = with_violations_text("Plan\n\n3 resources to create", [], "pack", violations)
    assert f"Policies (pack): {summary}" in text.splitlines()


def test_plan_json_carries_the_violations(plans: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = plans["json"]
    assert code == 3, err
    plan = json.loads(out)
    cluster = next(r for r in plan["resources"] if r["type"] == CLUSTER)
    assert [v["policy"] for v in cluster["violations"]] == ["cluster-auto-termination"]
    assert plan["policy"]["pack"] == "llmops-guardrails"
    assert (plan["policy"]["mandatory"], plan["policy"]["advisory"]) == (1, 2)


def test_plan_config_file_and_no_policy_let_the_stack_pass(
    plans: dict[str, tuple[int, str, str]],
) -> None:
    code, out, err = plans["raised"]
    assert code == 0, err
    assert "Policies (llmops-guardrails): 0 mandatory violations, 2 advisory violations" in out
    code, out, err = plans["skipped"]
    assert code == 0, err
    assert "Policies" not in out and "[advisory]" not in out


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("strict", "'strict' is not an enforcement level"),
        ("nopack", "no PulumiPolicy.yaml"),
        # Stricter than the Pulumi CLI, which ignores the name and keeps the default cap.
        (
            "misspelt",
            "names no policy of the pack: 'deployment-capacty-cap'; "
            "did you mean 'deployment-capacity-cap'? (its policies: allowed-regions, ",
        ),
    ],
)
def test_plan_with_a_bad_pack_or_config_exits_2(
    plans: dict[str, tuple[int, str, str]], name: str, needle: str
) -> None:
    code, out, err = plans[name]
    assert code == 2
    assert out == ""
    assert needle in err and len(err.strip().splitlines()) == 1, err


# --- docs/guardrails.md -----------------------------------------------------------------------

GUIDE = PROJECT_DIR / "docs" / "guardrails.md"


def test_the_guide_lists_every_policy_with_its_default_level(pack: PolicyAnalyzer) -> None:
    rows = {
        cells[1].strip("` "): cells[2].strip()
        for line in GUIDE.read_text().splitlines()
        if line.startswith("| `") and len(cells := line.split("|")) > 3
    }
    policies = {p["name"]: p["level"] for p in pack.info()["policies"]}
    assert rows == policies, "the guide's table is the pack's policies and levels"


def test_the_guides_example_config_is_one_the_pack_accepts(
    pack: PolicyAnalyzer, preview: ProgramRun
) -> None:
    text = GUIDE.read_text()
    start = text.index("```json\n") + len("```json\n")
    config = json.loads(text[start : text.index("```", start)])
    violations = pack.analyze(preview.resources, config)
    assert mandatory(violations) == {("openai-keyless", "openai-account")}
    assert "cluster-no-photon" in config and config["cluster-no-photon"] == "disabled"


def test_the_guides_plan_excerpt_is_what_plan_prints(
    plans: dict[str, tuple[int, str, str]],
) -> None:
    text = GUIDE.read_text()
    start = text.index("```text\n") + len("```text\n")
    excerpt = [
        line for line in text[start : text.index("```", start)].splitlines() if "..." not in line
    ]
    printed = plans["text"][1].splitlines()
    assert [line for line in excerpt if line not in printed] == []


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("import no_such_module_here\n", "stopped before it served: ModuleNotFoundError"),
        (
            _ANY_PACK.replace('report("the value is "', 'print("x" * 200_000); 1 / 0; report(""'),
            "failed in Analyze: ",
        ),
    ],
)
def test_a_broken_pack_is_one_line_and_its_process_ends(
    tmp_path: Path, preview: ProgramRun, source: str, needle: str
) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text(source)
    analyzer = PolicyAnalyzer(tmp_path)
    with analyzer, pytest.raises(PolicyPackError) as caught:
        analyzer.analyze(preview.resources)
    assert needle in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ProcessLookupError):
        os.kill(analyzer.pid, 0)


# --- private networking -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def private(run: Run) -> ProgramRun:
    """The stack in private mode, as `plan` sees it."""
    return run({"network": "private"}, preview=True)


def test_a_private_stack_passes_and_the_public_one_has_nothing_new(
    pack: PolicyAnalyzer, private: ProgramRun, preview: ProgramRun
) -> None:
    assert mandatory(pack.analyze(private.resources)) == set()
    assert {(p, r) for p, _, r in found(pack.analyze(preview.resources))} == ADVISORIES, (
        "the default lab's plan stays as it is"
    )


def _held(run: ProgramRun, type_: str, **properties: Any) -> list[RecordedResource]:
    """The run's resources with one resource holding other properties (a stack policy reads
    what the resources hold, their outputs)."""
    target = run.one(type_)
    return [
        dataclasses.replace(
            r, inputs={**r.inputs, **properties}, outputs={**r.outputs, **properties}
        )
        if r is target
        else r
        for r in run.resources
    ]


def test_a_private_stack_with_an_open_account_or_public_cluster_ips_is_refused(
    pack: PolicyAnalyzer, private: ProgramRun
) -> None:
    properties = private.one(ACCOUNT).inputs["properties"]
    opened = _held(private, ACCOUNT, properties={**properties, "publicNetworkAccess": "Enabled"})
    violations = [v for v in pack.analyze(opened) if v.policy == "private-network-closed"]
    assert mandatory(violations) == {("private-network-closed", "openai-account")}
    assert "publicNetworkAccess" in violations[0].message

    allowing = _held(
        private,
        ACCOUNT,
        properties={**properties, "networkAcls": {"defaultAction": "Allow", "ipRules": []}},
    )
    assert mandatory(pack.analyze(allowing)) == {("private-network-closed", "openai-account")}

    parameters = private.one(WORKSPACE).inputs["parameters"]
    public_ips = _held(
        private, WORKSPACE, parameters={**parameters, "enableNoPublicIp": {"value": False}}
    )
    assert mandatory(pack.analyze(public_ips)) == {
        ("private-network-closed", "databricks-workspace")
    }

    without_endpoint = [
        r for r in private.resources if r.type != "azure-native:network:PrivateEndpoint"
    ]
    messages = [v.message for v in pack.analyze(without_endpoint) if v.level == "mandatory"]
    assert any("no private endpoint" in m for m in messages), messages
