"""Stack files read as the Pulumi CLI reads them: YAML 1.2, and Pulumi.yaml's types enforced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmops_infra.errors import ConfigError
from llmops_infra.offline.resource_types import RESOURCE_TYPES
from llmops_infra.offline.stack_files import parse_overrides, read_stack_config
from llmops_infra.stack.config import PROVIDER_NAMESPACES, undeclared_keys
from workload.contract import PROJECT_DIR


def _project(tmp_path: Path, stack_yaml: str) -> Path:
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.t.yaml").write_text(stack_yaml)
    return tmp_path


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("llmops:capacity: 20", "20"),
        ('llmops:capacity: "20"', "20"),
        ("llmops:purgeOnDestroy: false", "false"),
        ('llmops:purgeOnDestroy: "false"', "false"),
        ("llmops:purgeOnDestroy: False", "false"),  # a YAML 1.2 boolean too
        ("llmops:allowedRegions: [eastus2, swedencentral]", '["eastus2", "swedencentral"]'),
        ("llmops:tags: {owner: me}", '{"owner": "me"}'),
        ("llmops:modelVersion: 2024-11-20", "2024-11-20"),
        # A YAML float that is a whole number is JSON-encoded by the CLI as one.
        ("llmops:capacity: 10.0", "10"),
        ("llmops:capacity: 1e3", "1000"),
    ],
)
def test_values_the_cli_accepts_reach_the_program_as_it_hands_them(
    tmp_path: Path, line: str, value: str
) -> None:
    config = read_stack_config(_project(tmp_path, f"config:\n  {line}\n"), "t")
    assert config[line.split(":")[0] + ":" + line.split(":")[1]] == value


@pytest.mark.parametrize(
    ("line", "type_"),
    [
        ('llmops:capacity: "10.0"', "integer"),
        ('llmops:capacity: "1_000"', "integer"),
        ('llmops:capacity: " 10 "', "integer"),
        ("llmops:capacity: 10.5", "integer"),
        ('llmops:purgeOnDestroy: "True"', "boolean"),
        ("llmops:purgeOnDestroy: yes", "boolean"),  # YAML 1.2: a string, not PyYAML's true
        ("llmops:allowedRegions: eastus2", "array<string>"),
        ("llmops:allowedRegions: [1, 2]", "array<string>"),
        ("llmops:tags: owner", "object"),
    ],
)
def test_values_the_cli_refuses_stop_before_the_program(
    tmp_path: Path, line: str, type_: str
) -> None:
    key = ":".join(line.split(":")[:2])
    with pytest.raises(ConfigError, match=rf"Stack 't' with configuration key '{key}'") as err:
        read_stack_config(_project(tmp_path, f"config:\n  {line}\n"), "t")
    assert f"must be of type '{type_}'" in str(err.value)


def test_an_encrypted_value_is_passed_masked_not_checked(tmp_path: Path) -> None:
    stack = "config:\n  azure-native:clientSecret:\n    secure: AAABAxyz\n"
    config = read_stack_config(_project(tmp_path, stack), "t")
    assert config["azure-native:clientSecret"] == "[secret]"


def test_overrides_are_strings_unless_json_like_pulumi_config_set_json() -> None:
    assert parse_overrides(["capacity=20", 'allowedRegions=["eastus2"]', "tags={}"]) == {
        "llmops:capacity": "20",
        "llmops:allowedRegions": ["eastus2"],
        "llmops:tags": {},
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["capacity"])


@pytest.mark.parametrize(
    ("key", "warning"),
    [
        (
            "lmops:capacity",
            "lmops:capacity is in no namespace this stack reads (llmops, pulumi, azure-native, "
            "databricks, random), so it changes nothing (did you mean llmops:capacity?)",
        ),
        (
            "llmops:capacty",
            "llmops:capacty is not a key Pulumi.yaml declares, so it changes nothing "
            "(did you mean llmops:capacity?)",
        ),
        (
            "mystack:owner",
            "mystack:owner is in no namespace this stack reads (llmops, pulumi, azure-native, "
            "databricks, random), so it changes nothing (the stack's own keys are llmops:..., "
            "docs/configuration.md lists them)",
        ),
    ],
)
def test_a_key_nothing_reads_is_named_with_the_closest_declared_key(key: str, warning: str) -> None:
    assert undeclared_keys([key, "llmops:capacity"]) == [warning]


def test_keys_of_pulumi_and_of_the_providers_are_theirs_to_check() -> None:
    keys = ["azure-native:location", "databricks:host", "random:anything", "pulumi:tags"]
    assert undeclared_keys(keys) == []


def test_the_provider_namespaces_are_those_of_the_stacks_resource_types() -> None:
    # The catalog of types the program registers names each provider by its token's package.
    used = {t.token.split(":", 1)[0] for t in RESOURCE_TYPES} - {
        "llmops",
        "pulumi",
        "pulumi-python",
    }
    assert used == set(PROVIDER_NAMESPACES) == {"azure-native", "databricks", "random"}
