"""``python -m llmops_infra demo``: the whole LLMOps loop on this machine, without Azure.

What ``pulumi up`` gives a user is a model behind an Azure OpenAI endpoint and an MLflow
experiment; the ``workload`` commands do the rest. The demo stands in for the first with
the project's fake of Azure OpenAI (``tests/fake_azure_openai.py``: Azure's wire format and
rate limits, canned replies, a canned judge) and for the second with a sqlite MLflow store
in a folder it names, then runs the real commands against them, each in its own process
exactly as a user types them: ``prompt push`` (version 1 of the lab's prompt, production),
``chat`` a few times, a short ``eval`` with judges, then a release that fails: a second
version whose system message the fake answers worse is pushed, evaluated, and refused by
``promote`` (exit 3, with its reasons), and ``prompt list`` shows production unmoved; then
``monitor --plot``. It ends by saying what was made and how to look at it.

The fake is the tests' own (one fake, so the demo shows what the tests prove); it lives
with them in ``tests/``, and the demo, which runs from a clone (``python3 tasks.py demo``),
imports it from there. It runs in this process, in a thread; every command is a child
process, ended (and waited for) when the demo stops, whether it finished, failed or was
interrupted (Ctrl-C) or ended (SIGTERM, as ``timeout`` and a CI's cancel send it).
Nothing leaves the machine: the fake listens on 127.0.0.1 and the key the commands send
it is a made-up one.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from llmops_infra.errors import ConfigError
from workload import contract

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["DEMO_DIR", "LABEL", "add_parser", "run"]

ROOT: Final = Path(__file__).resolve().parent.parent
#: Where the demo writes, unless told otherwise (ignored by git).
DEMO_DIR: Final = ROOT / "demo-output"
#: How everything the fake produced is labelled, wherever the demo prints it.
LABEL: Final = "[FAKE Azure OpenAI]"

_CHAT_PROMPTS: Final = (
    "Tell me a joke about cats.",
    "Tell me a joke about penguins.",
    "Tell me a joke about owls.",
    "Tell me a joke about animals.",
)
#: The fake's canned replies: one joke per animal it knows (the tests' elephant joke otherwise).
_JOKES: Final = {
    "cat": "Why did the cat sit on the computer? To keep an eye on the mouse!",
    "penguin": "What do penguins wear on their heads? Ice caps!",
    "owl": "What do you call an owl that does magic? Hoo-dini!",
    "fish": "Why are fish so smart? They live in schools!",
    "cow": "Knock knock. Who's there? Cow says. Cow says who? No, a cow says moo!",
}
_ANIMAL: Final = re.compile(r"about (?:an? )?([a-z]+?)s?\b", re.IGNORECASE)
#: Files the demo makes in its folder (and removes first, so each run starts afresh).
_MADE: Final = (
    "mlflow.db",
    "mlruns",
    "outputs.json",
    "dataset.jsonl",
    "drift.png",
    "lab_chat_v2.json",
)
#: Version 2's system message: the fake answers it with no joke at all, so its judge says no.
_V2_SYSTEM: Final = "Assistant is a serious large language model. It never tells jokes."
#: The fake's answer under version 2's system message.
_NO_JOKE: Final = "I am afraid I do not tell jokes."
#: promote's exit status when it refused (workload.commands.promote.EXIT_REFUSED).
_REFUSED: Final = 3
_DEPLOYMENT: Final = "gpt-4o"
_JUDGE: Final = "gpt-4o-mini"
#: The fake's limits: Azure's Standard rules (a sixth of a minute's allowance per 10 s).
#: 50K TPM, as the lab's call (no max_tokens) is counted at 4,096 completion tokens.
_TPM: Final = 50_000
#: The key the commands send to the fake: made up here, no secret anywhere.
_DEMO_KEY: Final = "demo-key-of-the-local-fake"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="the LLMOps loop on this machine, against a local FAKE of Azure OpenAI",
        description=(
            "Start a local fake of Azure OpenAI (canned replies, Azure's wire format and rate "
            "limits; no Azure account, no key, no network), then run `workload chat` a few "
            "times, a short `workload eval` with judges and `workload monitor --plot` into a "
            "sqlite MLflow store, and say how to look at the traces, runs, assessments and "
            "the plot. Exit status: 0 done, 1 a command failed."
        ),
    )
    parser.add_argument(
        "--dir",
        metavar="DIR",
        type=Path,
        default=DEMO_DIR,
        help=f"the folder of the MLflow store and the plot ({DEMO_DIR.relative_to(ROOT)}/)",
    )
    parser.add_argument(
        "--rows",
        metavar="N",
        type=int,
        default=8,
        choices=range(6, 24),
        help="eval rows, the first of the lab's prompt set (8; 6..23)",
    )
    parser.add_argument(
        "--chats",
        metavar="N",
        type=int,
        default=len(_CHAT_PROMPTS),
        choices=range(1, len(_CHAT_PROMPTS) + 1),
        help=f"chat calls, each its own process ({len(_CHAT_PROMPTS)}; fewer for a quicker run)",
    )
    parser.set_defaults(run=run)


def _canned_reply(messages: list[dict[str, Any]]) -> str:
    """The fake's answer: its joke about the prompt's animal, else the tests' elephant joke;
    under version 2's system message, no joke at all."""
    if any(m.get("role") == "system" and m.get("content") == _V2_SYSTEM for m in messages):
        return _NO_JOKE
    joke = str(_fake_module().JOKE)
    found = _ANIMAL.search(str(messages[-1].get("content") or "")) if messages else None
    return _JOKES.get(found.group(1).lower(), joke) if found else joke


