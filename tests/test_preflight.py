"""``python -m llmops_infra preflight`` against a fake Resource Manager on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_arm import Answer, FakeArm, FakeCredential, fake_arm
from pytest_mock import MockerFixture

from llmops_infra import arm
from llmops_infra.arm import API_VERSION, ARM_ENDPOINT_ENV, ArmClient
from llmops_infra.cli import build_parser, main
from llmops_infra.offline.engine import PROJECT_DIR
from llmops_infra.preflight import find_subscription

SUB = "sub-1"
BASE = f"/subscriptions/{SUB}/providers/Microsoft.CognitiveServices"
REGIONS = ("eastus2", "northcentralus", "swedencentral", "switzerlandwest")


def usage(limit: int, used: int, name: str = "OpenAI.Standard.gpt-4o") -> dict[str, object]:
    return {"name": {"value": name}, "limit": limit, "currentValue": used, "unit": "Count"}


def deleted(name: str, group: str, location: str) -> dict[str, object]:
    return {
        "id": f"{BASE}/locations/{location}/resourceGroups/{group}/deletedAccounts/{name}",
        "name": name,
        "location": location,
    }


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, mocker: MockerFixture) -> Iterator[FakeArm]:
    """Quota everywhere but eastus2 (full) and switzerlandwest (no gpt-4o at all)."""
    with fake_arm() as fake:
        monkeypatch.setenv(ARM_ENDPOINT_ENV, fake.base)
        for name in ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID"):
            monkeypatch.delenv(name, raising=False)
        mocker.patch.object(arm, "default_credential", autospec=True, return_value=FakeCredential())
        mocker.patch.object(arm, "_sleep", autospec=True)
        fake.on("GET", f"{BASE}/locations/eastus2/usages", Answer(200, {"value": [usage(30, 30)]}))
        fake.on(
            "GET",
            f"{BASE}/locations/northcentralus/usages",
            Answer(
                200,
                {
                    "value": [usage(50, 45), usage(99, 0, "OpenAI.Standard.gpt-4o-mini")],
                    "nextLink": f"{fake.base}{BASE}/locations/northcentralus/usages2",
                },
            ),
        )
        fake.on("GET", f"{BASE}/locations/northcentralus/usages2", Answer(200, {"value": []}))
        fake.on(
            "GET", f"{BASE}/locations/swedencentral/usages", Answer(200, {"value": [usage(150, 0)]})
        )
        fake.on("GET", f"{BASE}/locations/switzerlandwest/usages", Answer(200, {"value": []}))
        fake.on(
            "GET",
            f"{BASE}/deletedAccounts",
            Answer(
                200,
                {"value": [deleted("oai-llmops-dev-old123", "rg-llmops-dev-old123", "eastus2")]},
            ),
        )
        yield fake


def preflight(*args: str) -> int:
    return main(["preflight", "--subscription", SUB, *args])


def test_table_shows_each_region_and_the_soft_deleted_account(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert preflight() == 0, "swedencentral fits, so a usable region exists"
    out = capsys.readouterr().out
    lines = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.split()[:1] and line.split()[0] in REGIONS
    }
    assert lines["eastus2"][1:6] == ["30", "30", "0", "no", "oai-llmops-dev-old123"]
    assert lines["northcentralus"][1:6] == ["50", "45", "5", "no", "-"], "gpt-4o, not gpt-4o-mini"
    assert lines["swedencentral"][1:6] == ["150", "0", "150", "yes", "-"]
    assert lines["switzerlandwest"][1:6] == ["0", "0", "0", "no", "-"], "no entry means no quota"
    assert "pulumi config set --path 'llmops:allowedRegions[0]' swedencentral" in out
    assert (
        "az cognitiveservices account purge --name oai-llmops-dev-old123 "
        "--resource-group rg-llmops-dev-old123 --location eastus2"
    ) in out
    for call in azure.requests:
        assert call.query.get("api-version") in ([API_VERSION], None), call.path
    assert len(azure.calls("GET", f"{BASE}/locations/northcentralus/usages2")) == 1, "nextLink"


def test_a_pinned_region_without_quota_fails_with_what_to_do(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert preflight("--config", "llmops:region=eastus2") == 1
    out = capsys.readouterr().out
    assert "NOT ENOUGH QUOTA: capacity 10 does not fit in eastus2" in out
    assert "pulumi config set llmops:region swedencentral" in out
    assert "az cognitiveservices account purge --name oai-llmops-dev-old123" in out


def test_no_allowed_region_fits(azure: FakeArm, capsys: pytest.CaptureFixture[str]) -> None:
    assert preflight("--config", "llmops:capacity=200") == 1
    out = capsys.readouterr().out
    assert "does not fit in any allowed region" in out
    assert "pulumi config set llmops:capacity 150" in out, "the largest that fits"


def test_a_pinned_region_with_quota_passes(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert preflight("--config", "llmops:region=swedencentral") == 0
    assert "OK: capacity 10 fits" in capsys.readouterr().out


def test_unreachable_azure_is_one_line_and_exit_2(
    azure: FakeArm, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ARM_ENDPOINT_ENV, "http://127.0.0.1:9")  # discard port: refused
    assert preflight() == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("error: cannot reach Azure Resource Manager")


def test_refused_quota_read_names_the_role(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    azure.on(
        "GET", f"{BASE}/deletedAccounts", Answer(403, {"error": {"code": "AuthorizationFailed"}})
    )
    assert preflight() == 2
    assert "Cognitive Services Usages Reader" in capsys.readouterr().err


def test_subscription_comes_from_flag_then_environment_then_stack() -> None:
    stack = {"azure-native:subscriptionId": "from-stack"}
    assert find_subscription("flag", {"AZURE_SUBSCRIPTION_ID": "env"}, stack) == "flag"
    assert find_subscription(None, {"ARM_SUBSCRIPTION_ID": "arm"}, stack) == "arm"
    assert find_subscription(None, {}, stack) == "from-stack"


def test_client_retries_throttled_lists(azure: FakeArm) -> None:
    azure.on(
        "GET",
        f"{BASE}/deletedAccounts",
        Answer(429, headers={"Retry-After": "1"}),
        Answer(200, {"value": []}),
    )
    assert ArmClient(FakeCredential()).list_all(f"{BASE}/deletedAccounts") == []
    assert len(azure.calls("GET", f"{BASE}/deletedAccounts")) == 2


def test_help_is_registered() -> None:
    assert "preflight" in build_parser().format_help()


def test_without_credentials_the_command_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AZURE_", "ARM_", "PULUMI_", "IDENTITY_", "MSI_"))
    }
    env.update(
        HOME=str(tmp_path),  # no Azure CLI login, no cached tokens
        PATH=str(Path(sys.executable).parent),  # no `az`
        AZURE_SUBSCRIPTION_ID=SUB,
        # Nothing listens there; only reached if some credential were found.
        **{ARM_ENDPOINT_ENV: "http://127.0.0.1:9"},
    )
    done = subprocess.run(
        [sys.executable, "-m", "llmops_infra", "preflight"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
