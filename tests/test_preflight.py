"""``python -m llmops_infra preflight`` against a fake Resource Manager on 127.0.0.1."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.pipeline.transport import RequestsTransport
from fake_arm import TOKEN, Answer, FakeArm, FakeCredential, deleted_account, fake_arm, model, usage
from pytest_mock import MockerFixture

from llmops_infra.azure_api import preflight
from llmops_infra.azure_api.clients import (
    ARM_ENDPOINT_ENV,
    ArmSession,
    ArmUnavailable,
    arm_endpoint,
    credential_scopes,
)
from llmops_infra.azure_api.credentials import ARM_TOKEN_ENV
from llmops_infra.azure_api.preflight import find_subscription
from llmops_infra.cli import build_parser, main
from llmops_infra.offline.engine import PROJECT_DIR
from llmops_infra.stack import region_features

SUB = "sub-1"
BASE = f"/subscriptions/{SUB}/providers/Microsoft.CognitiveServices"
REGIONS = ("eastus2", "northcentralus", "swedencentral", "switzerlandwest")
#: A stack file as people write them: comments, a list, a map, a secret, quoting.
STACK_FILE = """\
# The test stack.
#   pulumi config set azure-native:subscriptionId <id>
config:
  azure-native:clientSecret:
    secure: AAABAJ0eXN0LXNlY3JldA==
  azure-native:subscriptionId: "sub-1"
  llmops:allowedRegions:
    - eastus2        # full
    - northcentralus
    - swedencentral
    - switzerlandwest
  llmops:capacity: 5
  llmops:tags:
    purpose: 'llmops-lab'
    stack: test