def _canned_verdict(prompt: str) -> bool:
    """The fake judge: "yes" unless a guideline asks for a joke about an animal the reply
    does not mention (so the elephant joke fails "a joke about dogs")."""
    response = prompt.partition("<response>")[2].partition("</response>")[0].lower()
    for guideline in re.findall(r"<guideline>(.*?)</guideline>", prompt, re.DOTALL):
        found = _ANIMAL.search(guideline)
        if found and found.group(1).lower() != "animal" and found.group(1).lower() not in response:
            return False
    return True


def _fake_module() -> Any:
    """The tests' fake of Azure OpenAI, from this clone's ``tests/``."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module("fake_azure_openai")


def _prepare(folder: Path, endpoint: str, rows: int) -> dict[str, str]:
    """Empty the demo's files in ``folder``, write the stack outputs and the dataset the
    commands read; the environment of every command."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in _MADE:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    outputs = {
        contract.OPENAI_ENDPOINT: endpoint,
        contract.OPENAI_API_KEY: _DEMO_KEY,
        contract.OPENAI_API_VERSION: "2024-05-01-preview",
        contract.OPENAI_DEPLOYMENT: _DEPLOYMENT,
        contract.OPENAI_AUTH_MODE: "key",
        contract.OPENAI_TOKENS_PER_MINUTE: _TPM,
        contract.OPENAI_JUDGE_DEPLOYMENT: _JUDGE,
        contract.OPENAI_JUDGE_TOKENS_PER_MINUTE: _TPM,
    }
    (folder / "outputs.json").write_text(json.dumps(outputs, indent=2) + "\n")
    lab = resources.files("workload.evaluation").joinpath("datasets/lab_prompts.jsonl")
    lines = lab.read_text(encoding="utf-8").splitlines()[:rows]
    (folder / "dataset.jsonl").write_text("\n".join(lines) + "\n")
    # The user's own Azure, OpenAI, MLflow and Databricks settings would point the
    # commands elsewhere (AZURE_OPENAI_API_KEY wins over the outputs): none is passed on.
    foreign = ("AZURE_", "OPENAI_", "MLFLOW_", "DATABRICKS_", "LLMOPS_", "ARM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
    env["MLFLOW_TRACKING_URI"] = _store_uri(folder)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _store_uri(folder: Path) -> str:
    return f"sqlite:///{(folder / 'mlflow.db').resolve()}"


def _workload(folder: Path, env: dict[str, str], *args: str, expect: int = 0) -> str:
    """Run ``python -m workload ARGS`` in ``folder`` (its artifacts land there); its stdout.

    Its stderr (progress, retries, errors) reaches the user as it comes. The child is
    ended and waited for however this returns, an interruption (Ctrl-C) included.
    """
    shown = " ".join(a if " " not in a else repr(a) for a in args)
    print(f"\n$ python -m workload {shown}", flush=True)
    with _child([sys.executable, "-m", "workload", *args], folder, env) as child:
        out, _ = child.communicate()
    if child.returncode != expect:
        print(out, end="")
        raise _Failed(f"`python -m workload {args[0]}` exited {child.returncode}")
    return str(out)


class _Failed(Exception):
    """A command of the demo failed; its own error line was printed above."""


class _Terminated(Exception):
    """SIGTERM arrived: the demo unwinds as on Ctrl-C, ending each command on its way out."""


@contextmanager
def _unwinding_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` while the block runs.

    Python's default for SIGTERM ends the process at once, without ``finally``: the
    command running then would go on alone, its parent gone. A second SIGTERM is ignored,
    so it cannot cut short the ending of the commands (bounded: see :func:`_child`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; a caller elsewhere keeps its own
        return

    def terminated(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Held:
    """The signals that arrived while :func:`_signals_held` held them back."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def deliver(self) -> None:
        """Send them again, to the handlers now in place (which raise)."""
        for signum in self.signals:
            os.kill(os.getpid(), signum)
        self.signals.clear()


@contextmanager
def _signals_held() -> Iterator[_Held]:
    """Hold back Ctrl-C and SIGTERM while the block runs, for :meth:`_Held.deliver`.

    Raised inside ``subprocess.Popen``, after its fork, they would lose the started
    child: no object would be left to end it. In a thread other than the main one
    (which has no signal handlers), nothing is held.
    """
    held = _Held()
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {
        s: signal.signal(s, lambda signum, frame: held.signals.append(signum)) for s in signals
    }
    try:
        yield held
    except BaseException:
        _restore(previous)
        held.deliver()  # the block failed: what arrived meanwhile is not lost either
        raise
    _restore(previous)


def _restore(handlers: dict[signal.Signals, Any]) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


@contextmanager
def _child(cmd: Sequence[str], cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A child process whose stdout is captured, always gone when the block is left."""
    with _signals_held() as held:
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    try:
        held.deliver()  # Ctrl-C or SIGTERM while it was being started: end it now
        yield child
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if child.stdout is not None:
            child.stdout.close()


def _banner(fake: Any) -> None:
    print(
        f"{LABEL} a local stand-in for Azure OpenAI at {fake.endpoint} (this machine only):\n"
        f"{LABEL}   Azure's wire format and rate limits ({_TPM:,} tokens per minute on "
        f"'{_DEPLOYMENT}' and on the judge deployment '{_JUDGE}'),\n"
        f"{LABEL}   canned replies (one joke per animal it knows), and a canned judge (it says "
        f"'no' when the joke is not about the animal asked for).\n"
        f"{LABEL}   No Azure account, no key, no network: the replies are not a model's.",
        flush=True,
    )


def _release(folder: Path, env: dict[str, str], outputs: str, dataset: str) -> None:
    """A second version that the judges score worse: pushed, evaluated, refused."""
    v2 = folder / "lab_chat_v2.json"
    template = [
        {"role": "system", "content": _V2_SYSTEM},
        {"role": "user", "content": "{{prompt}}"},
    ]
    v2.write_text(json.dumps({"template": template, "commit_message": "a serious assistant"}))
    print(
        _workload(folder, env, "prompt", "push", "--file", str(v2), "--alias", "candidate"), end=""
    )
    result = json.loads(
        _workload(
            folder, env, "eval", "--outputs", outputs, "--dataset", dataset,
            "--prompt-version", "candidate", "--json",
        )
    )  # fmt: skip
    rates = ", ".join(
        f"{s['name']} {s['pass_rate']:.2f}" for s in result["scorers"] if s["pass_rate"] is not None
    )
    print(f"eval run {result['run_id']} of {result['prompt_version']}: {rates}")
    refused = _workload(
        folder, env, "promote", "--outputs", outputs, result["run_id"], expect=_REFUSED
    )
    print(refused, end="")
    print(f"(promote refused, exit {_REFUSED}: production keeps version 1)")
    print(_workload(folder, env, "prompt", "list"), end="")


def _steps(folder: Path, env: dict[str, str], chats: int) -> None:
    outputs = str(folder / "outputs.json")
    dataset = str(folder / "dataset.jsonl")
    print(_workload(folder, env, "prompt", "push"), end="")
    for prompt in _CHAT_PROMPTS[:chats]:
        answer = json.loads(
            _workload(folder, env, "chat", "--outputs", outputs, "--prompt", prompt, "--json")
        )
        print(f"{LABEL} replied: {answer['reply']}")
        print(
            f"  run {answer['run_id']}, trace {answer['trace_id']}, "
            f"{answer['completion_tokens']} completion tokens"
        )
    table = _workload(folder, env, "eval", "--outputs", outputs, "--dataset", dataset)
    print(table, end="")
    print(f"(the judges' verdicts are the {LABEL}'s canned judge's)")
    _release(folder, env, outputs, dataset)
    table = _workload(
        folder, env, "monitor", "--outputs", outputs, "--plot", str(folder / "drift.png")
    )
    print(table, end="")
    print(
        f"(the {LABEL} answers at once: the latencies compared are mostly each command's own "
        "start-up, the chat calls' cold ones against the eval's warm client)"
    )


def _summary(folder: Path) -> None:
    uri = _store_uri(folder)
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    print(
        f"\nWhat the demo made, in {folder}:\n"
        f"  {folder / 'mlflow.db'}  the MLflow store: the experiment "
        f"'llmops-lab', the chat runs and their traces, the eval runs and their traces with the\n"
        f"    judges' assessments (all answered by the {LABEL}, not a model), and the prompt\n"
        f"    lab_chat's two versions (MLflow's Prompt Registry: the UI's Prompts tab)\n"
        f"  {folder / 'drift.png'}  the monitor's plot: oldest traces against newest\n"
        f"  {folder / 'outputs.json'}  the stack outputs the commands read (the fake's endpoint, "
        f"a made-up key)\n"
        f"Look at the traces, runs and assessments:\n"
        f"  {mlflow_cli} ui --backend-store-uri {uri}\n"
        f"  then open http://127.0.0.1:5000 (experiment llmops-lab: Traces, Evaluations)\n"
        f"With Azure: `pulumi up` gives the same commands a real gpt-4o deployment "
        f"(README.md, 'Deploy to Azure').",
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; every process it started is gone when this returns."""
    from workload.monitoring.drift import MIN_VALUES

    if args.chats + args.rows < 2 * MIN_VALUES:
        raise ConfigError(
            f"--chats {args.chats} and --rows {args.rows} make {args.chats + args.rows} traces; "
            f"the monitor compares two windows of at least {MIN_VALUES}: make them "
            f"{2 * MIN_VALUES} or more"
        )
    try:
        with _unwinding_on_sigterm():
            return _run(args)
    except _Terminated:
        print("terminated: the demo and its commands have ended", file=sys.stderr)
        return 128 + signal.SIGTERM


def _run(args: argparse.Namespace) -> int:
    folder: Path = args.dir.resolve()
    started = time.monotonic()
    fakes = _fake_module()
    fake = fakes.FakeAzureOpenAI(
        api_key=_DEMO_KEY,
        deployment=_DEPLOYMENT,
        reply_text=_canned_reply,
        tpm=_TPM,
        judge_deployment=_JUDGE,
        judge_tpm=_TPM,
        judge_verdict=_canned_verdict,
    )
    with fake:
        _banner(fake)
        env = _prepare(folder, fake.endpoint, args.rows)
        try:
            _steps(folder, env, args.chats)
        except _Failed as err:
            print(f"error: the demo stopped: {err}", file=sys.stderr)
            return 1
    print(f"\nDone in {time.monotonic() - started:.0f} s.")
    _summary(folder)
    return 0
