"""The GitHub workflows, read from ``.github/workflows`` and run here as far as this machine can.

GitHub runs a ``run:`` step as ``bash --noprofile --norc -eo pipefail FILE`` after putting the
values of its ``${{ }}`` expressions into the text, with the job's and the step's ``env:`` and
the runner's own variables. :class:`Runner` does the same, with made-up repository variables
and secrets. Only what this machine cannot do is stood in for: ``python3 tasks.py`` skips its
install (the virtualenv running these tests is the one it makes), ``pulumi`` is a fake that
records each call and fails where the real CLI fails first (a ``file://`` backend whose
folder does not exist, a stack made without its passphrase) and answers ``stack output`` with
the outputs a test gives it, and ``uses:`` steps (GitHub's actions) are not run. A step's
``if:`` is evaluated as GitHub does, for the comparisons the workflows use. The release
steps' ``workload`` commands run for real, against the fake Azure OpenAI (tests/), with a
local sqlite MLflow store standing in for the workspace's tracking server and Unity Catalog.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from packaging.requirements import Requirement

from llmops_infra.azure_api import credentials

ROOT: Final = Path(__file__).resolve().parent.parent
WORKFLOWS: Final = ROOT / ".github" / "workflows"
#: How long one step may take here (the plan step is the slow one: seconds).
STEP_TIMEOUT: Final = 300.0

#: The repository's variables and secrets, as docs/ci.md describes them (made up).
VARS: Final = {
    "AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    "AZURE_TENANT_ID": "22222222-2222-2222-2222-222222222222",
    "AZURE_SUBSCRIPTION_ID": "33333333-3333-3333-3333-333333333333",
    "LLMOPS_SERVICE_CREDENTIAL": "llmops-ci-credential",
    "LLMOPS_ACCESS_CONNECTOR_ID": (
        "/subscriptions/33333333-3333-3333-3333-333333333333/resourceGroups/llmops-admin"
        "/providers/Microsoft.Databricks/accessConnectors/llmops-ci"
    ),
}
SECRETS: Final = {"PULUMI_CONFIG_PASSPHRASE": "ci-passphrase"}

#: The real CLI's first error on a ``file://`` backend whose folder is missing (pulumi/pulumi
#: issues 15841 and 24316), and on a passphrase-protected stack without a passphrase.
_FAKE_PULUMI: Final = """#!{python}
import json, os, sys, urllib.parse
args = sys.argv[1:]
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps({{"args": args,
                          "passphrase": bool(os.environ.get("PULUMI_CONFIG_PASSPHRASE"))}}) + "\\n")
if args[:1] == ["login"] and args[1].startswith("file://"):
    folder = urllib.parse.urlsplit(args[1]).path
    if not os.path.isdir(folder):
        sys.exit(f"error: problem logging in: unable to open bucket {{args[1]}}?no_tmp_dir=true: "
                 f"stat {{folder}}: no such file or directory")
if args[:2] == ["stack", "init"] and not os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
    sys.exit("error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
             "PULUMI_CONFIG_PASSPHRASE_FILE environment variables")
if args[:2] == ["stack", "output"]:
    if not os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
        sys.exit("error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
                 "PULUMI_CONFIG_PASSPHRASE_FILE environment variables")
    with open(os.environ["FAKE_PULUMI_OUTPUTS"]) as outputs:
        print(outputs.read())
"""

#: ``python3 tasks.py TASK ARGS`` as tasks.py runs it, less its install; records ARGS.
_PYTHON3: Final = """#!/bin/sh
if [ "$1" = tasks.py ]; then
  shift
  printf '%s\\n' "$@" > "$FAKE_TASKS_LOG"
  exec "{python}" -c 'import sys, pathlib, tasks