"""


def models_path(region: str) -> str:
    return f"{BASE}/locations/{region}/models"


def usages_path(region: str) -> str:
    return f"{BASE}/locations/{region}/usages"


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, mocker: MockerFixture) -> Iterator[FakeArm]:
    """eastus2 full; northcentralus 5 free; swedencentral roomy; switzerlandwest quota, no gpt-4o.

    Signed with LLMOPS_ARM_TOKEN over plain http, as docs/reference.md allows for local fakes;
    azure-core's waits are recorded, not slept.
    """
    mocker.patch.object(RequestsTransport, "sleep", autospec=True)
    with fake_arm() as fake:
        monkeypatch.setenv(ARM_ENDPOINT_ENV, fake.base)
        monkeypatch.setenv(ARM_TOKEN_ENV, TOKEN)
        for name in ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID"):
            monkeypatch.delenv(name, raising=False)
        gpt4o = model("gpt-4o", "2024-08-06")
        older = model("gpt-4o", "2024-05-13", default=False)
        mini = model("gpt-4o-mini", "2024-07-18")
        fake.on("GET", models_path("eastus2"), Answer(200, {"value": [gpt4o]}))
        fake.on(
            "GET",
            models_path("northcentralus"),
            Answer(
                200,
                {"value": [gpt4o], "nextLink": f"{fake.base}{models_path('northcentralus')}2"},
            ),
        )
        fake.on("GET", f"{models_path('northcentralus')}2", Answer(200, {"value": [mini]}))
        fake.on("GET", models_path("swedencentral"), Answer(200, {"value": [older, gpt4o, mini]}))
        fake.on(
            "GET",
            models_path("switzerlandwest"),
            Answer(
                200,
                {
                    "value": [
                        # Only a global deployment of gpt-4o, and gpt-4o for another kind.
                        model("gpt-4o", "2024-08-06", skus=("GlobalStandard",)),
                        model("gpt-4o", "2024-08-06", kind="AIServices"),
                        mini,
                    ]
                },
            ),
        )
        fake.on("GET", usages_path("eastus2"), Answer(200, {"value": [usage(30, 30)]}))
        fake.on(
            "GET",
            usages_path("northcentralus"),
            Answer(
                200,
                {
                    "value": [usage(50, 45), usage(99, 0, "OpenAI.Standard.gpt-4o-mini")],
                    "nextLink": f"{fake.base}{usages_path('northcentralus')}2",
                },
            ),
        )
        fake.on("GET", f"{usages_path('northcentralus')}2", Answer(200, {"value": []}))
        fake.on(
            "GET",
            usages_path("swedencentral"),
            Answer(200, {"value": [usage(150, 0), usage(200, 20, "OpenAI.Standard.gpt-4o-mini")]}),
        )
        fake.on(
            "GET",
            usages_path("switzerlandwest"),
            Answer(200, {"value": [usage(300, 0), usage(300, 0, "OpenAI.Standard.gpt-4o-mini")]}),
        )
        fake.on(
            "GET",
            f"{BASE}/deletedAccounts",
            Answer(
                200,
                {
                    "value": [
                        deleted_account(
                            SUB, "oai-llmops-dev-old123", "rg-llmops-dev-old123", "eastus2"
                        )
                    ]
                },
            ),
        )
        yield fake


def fake_pulumi(
    folder: Path, stack: str, *, out: str = "", err: str = "", status: int = 0, then: str = ""
) -> Path:
    """A ``pulumi`` executable in ``folder`` answering ``stack output region --stack <stack>``.

    It logs, per call, the folder it ran in, its arguments and the first line of
    its stdin (``folder/calls.log``); any other arguments fail. ``then`` is shell
    run before answering (e.g. ``exec sleep 10``). Returns the log's path.
    """
    folder.mkdir(exist_ok=True)
    log = folder / "calls.log"
    script = folder / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        "IFS= read -r line\n"
        f'printf \'%s|%s|%s\\n\' "$(pwd -P)" "$*" "$line" >> {shlex.quote(str(log))}\n'
        f'if [ "$*" != {shlex.quote(f"stack output region --stack {stack}")} ]; then\n'
        '  echo "error: unexpected arguments: $*" >&2; exit 3\n'
        "fi\n"
        f"{then}\n"
        f"printf '%s' {shlex.quote(out)}\n"
        f"printf '%s' {shlex.quote(err)} >&2\n"
        f"exit {status}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return log


def calls(log: Path) -> list[list[str]]:
    """The fake pulumi's calls: [folder, arguments, stdin's first line] each."""
    if not log.exists():
        return []
    return [line.split("|") for line in log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the real Pulumi.yaml and the stack file above, as stack ``test``.

    The pulumi CLI on PATH is a fake that has never heard of stack ``test``, so no real
    CLI (and no real backend) decides what these tests see.
    """
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.test.yaml").write_text(STACK_FILE, encoding="utf-8")
    monkeypatch.setattr(preflight, "PROJECT_DIR", tmp_path)
    fake_pulumi(tmp_path / "bin", "test", err="error: no stack named 'test' found\n", status=255)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "Pulumi.test.yaml"


