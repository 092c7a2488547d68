"""`python -m llmops_infra plan`, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from plan_runs import PLAN, clean_env, start_in_fork, start_process

from llmops_infra import cli
from llmops_infra.offline.engine import PROJECT_DIR
from workload import contract

#: End-to-end runs (processes, MLflow): a parallel session starts this module first.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plans(run: object) -> dict[str, tuple[int, str, str]]:
    """The text and one JSON plan as processes, run together; the others forked.

    ``run`` (conftest) loads the provider SDKs into this process for the forks.
    """
    started = {
        "text": start_process(),
        "json1": start_process("--json"),
        "json2": start_in_fork("--json"),
        "pinned": start_in_fork("--config", "llmops:region=swedencentral", "--json"),
        "keyless_judged": start_in_fork(
            "--config",
            "llmops:authMode=entra",
            "--config",
            "llmops:judgeModel=gpt-4o-mini",
            "--config",
            "llmops:judgeCapacity=20",
            "--json",
        ),
        "options": start_in_fork(
            "--config", "llmops:gateway=true", "--config", "llmops:compute=serverless"
        ),
        "typo": start_in_fork(
            "--config", "llmops:capacty=20", "--config", "lmops:capacity=20", "--json"
        ),
    }
    return {name: plan.result() for name, plan in started.items()}


def test_tree_shows_every_resource_with_the_labs_settings(
    plans: dict[str, tuple[int, str, str]],
) -> None:
    code, out, err = plans["text"]
    assert code == 0, err
    for line in [
        "pulumi:pulumi:Stack  llmops-dev",
        "├─ llmops:openai:AzureOpenAI  openai",
        "azure-native:cognitiveservices:Account  openai-account",
        "kind: OpenAI",
        "sku: S0",
        "azure-native:cognitiveservices:Deployment  openai-deployment",
        "model: gpt-4o",
        "version: Azure's default",
        "type: Standard",
        "tokens per minute: 10K",
        "content filter: Microsoft.DefaultV2",
        "├─ llmops:databricks:Workspace  databricks",
        "├─ llmops:databricks:LabCluster  databricks-cluster",
        "sku: premium",
        "compute mode: Hybrid",
        "databricks:index/cluster:Cluster  databricks-cluster  (provider: databricks-provider)",
        "runtime: 16.4.x-cpu-ml-scala2.12",
        "node type: Standard_D4ds_v5",
        "photon: off",
        "single node: yes",
        "auto-termination: 30 min",
        "up waits for RUNNING: yes",
        "draws one of: eastus2, northcentralus, swedencentral, switzerlandwest",
        "databricks:index/secret:Secret  databricks-lab-openai-key",
        "value: [secret]",
        "path: /Shared/llmops-lab",
    ]:
        assert line in out, f"the plan shows {line!r}"
    plan = json.loads(plans["json1"][1])
    assert out.rstrip().splitlines()[-1].startswith("Cost: "), "the cost line ends the plan"
    assert out.rstrip().splitlines()[-4] == (
        f"{len(plan['resources']) + 1} resources to create in a region drawn at random once from "
        "eastus2, northcentralus, swedencentral, switzerlandwest"
    ), "the count is what the plan lists, plus the stack itself, as Pulumi counts"


def test_the_plan_shows_the_stacks_tags_where_they_land(
    plans: dict[str, tuple[int, str, str]],
) -> None:
    # Pulumi.dev.yaml sets two tags.
    dev = {"purpose": "llmops-lab", "stack": "dev"}
    out = plans["text"][1]
    assert out.splitlines()[1] == (
        "Tags (llmops:tags) on the Azure resources and the cluster: purpose=llmops-lab, stack=dev"
    ), "the text plan says which tags the stack puts on its resources"
    plan = json.loads(plans["json1"][1])
    assert plan["tags"] == dev
    tagged = [r for r in plan["resources"] if "tags" in r["inputs"]]
    assert {r["type"] for r in tagged} >= {
        "azure-native:resources:ResourceGroup",
        "azure-native:cognitiveservices:Account",
        "azure-native:databricks:Workspace",
    }
    assert all(r["inputs"]["tags"] == dev for r in tagged), "what the line says is what is sent"
    (cluster,) = [r for r in plan["resources"] if r["type"] == "databricks:index/cluster:Cluster"]
    assert dev.items() <= cluster["inputs"]["customTags"].items()


def test_cloud_values_are_unknown_and_secrets_masked(
    plans: dict[str, tuple[int, str, str]],
) -> None:
    code, out, err = plans["json1"]
    assert code == 0, err
    plan = json.loads(out)
    outputs = plan["outputs"]
    assert list(outputs) == [name for name in contract.ALL_OUTPUTS if name in outputs]
    assert contract.OPENAI_API_KEY in outputs and contract.DATABRICKS_CHAT_JOB_ID in outputs
    for name in (
        contract.OPENAI_ENDPOINT,
        contract.DATABRICKS_WORKSPACE_URL,
        contract.DATABRICKS_CLUSTER_ID,
        contract.REGION,
    ):
        assert outputs[name] == {"value": "(known after up)", "secret": False, "known": False}
    assert outputs[contract.OPENAI_API_KEY]["value"] == "[secret]"
    assert outputs[contract.OPENAI_API_KEY]["secret"] is True
    assert outputs[contract.OPENAI_API_VERSION]["value"] == "2024-05-01-preview"
    assert "example.com" not in out and ".azuredatabricks.net" not in out, "nothing invented"
    text = plans["text"][1]
    assert "[secret]" in text


def test_json_is_identical_across_runs(plans: dict[str, tuple[int, str, str]]) -> None:
    assert plans["json1"][0] == plans["json2"][0] == 0
    assert plans["json1"][1] == plans["json2"][1], "two plans of one config can be diffed"
    # Another process and a fork, so another hash seed and another address space: nothing
    # in the output depends on either.


def test_an_unpinned_plan_names_the_allowed_regions_the_options_cannot_use(
    plans: dict[str, tuple[int, str, str]],
) -> None:
    code, out, err = plans["options"]
    assert code == 0, err
    assert "The options cannot use " in out
    line = next(line for line in out.splitlines() if line.startswith("The options cannot use "))
    assert "switzerlandwest (no system tables, serverless jobs)" in line, "the cells read empty"
    assert "eastus2" not in line, "a cell nobody read is not held against a region"
    assert "a first draw leaves them out" in line and "preflight --pin" in line
    # The draw the program makes, and the plan's summary, leave switzerlandwest out.
    assert "draws one of: eastus2, northcentralus, swedencentral\n" in out
    assert "in a region drawn at random once from eastus2, northcentralus, swedencentral\n" in out
    unsure = next(line for line in out.splitlines() if line.startswith("Not confirmed"))
    assert "eastus2 (Model Serving, external models)" in unsure
    assert "feature-region-support" in unsure
    assert "The options cannot use" not in plans["text"][1], "nothing to say without options"


def test_pinned_region_moves_everything(plans: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = plans["pinned"]
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    assert plan["region"] == {
        "pinned": True,
        "value": "swedencentral",
        "candidates": ["swedencentral"],
        "unusable": {},
        "unconfirmed": {},
    }
    located = [r for r in plan["resources"] if "location" in r["inputs"]]
    assert {r["type"] for r in located} >= {
        "azure-native:resources:ResourceGroup",
        "azure-native:cognitiveservices:Account",
        "azure-native:databricks:Workspace",
    }
    assert {r["inputs"]["location"] for r in located} == {"swedencentral"}
    assert not any(r["type"].endswith("RandomShuffle") for r in plan["resources"])
    assert plan["outputs"][contract.REGION]["value"] == "swedencentral"
    assert plan["summary"]["region"] == "swedencentral"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--config", "llmops:region=westus"], "llmops:region = 'westus'"),
        (["--config", "capacity=0"], "llmops:capacity = '0'"),
        (["--config", "workspaceSku=gold"], "llmops:workspaceSku = 'gold'"),
        (["--config", "autoterminationMinutes=3"], "llmops:autoterminationMinutes = '3'"),
        (["--config", "allowedRegions=[]"], "llmops:allowedRegions = '[]'"),
        (["--config", "tags=oops"], "'llmops:tags' = 'oops' must be of type 'object'"),
        # What the Pulumi CLI refuses against Pulumi.yaml's types, refused the same way.
        (["--config", "capacity=10.0"], "'llmops:capacity' = '10.0' must be of type 'integer'"),
        (["--config", "capacity=1_000"], "'llmops:capacity' = '1_000' must be of type 'integer'"),
        (["--config", "capacity= 10 "], "'llmops:capacity' = ' 10 ' must be of type 'integer'"),
        (["--config", "purgeOnDestroy=True"], "'llmops:purgeOnDestroy' = 'True' must be of type"),
        (["--config", "allowedRegions=eastus2"], "must be of type 'array<string>'"),
        (["--config", "nonsense"], "key=value"),
        (
            ["--config", "llmops:gateway=true", "--config", "llmops:region=switzerlandwest"],
            "region switzerlandwest does not offer system tables",
        ),
        (["--stack", "nosuchstack"], "Pulumi.nosuchstack.yaml"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command's own entry point in this process: each case stops before the program
    # runs (a process per case would cost seconds of start-up; one case runs as a process
    # below).
    assert cli.main(["plan", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--config", "capacity=1_000"], "'llmops:capacity' = '1_000' must be of type 'integer'"),
        (["--config", "capacity=0"], "llmops:capacity = '0'"),
    ],
)
def test_bad_configuration_stops_the_command_as_a_process(args: list[str], needle: str) -> None:
    done = subprocess.run(
        [*PLAN, *args],
        cwd=PROJECT_DIR,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_key_nothing_reads_is_named_with_the_closest_declared_key(
    plans: dict[str, tuple[int, str, str]],
) -> None:
    code, out, err = plans["typo"]
    assert code == 0, "the program warns, as in `pulumi up`, and goes on"
    assert err.splitlines() == [
        "warning: llmops:capacty is not a key Pulumi.yaml declares, so it changes nothing "
        "(did you mean llmops:capacity?)",
        "warning: lmops:capacity is in no namespace this stack reads (llmops, pulumi, "
        "azure-native, databricks, random), so it changes nothing (did you mean llmops:capacity?)",
    ]
    (deployment,) = [r for r in json.loads(out)["resources"] if r["name"] == "openai-deployment"]
    assert deployment["inputs"]["sku"]["capacity"] == 10, "the misspelt keys changed nothing"


def test_plan_page_excerpt_is_what_the_plan_prints(plans: dict[str, tuple[int, str, str]]) -> None:
    # The excerpt lives on the plan's own page, which the README links.
    assert "(docs/plan.md)" in (PROJECT_DIR / "README.md").read_text(), "README links the plan"
    page = (PROJECT_DIR / "docs" / "plan.md").read_text()
    start = page.index("```text\nPlan for stack 'dev'")
    excerpt = page[start : page.index("```\n", start + 3)].splitlines()[1:]
    printed = plans["text"][1].splitlines()
    shown = [line for line in excerpt if "..." not in line]
    assert len(shown) > 40, "the excerpt shows the plan, not a summary of it"
    missing = [line for line in shown if line not in printed]
    assert not missing, f"docs/plan.md lines the plan no longer prints: {missing}"
    assert excerpt[-4] == printed[-4], "the summary line is the plan's own"
    assert excerpt[-1] == printed[-1], "the cost line ends the plan (llmops_infra/cost)"


def test_the_keyless_plan_with_a_judge_shows_what_those_options_add(
    plans: dict[str, tuple[int, str, str]],
) -> None:
    code, out, err = plans["keyless_judged"]
    assert code == 0, err
    plan = json.loads(out)
    by_name = {r["name"]: r for r in plan["resources"]}
    assert by_name["openai-account"]["settings"]["key access"] == "disabled (keyless)"
    judge = by_name["openai-judge-deployment"]["settings"]
    assert (judge["name"], judge["model"], judge["capacity"], judge["tokens per minute"]) == (
        "gpt-4o-mini",
        "gpt-4o-mini",
        20,
        "20K",
    )
    assert judge["content filter"] == "Microsoft.DefaultV2"
    types = [r["type"] for r in plan["resources"]]
    assert types.count("azure-native:authorization:RoleAssignment") == 2, "deployer, connector"
    assert "azure-native:databricks:AccessConnector" in types
    assert "databricks:index/credential:Credential" in types
    assert "databricks:index/secretScope:SecretScope" not in types, "no scope, no key"
    assert "databricks:index/secret:Secret" not in types
    outputs = plan["outputs"]
    assert outputs[contract.OPENAI_AUTH_MODE]["value"] == "entra", "the plan shows the mode"
    assert outputs[contract.OPENAI_JUDGE_DEPLOYMENT]["value"] == "gpt-4o-mini"
    assert outputs[contract.OPENAI_JUDGE_TOKENS_PER_MINUTE]["value"] == 20000
    assert (
        contract.OPENAI_API_KEY not in outputs and contract.DATABRICKS_SECRET_SCOPE not in outputs
    )
    env = by_name["databricks-cluster"]["settings"]["environment"]
    assert "LLMOPS_SERVICE_CREDENTIAL" in env and "AZURE_OPENAI_API_KEY" not in env