tasks._install = lambda requirements: None
tasks.PYTHON = pathlib.Path(sys.executable)
sys.exit(tasks.main(sys.argv[1:]))' "$@"
fi
exec "{python}" "$@"
"""

_EXPRESSION: Final = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_OPERAND: Final = re.compile(
    r"\s*(?:'(?P<literal>[^']*)'|(?P<path>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*))\s*"
)


def evaluate(expression: str, contexts: Mapping[str, Any]) -> str:
    """``a || b || 'literal'`` over the contexts, as GitHub evaluates it (a missing value is '').

    Anything else is not understood here, and says so: the test then needs teaching, not
    a guess.
    """
    for operand in expression.split("||"):
        match = _OPERAND.fullmatch(operand)
        if match is None:
            raise ValueError(f"this test cannot evaluate ${{{{{expression}}}}}")
        if match["literal"] is not None:
            value: Any = match["literal"]
        else:
            name, *parts = match["path"].split(".")
            if name not in contexts:
                raise ValueError(f"this test has no context {name!r} (in ${{{{{expression}}}}})")
            value = contexts[name]
            for part in parts:
                value = value.get(part, "") if isinstance(value, Mapping) else ""
        if value:
            return str(value)
    return ""


_COMPARISON: Final = re.compile(r"(?P<left>.+?)(?P<op>==|!=)(?P<right>.+)", re.DOTALL)


def condition(expression: str, contexts: Mapping[str, Any]) -> bool:
    """A step's ``if:``: ``A == B`` and ``A != B`` joined by ``&&``, as GitHub evaluates them
    (strings compared case-insensitively; a missing value is ''). Anything else says so."""
    results = []
    for part in expression.split("&&"):
        match = _COMPARISON.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"this test cannot evaluate if: {expression}")
        left = evaluate(match["left"], contexts).casefold()
        right = evaluate(match["right"], contexts).casefold()
        results.append((left == right) == (match["op"] == "=="))
    return all(results)


def substitute(text: str, contexts: Mapping[str, Any]) -> str:
    """The text with each ``${{ ... }}`` replaced by its value."""
    return _EXPRESSION.sub(lambda m: evaluate(m[1], contexts), text)


def workflow(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _is_plan(step: Mapping[str, Any]) -> bool:
    return "tasks.py plan" in step.get("run", "")


def _is_stack(step: Mapping[str, Any]) -> bool:
    return step.get("id") == "stack"


def _uses(action: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda step: str(step.get("uses", "")).startswith(f"{action}@")


def _has_id(step_id: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda step: step.get("id") == step_id


def _runs(command: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda step: command in step.get("run", "")


def one(steps: Sequence[Mapping[str, Any]], which: Callable[[Mapping[str, Any]], bool]) -> int:
    """The index of the one step that ``which`` picks."""
    found = [i for i, step in enumerate(steps) if which(step)]
    assert len(found) == 1, f"expected one such step, found {len(found)}"
    return found[0]


class Runner:
    """One job of a workflow on a runner of this machine: its ``run:`` steps, in order."""

    def __init__(
        self,
        name: str,
        job: str,
        inputs: Mapping[str, str],
        tmp: Path,
        *,
        ref: str = "refs/heads/main",
        variables: Mapping[str, str] = VARS,
        stand_ins: Mapping[str, str] | None = None,
    ) -> None:
        """``stand_ins``: variables that replace, in every step, what this machine lacks."""
        self.job = workflow(name)["jobs"][job]
        self.steps: list[dict[str, Any]] = self.job["steps"]
        self.contexts: dict[str, Any] = {
            "github": {
                "run_id": "4242",
                "run_attempt": "1",
                "event_name": "workflow_dispatch",
                "ref": ref,
            },
            "inputs": dict(inputs),
            "vars": dict(variables),
            "secrets": SECRETS,
            "steps": {},
        }
        self.stand_ins = dict(stand_ins or {})
        self.temp = tmp / "runner-temp"
        self.temp.mkdir()
        fakes = tmp / "bin"
        fakes.mkdir()
        for tool, text in (("pulumi", _FAKE_PULUMI), ("python3", _PYTHON3)):
            (fakes / tool).write_text(text.format(python=sys.executable))
            (fakes / tool).chmod(0o755)
        self.log = tmp / "pulumi-calls.jsonl"
        self.tasks_log = tmp / "tasks-args.txt"
        self.output = tmp / "github-output"
        self.summary = tmp / "step-summary.md"
        self.summary.write_text("")
        self.outputs_file = tmp / "stack-outputs.json"
        self.base = {
            "PATH": f"{fakes}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "HOME": str(tmp),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(ROOT),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(self.output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_REF": ref,
            "GITHUB_REF_NAME": ref.removeprefix("refs/heads/"),
            "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
            "GITHUB_RUN_ID": "4242",
            "FAKE_PULUMI_LOG": str(self.log),
            "FAKE_PULUMI_OUTPUTS": str(self.outputs_file),
            "FAKE_TASKS_LOG": str(self.tasks_log),
        }
        if self.job.get("permissions", {}).get("id-token") == "write":
            # What GitHub gives a job that may ask for an OIDC token (nothing asks here).
            self.base["ACTIONS_ID_TOKEN_REQUEST_URL"] = "https://runner.invalid/idtoken?v=2"
            self.base["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "runner-bearer"

    def env(self, step: Mapping[str, Any]) -> dict[str, str]:
        """The step's environment: the runner's, the job's ``env:``, then the step's own."""
        values = dict(self.base)
        for scope in (self.job.get("env", {}), step.get("env", {})):
            values.update({k: substitute(str(v), self.contexts) for k, v in scope.items()})
        return values | self.stand_ins

    def run(self, index: int) -> subprocess.CompletedProcess[str]:
        """Step ``index``'s script, as GitHub's default shell runs it; its outputs kept."""
        step = self.steps[index]
        script = self.temp / f"step-{index}.sh"
        script.write_text(substitute(step["run"], self.contexts))
        self.output.write_text("")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=ROOT,
            env=self.env(step),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        if "id" in step:
            lines = self.output.read_text().splitlines()
            outputs = dict(line.split("=", 1) for line in lines if "=" in line)
            outcome = "success" if done.returncode == 0 else "failure"
            self.contexts["steps"][step["id"]] = {"outputs": outputs, "outcome": outcome}
        return done

    def skipped(self, index: int) -> bool:
        """Whether GitHub skips step ``index``: its ``if:`` is false (recorded as skipped)."""
        step = self.steps[index]
        if "if" not in step or condition(str(step["if"]), self.contexts):
            return False
        if "id" in step:
            self.contexts["steps"][step["id"]] = {"outputs": {}, "outcome": "skipped"}
        return True

    def run_steps(self, indices: Sequence[int]) -> dict[int, subprocess.CompletedProcess[str]]:
        """The ``run:`` steps ``indices`` in order, bar those their ``if:`` skips; stops at
        a failure."""
        done: dict[int, subprocess.CompletedProcess[str]] = {}
        for index in indices:
            if "run" not in self.steps[index] or self.skipped(index):
                continue
            done[index] = self.run(index)
            if done[index].returncode != 0:
                break
        return done

    def run_through(
        self,
        last: Callable[[Mapping[str, Any]], bool],
        skip: Callable[[Mapping[str, Any]], bool] = lambda step: False,
    ) -> dict[int, subprocess.CompletedProcess[str]]:
        """Every ``run:`` step up to ``last`` (included), bar ``skip``; stops at a failure."""
        done: dict[int, subprocess.CompletedProcess[str]] = {}
        for index in range(one(self.steps, last) + 1):
            step = self.steps[index]
            if "run" not in step or skip(step):
                continue
            done[index] = self.run(index)
            if done[index].returncode != 0:
                break
        return done

    def pulumi_calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def _failed(done: Mapping[int, subprocess.CompletedProcess[str]], runner: Runner) -> str:
    return "\n".join(
        f"step {runner.steps[i].get('name', i)!r} exited {d.returncode}: {d.stderr[-2000:]}"
        for i, d in done.items()
        if d.returncode != 0
    )


def _deploy(mode: str, tmp: Path) -> Runner:
    return Runner("deploy.yml", "deploy", {"auth-mode": mode}, tmp)


def _configured(runner: Runner) -> dict[str, str]:
    """What the stack step set with ``pulumi config set --stack ...``."""
    found: dict[str, str] = {}
    for call in runner.pulumi_calls():
        args = call["args"]
        if args[:2] == ["config", "set"]:
            rest = list(args[2:])
            if "--stack" in rest:
                at = rest.index("--stack")
                del rest[at : at + 2]
            key, value = rest
            found[key] = value
    return found


@pytest.mark.parametrize("mode", ["key", "entra"])
def test_the_deploy_job_runs_here_through_its_stack_with_the_plan_up_gets(
    mode: str, tmp_path: Path
) -> None:
    """Every ``run:`` step up to the throwaway stack, with the job's variables: the offline
    plan passes, and it planned the configuration the stack is given for ``up``."""
    runner = _deploy(mode, tmp_path)
    done = runner.run_through(_is_stack)
    assert not _failed(done, runner), _failed(done, runner)
    plan = done[one(runner.steps, _is_plan)]
    assert "Plan for stack" in plan.stdout
    planned_args = runner.tasks_log.read_text().splitlines()
    assert planned_args[0] == "plan"
    pairs = planned_args[1:]
    assert pairs[0::2] == ["--config"] * (len(pairs) // 2), pairs
    planned = dict(pair.split("=", 1) for pair in pairs[1::2])
    assert planned == _configured(runner), "the plan is of the configuration up gets"
    assert planned["llmops:authMode"] == mode
    if mode == "entra":
        assert planned["llmops:serviceCredential"] == VARS["LLMOPS_SERVICE_CREDENTIAL"]
        assert planned["llmops:accessConnectorId"] == VARS["LLMOPS_ACCESS_CONNECTOR_ID"]


def test_the_stack_step_logs_in_to_a_state_folder_that_exists(tmp_path: Path) -> None:
    """The runner's temp folder starts empty; the diy backend's file driver needs the folder."""
    runner = _deploy("key", tmp_path)
    done = runner.run_through(_is_stack, skip=_is_plan)
    assert not _failed(done, runner), _failed(done, runner)
    logins = [c["args"] for c in runner.pulumi_calls() if c["args"][:1] == ["login"]]
    assert logins == [["login", f"file://{runner.temp}/pulumi-state"]]
    assert (runner.temp / "pulumi-state").is_dir()
    assert all(call["passphrase"] for call in runner.pulumi_calls()), "stack init needs it"


def test_the_pulumi_cli_is_the_version_requirements_txt_pins_for_the_sdk(tmp_path: Path) -> None:
    pins = [
        Requirement(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    (sdk,) = [str(r.specifier) for r in pins if r.name == "pulumi"]
    assert sdk.startswith("==")
    runner = _deploy("key", tmp_path)
    cli = runner.steps[one(runner.steps, _uses("pulumi/actions"))]["with"]["pulumi-version"]
    # The steps it reads, run here as GitHub would (they read requirements.txt).
    for step_id in re.findall(r"steps\.([\w-]+)\.outputs", str(cli)):
        done = runner.run(one(runner.steps, _has_id(step_id)))
        assert done.returncode == 0, done.stderr
    assert substitute(str(cli), runner.contexts) == sdk.removeprefix("=="), (
        "the Pulumi CLI is the version of the SDK that requirements.txt pins"
    )


def _uses_the_stack(step: Mapping[str, Any]) -> bool:
    """A step that runs the Pulumi CLI, or a command reading the stack (``--stack``)."""
    text = step.get("run", "")
    return bool(re.search(r"(^|[\s;&|(])pulumi\s+[a-z]", text, re.MULTILINE)) or "--stack" in text


def test_the_passphrase_reaches_only_the_steps_that_use_the_stack() -> None:
    job = workflow("deploy.yml")["jobs"]["deploy"]
    assert "PULUMI_CONFIG_PASSPHRASE" not in job.get("env", {}), "not job-wide"
    given = [bool(s.get("env", {}).get("PULUMI_CONFIG_PASSPHRASE")) for s in job["steps"]]
    needed = [_uses_the_stack(s) for s in job["steps"]]
    assert any(needed)
    assert given == needed, [s.get("name", s.get("uses")) for s in job["steps"]]


def test_each_eval_signs_in_to_the_azure_cli_right_before_it_runs() -> None:
    """eval's DefaultAzureCredential asks the CLI, whose OIDC login holds for 5 minutes: each
    eval (the gate, the candidate's, production's) has a login of its own just before it,
    run whenever the eval is."""
    steps = workflow("deploy.yml")["jobs"]["deploy"]["steps"]
    evaluations = [i for i, step in enumerate(steps) if _runs("workload eval")(step)]
    assert len(evaluations) == 3, "the gate, the candidate's eval and production's"
    for evaluation in evaluations:
        login = steps[evaluation - 1]
        assert _uses("azure/login")(login), "the Azure CLI signs in right before eval"
        assert login["with"] == {
            "client-id": "${{ vars.AZURE_CLIENT_ID }}",
            "tenant-id": "${{ vars.AZURE_TENANT_ID }}",
            "subscription-id": "${{ vars.AZURE_SUBSCRIPTION_ID }}",
        }
        assert login.get("if") == steps[evaluation].get("if"), "signed in when eval runs"


def test_preflight_signs_in_with_a_fresh_runner_token_not_the_cli_login(tmp_path: Path) -> None:
    """With the job's variables, preflight (and the purge) asks the runner for a new GitHub
    token whenever Entra ID needs one, so no 5-minute login stands between it and Azure."""
    from azure.identity import ClientAssertionCredential

    runner = _deploy("key", tmp_path)
    env = runner.env(runner.steps[one(runner.steps, _runs("llmops_infra preflight"))])
    assert isinstance(credentials.credential(env=env), ClientAssertionCredential), (
        "preflight asks the runner for GitHub's token itself (docs/ci.md)"
    )


def test_ci_caches_the_uv_downloads_of_every_requirements_file() -> None:
    """tasks.py installs with uv: each job that runs it keeps uv's cache, keyed by the
    content of every requirements file, so a change to one of them is a new key."""
    files = sorted(p.name for p in ROOT.glob("requirements*.txt"))
    for name, job in workflow("ci.yml")["jobs"].items():
        if not any(
            "tasks.py" in str(s.get("run", "")) or ".ci/run" in str(s.get("run", ""))
            for s in job["steps"]
        ):
            continue
        caches = [s.get("with", {}) for s in job["steps"] if _uses("actions/cache")(s)]
        assert caches, f"job {name} keeps uv's download cache"
        (given,) = caches
        assert "~/.cache/uv" in str(given.get("path", "")).split(), f"job {name}: uv's cache"
        key = str(given.get("key", ""))
        patterns = re.findall(r"hashFiles\('([^']+)'\)", key)
        covered = {p.name for pattern in patterns for p in ROOT.glob(pattern)}
        assert covered == set(files), f"job {name}: the key hashes every requirements file"


# --- the release: the branch's prompt as candidate, evaluated, promoted on main only ----------

#: The repository variable naming the prompt kept outside the throwaway stack (docs/ci.md).
PROMPT_NAME: Final = "llmops_ci_lab_chat"
KEY: Final = "test-key-workflows-0123456789abcdef"
#: The lab's system message: the packaged prompt's, so the branch's candidate.
LAB_SYSTEM: Final = "Assistant is a large language model trained by OpenAI."
#: Production's, before the run: another wording of the lab's.
KIND_SYSTEM: Final = "Assistant is a kind large language model trained by OpenAI."
#: What the fake answers, under a system message it answers badly: no joke at all.
NO_JOKE: Final = "I will not tell jokes."


def _is_release(step: Mapping[str, Any]) -> bool:
    return str(step.get("name", "")).startswith("release:")


class Release:
    """The deploy job's release steps run here: the fake Azure OpenAI behind the stack's
    outputs, a sqlite store for the workspace's MLflow and Unity Catalog, production
    registered before the run (another wording of the lab's)."""

    def __init__(
        self,
        tmp: Path,
        *,
        ref: str,
        worse_under: str | None = None,
        fail_under: str = "expectations_guidelines=0.8",
        variables: Mapping[str, str] | None = None,
    ) -> None:
        from fake_azure_openai import FakeAzureOpenAI

        def reply(messages: list[dict[str, Any]]) -> str:
            system = next((m["content"] for m in messages if m.get("role") == "system"), "")
            return NO_JOKE if system == worse_under else "Why did the cat cross the road? A joke."

        self.uri = f"sqlite:///{tmp / 'mlflow.db'}"
        self.fake = FakeAzureOpenAI(
            api_key=KEY, reply_text=reply, judge_verdict=lambda prompt: NO_JOKE not in prompt
        ).start()
        self.runner = Runner(
            "deploy.yml",
            "deploy",
            {"auth-mode": "key", "fail-under": fail_under},
            tmp,
            ref=ref,
            variables=VARS | {"LLMOPS_PROMPT_NAME": PROMPT_NAME}
            if variables is None
            else variables,
            stand_ins={"MLFLOW_TRACKING_URI": self.uri},
        )
        self.runner.outputs_file.write_text(
            json.dumps(
                {
                    "openai_endpoint": self.fake.endpoint,
                    "openai_api_key": KEY,
                    "openai_api_version": "2024-05-01-preview",
                    "openai_deployment": "gpt-4o",
                    "openai_auth_mode": "key",
                    "openai_tokens_per_minute": 600000,
                }
            )
        )

    def register_production(self, system: str) -> None:
        """Version 1, production: what an earlier run promoted."""
        prompt = self.runner.temp / "production.json"
        template = [
            {"role": "system", "content": system},
            {"role": "user", "content": "{{prompt}}"},
        ]
        prompt.write_text(json.dumps({"template": template}))
        env = {
            **self.runner.base,
            "MLFLOW_TRACKING_URI": self.uri,
            "LLMOPS_PROMPT_NAME": PROMPT_NAME,
        }
        done = subprocess.run(
            [
                str(ROOT / ".venv/bin/python"),
                "-m",
                "workload",
                "prompt",
                "push",
                "--json",
                "--file",
                str(prompt),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["version"] == 1

    def run(self) -> dict[str, subprocess.CompletedProcess[str]]:
        """The release steps, by id (or name); the fake stopped afterwards."""
        steps = self.runner.steps
        try:
            done = self.runner.run_steps([i for i, s in enumerate(steps) if _is_release(s)])
        finally:
            self.fake.stop()
        return {str(steps[i].get("id", steps[i]["name"])): d for i, d in done.items()}

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def alias(self, alias: str) -> int:
        return int(self.client().get_prompt_version_by_alias(PROMPT_NAME, alias).version)

    def history(self) -> list[dict[str, Any]]:
        tags = self.client().get_prompt(PROMPT_NAME).tags or {}
        return [json.loads(v) for k, v in sorted(tags.items()) if k.startswith("llmops.history.")]

    def output(self, step_id: str, name: str) -> str:
        return str(self.runner.contexts["steps"][step_id]["outputs"].get(name, ""))

    def outcome(self, step_id: str) -> str:
        return str(self.runner.contexts["steps"].get(step_id, {}).get("outcome", "not reached"))


def _promote_step(runner: Runner) -> int:
    return one(runner.steps, _runs("workload promote"))


def _ok(done: Mapping[str, subprocess.CompletedProcess[str]]) -> str:
    return "\n".join(
        f"{k} exited {d.returncode}: {d.stderr[-3000:]}"
        for k, d in done.items()
        if d.returncode != 0
    )


@pytest.mark.slow
def test_on_a_branch_the_prompt_is_pushed_as_candidate_and_evaluated_but_not_promoted(
    tmp_path: Path,
) -> None:
    release = Release(tmp_path, ref="refs/heads/shorter-prompt")
    release.register_production(KIND_SYSTEM)
    done = release.run()
    assert not _ok(done), _ok(done)
    assert release.alias("candidate") == 2, "the branch's prompt is a new version, candidate"
    assert release.alias("production") == 1, "a branch never moves production"
    assert release.history() == []
    run_id = release.output("candidate-eval", "run_id")
    run = release.client().get_run(run_id)
    assert run.data.tags["llmops.prompt_version"] == f"{PROMPT_NAME}/2", "the candidate ran"
    assert release.outcome("baseline-eval") == "skipped"
    promote = release.runner.steps[_promote_step(release.runner)]["name"]
    assert promote not in done, "promote runs on main only"
    summary = release.runner.summary.read_text()
    assert "candidate = version 2 (registered); production = version 1" in summary
    assert f"eval run {run_id} passed" in summary


@pytest.mark.slow
def test_on_main_promote_moves_production_to_the_candidate_its_eval_ran(tmp_path: Path) -> None:
    release = Release(tmp_path, ref="refs/heads/main")
    release.register_production(KIND_SYSTEM)
    done = release.run()
    assert not _ok(done), _ok(done)
    candidate_run = release.output("candidate-eval", "run_id")
    baseline_run = release.output("baseline-eval", "run_id")
    assert release.client().get_run(baseline_run).data.tags["llmops.prompt_version"] == (
        f"{PROMPT_NAME}/1"
    ), "the baseline is production's eval, in this run's experiment"
    assert release.alias("production") == 2
    (move,) = release.history()
    assert (move["action"], move["from_version"], move["to_version"], move["run_id"]) == (
        "promote",
        1,
        2,
        candidate_run,
    ), "promote took the candidate's eval run"
    assert "promoted, production: 1 -> 2" in release.runner.summary.read_text()


@pytest.mark.slow
def test_on_main_a_prompt_production_already_runs_is_evaluated_and_nothing_promoted(
    tmp_path: Path,
) -> None:
    """The branch left the prompt as it is: no new version, and no production eval or promote
    (which would refuse to move production onto itself, failing the job)."""
    release = Release(tmp_path, ref="refs/heads/main")
    release.register_production(LAB_SYSTEM)
    done = release.run()
    assert not _ok(done), _ok(done)
    assert (release.alias("candidate"), release.alias("production")) == (1, 1)
    assert release.outcome("candidate-eval") == "success"
    assert release.outcome("baseline-eval") == "skipped"
    assert release.runner.steps[_promote_step(release.runner)]["name"] not in done
    summary = release.runner.summary.read_text()
    assert "candidate = version 1 (unchanged); production = version 1" in summary
    assert "nothing to promote" in summary


@pytest.mark.slow
def test_on_main_a_refused_promote_fails_the_job_with_its_reasons(tmp_path: Path) -> None:
    """The judges score the branch's prompt worse than production: promote exits 3, the step
    fails (so the job does), each reason an error annotation and a line of the summary."""
    release = Release(
        tmp_path, ref="refs/heads/main", worse_under=LAB_SYSTEM, fail_under="reply_received=0.9"
    )
    release.register_production(KIND_SYSTEM)
    done = release.run()
    promote = done[release.runner.steps[_promote_step(release.runner)]["name"]]
    assert promote.returncode == 3, promote.stderr
    assert [k for k, d in done.items() if d.returncode != 0] == [
        release.runner.steps[_promote_step(release.runner)]["name"]
    ], "only promote failed"
    assert release.alias("production") == 1, "nothing changed"
    assert release.history() == []
    reason = "expectations_guidelines regressed against"
    assert f"::error title=promote refused::{reason}" in promote.stdout
    summary = release.runner.summary.read_text()
    assert "promote refused, production stays at version 1 (not 2)" in summary
    assert f"- {reason}" in summary


def test_without_the_variable_the_release_steps_are_skipped_with_a_notice(tmp_path: Path) -> None:
    release = Release(tmp_path, ref="refs/heads/main", variables=VARS)
    done = release.run()
    assert list(done) == ["release"], "only the check runs"
    assert done["release"].returncode == 0
    assert "::notice title=release::release steps skipped" in done["release"].stdout
    assert "LLMOPS_PROMPT_NAME is not set" in release.runner.summary.read_text()
    assert all(
        release.outcome(step_id) == "skipped"
        for step_id in ("candidate", "candidate-eval", "baseline-eval")
    )
    assert release.runner.pulumi_calls() == [], "nothing read the stack"
    assert not (tmp_path / "mlflow.db").exists(), "nothing registered"