@pytest.fixture
def dev(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The same stack file as stack ``dev``, with a fresh fake pulumi folder first on PATH."""
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_FILE, encoding="utf-8")
    monkeypatch.setenv("PATH", f"{tmp_path / 'dev-bin'}{os.pathsep}{os.environ['PATH']}")
    return stack_file


def run(*args: str) -> int:
    return main(["preflight", "--subscription", SUB, *args])


def rows(out: str) -> dict[tuple[str, str], list[str]]:
    """The table's rows by (region, model): the remaining cells."""
    found = {}
    table = out.split("\n\n")[0]
    for line in table.splitlines():
        cells = line.replace(" (pinned)", "").split()
        if cells[:1] and cells[0] in REGIONS:
            found[(cells[0], cells[1])] = cells[2:]
    return found


def test_each_region_shows_offer_quota_and_soft_deleted_accounts(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run() == 0, "swedencentral fits, so the draw can succeed"
    out = capsys.readouterr().out
    #                     version      offered limit used free needs fits deleted
    old = "oai-llmops-dev-old123"
    assert rows(out) == {
        ("eastus2", "gpt-4o"): ["2024-08-06", "yes", "30", "30", "0", "10", "no", old],
        ("northcentralus", "gpt-4o"): ["2024-08-06", "yes", "50", "45", "5", "10", "no", "-"],
        ("swedencentral", "gpt-4o"): ["2024-08-06", "yes", "150", "0", "150", "10", "yes", "-"],
        ("switzerlandwest", "gpt-4o"): ["-", "no", "300", "0", "300", "10", "no", "-"],
    }  # fmt: skip
    assert (
        "switzerlandwest does not offer gpt-4o (its default version) with the Standard SKU" in out
    )
    assert "northcentralus has 5 free for gpt-4o, llmops:capacity needs 10" in out
    assert "python -m llmops_infra preflight --stack dev --pin" in out
    assert (
        "az cognitiveservices account purge --name oai-llmops-dev-old123 "
        "--resource-group rg-llmops-dev-old123 --location eastus2"
    ) in out
    for call in azure.requests:
        assert call.query.get("api-version") == ["2025-09-01"], call.path
        assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert len(azure.calls("GET", f"{usages_path('northcentralus')}2")) == 1, "nextLink"
    assert len(azure.calls("GET", f"{models_path('northcentralus')}2")) == 1, "nextLink"


def test_a_region_without_the_model_never_fits_even_with_quota(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--config", "llmops:region=switzerlandwest") == 1
    out = capsys.readouterr().out
    assert "DOES NOT FIT: the stack's deployments do not fit in switzerlandwest:" in out
    assert "switzerlandwest does not offer gpt-4o" in out
    assert "pulumi config set llmops:region swedencentral" in out
    assert "ask for less" not in out, "quota is not what is missing"


def test_a_pinned_region_without_quota_fails_with_what_to_do(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--config", "llmops:region=eastus2") == 1
    out = capsys.readouterr().out
    assert "eastus2 has 0 free for gpt-4o, llmops:capacity needs 10" in out
    assert "pulumi config set llmops:region swedencentral" in out
    assert "az cognitiveservices account purge --name oai-llmops-dev-old123" in out


def test_a_pinned_region_that_fits_passes(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--config", "llmops:region=swedencentral") == 0
    assert "OK: every deployment fits in every region the stack can use." in capsys.readouterr().out


def test_no_allowed_region_fits(azure: FakeArm, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--config", "llmops:capacity=200") == 1
    out = capsys.readouterr().out
    assert "do not fit in any allowed region" in out
    # 150 are free, but the guardrails refuse more than 50 a deployment: never advised.
    assert "\n  ask for less: pulumi config set llmops:capacity 50\n" in out
    assert "\n  or request more quota: " in out, "the first remedy has no dangling 'or'"


def test_a_pinned_version_must_be_offered_in_the_region(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--config", "llmops:modelVersion=2024-05-13") == 0
    table = rows(capsys.readouterr().out)
    assert table[("swedencentral", "gpt-4o")][:2] == ["2024-05-13", "yes"]
    assert table[("eastus2", "gpt-4o")][:2] == ["2024-05-13", "no"], "only 2024-08-06 there"
    assert table[("northcentralus", "gpt-4o")][1] == "no"


def test_two_models_each_need_their_offer_and_quota(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--config", "llmops:judgeModel=gpt-4o-mini", "--config", "llmops:judgeCapacity=100")
    assert run(*args, "--config", "llmops:capacity=5") == 0
    out = capsys.readouterr().out
    table = rows(out)
    assert table[("eastus2", "gpt-4o-mini")][:2] == ["-", "no"], "eastus2 lacks the judge model"
    assert table[("northcentralus", "gpt-4o")][-2] == "yes", "5 of 5 free"
    assert table[("northcentralus", "gpt-4o-mini")][2:7] == ["99", "0", "99", "100", "no"]
    assert table[("swedencentral", "gpt-4o-mini")][2:7] == ["200", "20", "180", "100", "yes"]
    assert "eastus2 does not offer gpt-4o-mini" in out
    assert "northcentralus has 99 free for gpt-4o-mini, llmops:judgeCapacity needs 100" in out
    assert run(*args, "--config", "llmops:region=northcentralus") == 1


def test_one_model_twice_adds_both_capacities_against_one_quota(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--config", "llmops:deploymentName=chat", "--config", "llmops:judgeModel=gpt-4o")
    assert run(*args, "--config", "llmops:capacity=100", "--config", "llmops:judgeCapacity=50") == 0
    table = rows(capsys.readouterr().out)
    assert table[("swedencentral", "gpt-4o")][5:7] == ["150", "yes"], "100 + 50 of 150 free"
    assert ("swedencentral", "gpt-4o-mini") not in table
    assert run(*args, "--config", "llmops:capacity=100", "--config", "llmops:judgeCapacity=51") == 1
    out = capsys.readouterr().out
    assert rows(out)[("swedencentral", "gpt-4o")][5:7] == ["151", "no"]
    assert (
        "swedencentral has 150 free for gpt-4o, llmops:capacity + llmops:judgeCapacity need 151"
        in out
    )
    # 150 free, but two deployments of at most 50 each (the guardrails' cap).
    assert "llmops:capacity + llmops:judgeCapacity at most 100 (gpt-4o shares one quota)" in out


def test_pin_draws_only_among_fitting_regions_and_writes_only_the_region(
    azure: FakeArm, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # capacity 5 (the stack file): northcentralus and swedencentral fit, the others do not.
    drawn = set()
    for _ in range(20):
        project.write_text(STACK_FILE, encoding="utf-8")
        assert main(["preflight", "--stack", "test", "--pin"]) == 0
        text = project.read_text(encoding="utf-8")
        [line] = [line for line in text.splitlines() if line.startswith("  llmops:region: ")]
        region = line.split()[-1]
        drawn.add(region)
        # Exactly one line more, where `pulumi config set` puts it (keys sorted).
        expected = STACK_FILE.replace(
            "  llmops:tags:\n", f"  llmops:region: {region}\n  llmops:tags:\n"
        )
        assert text == expected
    assert drawn == {"northcentralus", "swedencentral"}, "random, and only where it fits"
    assert "Pinned llmops:region:" in capsys.readouterr().out
    assert azure.calls("GET", f"{BASE}/deletedAccounts"), "it did ask Azure"


def test_pin_then_preflight_reads_the_pinned_region(
    azure: FakeArm, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preflight", "--stack", "test", "--pin"]) == 0
    capsys.readouterr()
    assert main(["preflight", "--stack", "test"]) == 0
    assert "(pinned)" in capsys.readouterr().out


def test_pin_exits_1_writing_nothing_when_no_region_fits(
    azure: FakeArm, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preflight", "--stack", "test", "--pin", "--config", "llmops:capacity=500"]) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out
    assert project.read_text(encoding="utf-8") == STACK_FILE


def test_pin_exits_2_writing_nothing_when_the_region_is_already_set(
    azure: FakeArm, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned = STACK_FILE + "  llmops:region: eastus2\n"
    project.write_text(pinned, encoding="utf-8")
    assert main(["preflight", "--stack", "test", "--pin"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: llmops:region is already eastus2; --pin writes nothing")
    assert len(captured.err.strip().splitlines()) == 1
    assert project.read_text(encoding="utf-8") == pinned
    assert azure.requests == [], "nothing asked either"


def test_pin_refuses_a_deployed_stack_keeping_its_region(
    azure: FakeArm, dev: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = fake_pulumi(tmp_path / "dev-bin", "dev", out="swedencentral\n")
    assert main(["preflight", "--stack", "dev", "--pin"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "no table: nothing was drawn"
    assert captured.err == (
        "error: stack dev is deployed in swedencentral; --pin writes nothing, as a new region "
        "would replace every resource. Keep it: `pulumi config set llmops:region swedencentral`\n"
    )
    assert dev.read_text(encoding="utf-8") == STACK_FILE, "the stack file is left as it was"
    assert azure.requests == [], "Azure is not asked for a draw that will not happen"
    assert calls(log) == [[str(tmp_path.resolve()), "stack output region --stack dev", ""]], (
        "pulumi is asked once, in the project folder, with no stdin"
    )


@pytest.mark.parametrize(
    "answer",
    [
        "error: no stack named 'dev' found",  # never `pulumi stack init`-ed in this backend
        "error: current stack does not have output property 'region'",  # new, or destroyed
    ],
)
def test_pin_draws_when_pulumi_says_the_stack_is_not_deployed(
    azure: FakeArm, dev: Path, tmp_path: Path, answer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log = fake_pulumi(tmp_path / "dev-bin", "dev", err=f"{answer}\n", status=255)
    assert main(["preflight", "--stack", "dev", "--pin"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "", "nothing to say when the stack is simply not deployed"
    assert "Pinned llmops:region:" in captured.out
    [line] = [line for line in dev.read_text(encoding="utf-8").splitlines() if "region:" in line]
    assert line.split()[-1] in {"northcentralus", "swedencentral"}, "drawn among those that fit"
    assert len(calls(log)) == 1


def test_pin_draws_with_a_note_when_the_pulumi_cli_is_not_installed(
    azure: FakeArm,
    dev: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert shutil.which("pulumi") is None
    assert main(["preflight", "--stack", "dev", "--pin"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        "note: the pulumi CLI is not on PATH: whether stack dev is already deployed was not "
        "checked\n"
    )
    assert "Pinned llmops:region:" in captured.out
    assert "  llmops:region: " in dev.read_text(encoding="utf-8")


def test_pin_refuses_when_pulumi_cannot_tell_whether_the_stack_is_deployed(
    azure: FakeArm, dev: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_pulumi(
        tmp_path / "dev-bin",
        "dev",
        err="warning: A new version of Pulumi is available.\n"
        "error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
        "PULUMI_CONFIG_PASSPHRASE_FILE environment variables\n",
        status=255,
    )
    assert main(["preflight", "--stack", "dev", "--pin"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        "error: cannot tell whether stack dev is deployed: `pulumi stack output region --stack "
        "dev` failed (error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
    ), captured.err
    assert "`pulumi config set llmops:region <region>`" in captured.err
    assert len(captured.err.splitlines()) == 1
    assert dev.read_text(encoding="utf-8") == STACK_FILE
    assert azure.requests == []


def test_pin_refuses_when_pulumi_does_not_answer_in_time(
    azure: FakeArm,
    dev: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_pulumi(tmp_path / "dev-bin", "dev", out="swedencentral\n", then="exec sleep 30")
    monkeypatch.setattr(preflight, "PULUMI_TIMEOUT", 1)
    assert main(["preflight", "--stack", "dev", "--pin"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: cannot tell whether stack dev is deployed: `pulumi stack output region --stack "
        "dev` did not answer in 1 s; --pin writes nothing."
    ), err
    assert dev.read_text(encoding="utf-8") == STACK_FILE


def test_the_command_refuses_to_pin_a_deployed_stack(tmp_path: Path) -> None:
    """As a user runs it: the real project folder and dev stack file, a pulumi on PATH."""
    log = fake_pulumi(tmp_path / "bin", "dev", out="swedencentral\n")
    stack_file = PROJECT_DIR / "Pulumi.dev.yaml"
    before = stack_file.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ARM_"))}
    env.update(
        PATH=f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(PROJECT_DIR),  # run from elsewhere: pulumi must still run in the project
        # Nothing listens there: were the draw to go on, it would stop at Azure, never write.
        **{ARM_ENDPOINT_ENV: "http://127.0.0.1:9", ARM_TOKEN_ENV: TOKEN},
    )
    done = subprocess.run(
        [sys.executable, "-m", "llmops_infra", "preflight", "--stack", "dev", "--pin"],
        cwd=tmp_path,
        env=env,
        input="y\n",  # were it passed on, the fake would read it
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        "error: stack dev is deployed in swedencentral; --pin writes nothing, as a new region "
        "would replace every resource. Keep it: `pulumi config set llmops:region swedencentral`\n"
    )
    assert stack_file.read_bytes() == before, "Pulumi.dev.yaml unchanged, byte for byte"
    assert calls(log) == [[str(PROJECT_DIR.resolve()), "stack output region --stack dev", ""]]


def test_pin_keeps_the_shipped_dev_stack_file_as_it_is(azure: FakeArm, project: Path) -> None:
    shipped = (PROJECT_DIR / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    project.write_text(shipped, encoding="utf-8")
    assert run("--stack", "test", "--pin") == 0
    assert project.read_text(encoding="utf-8") == shipped.replace(
        "config:\n", "config:\n  llmops:region: swedencentral\n"
    ), "sorted before llmops:tags, nothing else touched"


def test_pin_adds_a_config_block_to_a_stack_file_without_one(azure: FakeArm, project: Path) -> None:
    project.write_text("# just a comment\n", encoding="utf-8")
    assert run("--stack", "test", "--pin") == 0
    text = project.read_text(encoding="utf-8")
    assert text.startswith("# just a comment\nconfig:\n  llmops:region: ")
    assert text.split()[-1] == "swedencentral", "capacity 10: only swedencentral fits"


def test_unreachable_azure_is_one_line_and_exit_2(
    azure: FakeArm, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ARM_ENDPOINT_ENV, "http://127.0.0.1:9")  # discard port: refused
    assert run() == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith(
        "error: cannot reach Azure Resource Manager at http://127.0.0.1:9"
    )


def test_refused_read_names_the_role_in_one_line(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    azure.on(
        "GET",
        f"{BASE}/deletedAccounts",
        Answer(403, {"error": {"code": "AuthorizationFailed", "message": "no\nway"}}),
    )
    assert run() == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: cannot list the soft-deleted accounts: HTTP 403 AuthorizationFailed: no "
    )
    assert "Cognitive Services Usages Reader" in err
    assert len(err.strip().splitlines()) == 1 and TOKEN not in err


def test_throttled_lists_are_retried_after_retry_after(azure: FakeArm) -> None:
    azure.on(
        "GET",
        f"{BASE}/deletedAccounts",
        Answer(429, headers={"Retry-After": "1"}),
        Answer(200, {"value": []}),
    )
    with ArmSession(SUB) as session:
        assert session.deleted_accounts() == []
    assert len(azure.calls("GET", f"{BASE}/deletedAccounts")) == 2
    waits = [c.args[1] for c in RequestsTransport.sleep.call_args_list]  # type: ignore[attr-defined]
    assert waits == [1]


def test_the_token_scope_follows_the_endpoint(azure: FakeArm) -> None:
    assert credential_scopes("https://management.azure.com") == [
        "https://management.azure.com/.default"
    ]
    assert credential_scopes("https://management.usgovcloudapi.net/") == [
        "https://management.core.usgovcloudapi.net/.default"
    ], "the SDK's own scope for a known sovereign cloud"
    assert credential_scopes("https://arm.example.test") == ["https://arm.example.test/.default"]
    fake = FakeCredential()
    with ArmSession(SUB, fake) as session:
        session.deleted_accounts()
    assert fake.scopes == [(f"{azure.base}/.default",)]


def test_plain_http_only_reaches_loopback() -> None:
    assert arm_endpoint({ARM_ENDPOINT_ENV: "http://localhost:8080/"}) == "http://localhost:8080"
    assert arm_endpoint({}) == "https://management.azure.com"
    with pytest.raises(ArmUnavailable, match="plain http only for a local fake"):
        arm_endpoint({ARM_ENDPOINT_ENV: "http://arm.example.test"})


def test_subscription_comes_from_flag_then_environment_then_stack() -> None:
    stack = {"azure-native:subscriptionId": "from-stack"}
    assert find_subscription("flag", {"AZURE_SUBSCRIPTION_ID": "env"}, stack) == "flag"
    assert find_subscription(None, {"ARM_SUBSCRIPTION_ID": "arm"}, stack) == "arm"
    assert find_subscription(None, {}, stack) == "from-stack"


def test_help_is_registered() -> None:
    assert build_parser().parse_args(["preflight", "--pin"]).pin is True
    assert "preflight" in build_parser().format_help()


def test_the_command_reads_endpoint_and_token_from_the_environment(azure: FakeArm) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ARM_"))}
    env.update({ARM_ENDPOINT_ENV: azure.base, ARM_TOKEN_ENV: TOKEN})
    done = subprocess.run(
        [sys.executable, "-m", "llmops_infra", "preflight", "--subscription", SUB],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert rows(done.stdout)[("swedencentral", "gpt-4o")][-2] == "yes"
    assert TOKEN not in done.stdout + done.stderr
    assert {c.headers["authorization"] for c in azure.requests} == {f"Bearer {TOKEN}"}


def test_without_credentials_the_command_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AZURE_", "ARM_", "PULUMI_", "IDENTITY_", "MSI_", "LLMOPS_"))
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
    assert done.stderr.startswith("error: no usable Azure credentials"), done.stderr


@pytest.fixture
def every_cell_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feature table as if every cell of the lab's regions had been read: what it does
    not list as offered is then lacking, not unconfirmed."""
    read = {feature: frozenset(REGIONS) for feature in region_features.FEATURE_LABELS}
    monkeypatch.setattr(region_features, "READ_CELLS", read)


@pytest.mark.usefixtures("every_cell_read")
def test_a_region_without_the_databricks_features_the_options_use_does_not_fit(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    # swedencentral fits the model and quota, but the table records no Model Serving there.
    assert run("--config", "llmops:region=swedencentral", "--config", "llmops:gateway=true") == 1
    out = capsys.readouterr().out
    assert "DOES NOT FIT" in out
    assert (
        "swedencentral does not offer Model Serving, external models on Azure Databricks, "
        "which llmops:gateway=true needs"
    ) in out


@pytest.fixture
def only_sweden_runs_serverless(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feature table as if swedencentral alone offered serverless jobs."""
    table = {region: frozenset({"system_tables"}) for region in REGIONS}
    table["swedencentral"] = frozenset({"system_tables", "serverless_jobs"})
    monkeypatch.setattr(region_features, "REGION_FEATURES", table)


@pytest.mark.usefixtures("only_sweden_runs_serverless", "every_cell_read")
def test_pin_draws_only_where_the_options_databricks_features_are_offered(
    azure: FakeArm, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # capacity 5 (the stack file): northcentralus and swedencentral fit the model's quota;
    # only swedencentral also runs serverless jobs.
    for _ in range(8):
        project.write_text(STACK_FILE, encoding="utf-8")
        args = ["preflight", "--stack", "test", "--pin", "--config", "llmops:compute=serverless"]
        assert main(args) == 0
        assert "  llmops:region: swedencentral\n" in project.read_text(encoding="utf-8")
    out = capsys.readouterr().out
    assert "eastus2 lacks serverless jobs; northcentralus lacks serverless jobs;" in out
    assert "drawn among swedencentral." in out


@pytest.mark.usefixtures("every_cell_read")
def test_pin_exits_1_writing_nothing_when_no_region_offers_the_options_features(
    azure: FakeArm, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["preflight", "--stack", "test", "--pin", "--config", "llmops:gateway=true"]
    assert main(args) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out
    assert project.read_text(encoding="utf-8") == STACK_FILE


def test_a_cell_nobody_read_is_said_and_not_held_against_the_region(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    # The table as shipped: AI Guardrails (pay-per-token) were not read for any region.
    args = ["--config", "llmops:region=swedencentral", "--config", "llmops:gateway=true"]
    assert run(*args, "--config", "llmops:gatewayGuardrails=true") == 0
    out = capsys.readouterr().out
    assert "DOES NOT FIT" not in out
    unsure = next(line for line in out.splitlines() if line.startswith("Not confirmed"))
    assert "swedencentral (Model Serving, external models, AI Guardrails)" in unsure
    assert "feature-region-support" in unsure


def test_unpinned_the_draw_never_lands_where_a_databricks_feature_is_lacking(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    # The table as shipped: switzerlandwest lacks serverless jobs, so the program's draw
    # leaves it out; of the others, eastus2 is the one short of quota.
    assert run("--config", "llmops:compute=serverless") == 0
    out = capsys.readouterr().out
    advice = out.split("the random draw may still land where it does not:\n")[1]
    assert advice.startswith("  eastus2 has 0 free for gpt-4o"), advice
    assert "switzerlandwest" not in advice, "never drawn: not among the draw's risks"
    assert "switzerlandwest lacks serverless jobs" in out, "still named below the table"


def test_unpinned_with_no_region_offering_the_options_nothing_fits(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    # The program stops before anything when no allowed region can be drawn.
    args = ["--config", "llmops:compute=serverless"]
    assert run(*args, "--config", 'llmops:allowedRegions=["switzerlandwest"]') == 1
    out = capsys.readouterr().out
    assert "DOES NOT FIT: the stack's deployments do not fit in any allowed region:" in out
    assert "switzerlandwest does not offer serverless jobs on Azure Databricks" in out


def test_no_subscription_names_every_way_to_give_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no Azure CLI to ask
    assert main(["preflight"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    for way in ("--subscription", "AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID"):
        assert way in line
    assert "azure-native:subscriptionId" in line and "az login" in line


# --- an existing workspace (llmops:workspaceResourceId) -----------------------------------------

WORKSPACE_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/"
    "Microsoft.Databricks/workspaces/dbw-data"
)


def _workspace_in(fake: FakeArm, location: str) -> None:
    """The workspace as ARM's GET answers it (Microsoft.Databricks/workspaces, 2024-05-01)."""
    fake.on(
        "GET",
        WORKSPACE_ID,
        Answer(
            200,
            {
                "id": WORKSPACE_ID,
                "name": "dbw-data",
                "type": "Microsoft.Databricks/workspaces",
                "location": location,
                "sku": {"name": "premium"},
                "properties": {"workspaceUrl": "adb-1234567890123456.16.azuredatabricks.net"},
            },
        ),
    )


def test_with_an_existing_workspace_only_its_region_is_checked_and_said(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    _workspace_in(azure, "Sweden Central")  # ARM's display name, as some answers carry it
    assert run("--config", f"llmops:workspaceResourceId={WORKSPACE_ID}") == 0
    out = capsys.readouterr().out
    assert "the stack deploys to the existing workspace's region, swedencentral; only " in out
    table = out.split("\n\n")[0]
    regions = {line.split()[0] for line in table.splitlines() if line.split()[0] in REGIONS}
    assert regions == {"swedencentral"}, "no other region is checked"
    assert "swedencentral (the workspace's)" in table
    (lookup,) = azure.calls("GET", WORKSPACE_ID)
    assert lookup.query["api-version"] == ["2024-05-01"]
    assert lookup.headers["authorization"] == f"Bearer {TOKEN}"
    for other in ("eastus2", "northcentralus", "switzerlandwest"):
        assert azure.calls("GET", models_path(other)) == [], f"{other} is not asked about"


def test_an_existing_workspace_in_a_full_region_does_not_fit(
    azure: FakeArm, capsys: pytest.CaptureFixture[str]
) -> None:
    _workspace_in(azure, "eastus2")
    assert run("--config", f"llmops:workspaceResourceId={WORKSPACE_ID}") == 1
    out = capsys.readouterr().out
    assert "eastus2 has 0 free for gpt-4o, llmops:capacity needs 10" in out
    assert "pulumi config set llmops:region" not in out, "the region is the workspace's"


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            Answer(404, {"error": {"code": "ResourceNotFound", "message": "not found"}}),
            "no such workspace (ResourceNotFound)",
        ),
        (
            Answer(403, {"error": {"code": "AuthorizationFailed", "message": "no"}}),
            "the identity may not read the workspace (AuthorizationFailed): it needs at least "
            "Reader on it",
        ),
        (
            Answer(200, {"id": WORKSPACE_ID, "location": "westeurope"}),
            "is in westeurope, which llmops:allowedRegions",
        ),
    ],
    ids=["missing", "not-readable", "region-not-allowed"],
)
def test_an_existing_workspace_preflight_cannot_check_with_exits_2_in_one_line(
    azure: FakeArm, capsys: pytest.CaptureFixture[str], answer: Answer, says: str
) -> None:
    azure.on("GET", WORKSPACE_ID, answer)
    assert run("--config", f"llmops:workspaceResourceId={WORKSPACE_ID}") == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: llmops:workspaceResourceId = '{WORKSPACE_ID}'")
    assert says in captured.err and len(captured.err.strip().splitlines()) == 1
    assert azure.calls("GET", models_path("swedencentral")) == [], "no quota asked"


def test_pin_refuses_a_stack_on_an_existing_workspace(
    azure: FakeArm, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = f"llmops:workspaceResourceId={WORKSPACE_ID}"
    assert main(["preflight", "--stack", "test", "--pin", "--config", config]) == 2
    assert "nothing to draw or pin" in capsys.readouterr().err
    assert project.read_text(encoding="utf-8") == STACK_FILE
    assert azure.requests == []
