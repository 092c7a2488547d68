"""Run the real Pulumi program under Pulumi's mock engine, with mocks that act like the providers.

Shared by ``python -m llmops_infra plan``, the tests and the benchmarks, so all
see the same stack. The answers come from :mod:`.resource_types` (each type
described once): the output-only properties that Azure, Databricks and
pulumi-random would fill in (names, endpoints, URLs, ids, random draws), derived
from the inputs the program really sent, so a wrong wiring shows up as a wrong
value instead of a silent ``None``. In preview mode, values that only the cloud
knows at creation are *unknown*, as ``pulumi preview`` shows them, and a lookup
through a provider whose settings are still unknown answers empty, as the engine
does. Given an earlier run's state, resources answer from it: a second ``up``, replayed
by :mod:`.replay` (each resource's step, its diff, and what its provider then holds).
:func:`match_previous_state` replays the engine's alias rule, so a test can prove
that stacks deployed before keep their resources.

The mock runtime is process-global: :func:`run_program` runs once per process;
:func:`run_program_isolated` forks a child for each run, so tests can run
many configurations after importing the provider SDKs only once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import logging
import multiprocessing
import os
import random
import runpy
import sys
import traceback
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc  # type: ignore[import-untyped]
import pulumi
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from llmops_infra.offline import replay
from llmops_infra.offline.resource_types import (
    FAKE_SUBSCRIPTION_ID,
    FAKE_USER,
    FUNCTIONS,
    RESOURCE_TYPES,
    HeldWorkspace,
    ProviderError,
    World,
)
from workload.contract import PROJECT_DIR, SECRET_MASK

__all__ = [
    "FAKE_SUBSCRIPTION_ID",
    "FAKE_USER",
    "PROJECT_DIR",
    "UNKNOWN",
    "HeldWorkspace",
    "ProgramFailed",
    "ProgramRun",
    "ProviderMocks",
    "RecordedInvoke",
    "RecordedResource",
    "Secret",
    "StackExport",
    "World",
    "engine_urns",
    "is_unknown",
    "match_previous_state",
    "run_program",
    "run_program_isolated",
]

PROJECT_NAME: Final = "llmops"

#: Marks a value only the cloud knows (``pulumi preview`` shows "output<string>").
UNKNOWN: Final = rpc.UNKNOWN


def is_unknown(value: object) -> bool:
    """Whether a recorded value is one only the cloud would know."""
    return isinstance(value, Unknown) or value == UNKNOWN


class ProgramFailed(Exception):
    """The Pulumi program stopped with an error (its message, as Pulumi would print it)."""

    def __init__(self, message: str, registered: int = 0, types: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.registered = registered
        """How many resources the program had registered when it stopped."""
        self.types = types
        """The type tokens of those resources, in registration order."""


@dataclass(frozen=True)
class AliasSpec:
    """One alias as the SDK sends it: a whole URN, or the parts that differ ("" = same)."""

    urn: str = ""
    name: str = ""
    type: str = ""
    parent_urn: str = ""
    no_parent: bool = False


def _alias(alias: Any) -> AliasSpec:
    if alias.urn:
        return AliasSpec(urn=alias.urn)
    spec = alias.spec
    return AliasSpec(
        name=spec.name, type=spec.type, parent_urn=spec.parentUrn, no_parent=spec.noParent
    )


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration, as the engine received it."""

    urn: str
    id: str
    """The physical id ("" for components; :data:`UNKNOWN` in preview)."""
    type: str
    name: str
    custom: bool
    parent: str
    """URN of the parent ("" for the stack itself)."""
    provider: str
    """``<provider urn>::<id>`` for an explicit provider, else ""."""
    dependencies: tuple[str, ...]
    """URNs this resource waits for."""
    aliases: tuple[AliasSpec, ...]
    """Earlier identities the program declared (``ResourceOptions.aliases``)."""
    inputs: dict[str, Any]
    """What the stack records as sent (``ignore_changes`` applied, as the engine does)."""
    outputs: dict[str, Any]
    """What the provider holds: for a Terraform-based one, what it reads back."""
    change: replay.Change = "create"
    """What this ``up`` does to it, against the earlier run's state (``create`` without one)."""
    diff: tuple[str, ...] = ()
    """The property paths that differ from that state (see :mod:`.replay`)."""
    options: replay.Options = field(default_factory=replay.Options)
    """The resource options the program set that a replay honours."""


@dataclass(frozen=True)
class RecordedInvoke:
    """One provider function call (``get_client_config``, ``list_account_keys`` ...)."""

    token: str
    args: dict[str, Any]
    provider: str
    result: dict[str, Any] | None = None
    """What the engine answered (``{}``: the empty result of a preview through a provider
    whose settings are unknown; None when the provider failed)."""
    error: str = ""
    """The provider's error when the function failed (a lookup of what does not exist)."""


@dataclass(frozen=True)
class StackExport:
    """A stack output; ``value`` is :data:`UNKNOWN` when not known before ``up``."""

    value: Any
    secret: bool


@dataclass(frozen=True)
class ProgramRun:
    """Everything one run of the program registered, invoked and exported."""

    stack: str
    preview: bool
    config: dict[str, str]
    resources: list[RecordedResource] = field(default_factory=list)
    invokes: list[RecordedInvoke] = field(default_factory=list)
    exports: dict[str, StackExport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What the program warned (``pulumi.log.warn``), as ``pulumi up`` would show it."""

    def by_type(self, type_: str) -> list[RecordedResource]:
        """Resources of one type token, in registration order."""
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> RecordedResource:
        """The single resource of a type; fails loudly if there is not exactly one."""
        found = self.by_type(type_)
        if len(found) != 1:
            raise LookupError(f"expected one {type_}, found {len(found)}")
        return found[0]

    def stack_output_json(self, *, show_secrets: bool) -> dict[str, Any]:
        """The exports as ``pulumi stack output --json [--show-secrets]`` prints them."""
        return {
            name: export.value if show_secrets or not export.secret else SECRET_MASK
            for name, export in self.exports.items()
        }

    def by_urn(self, urn: str) -> RecordedResource:
        """The resource with this URN."""
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(urn)


@dataclass(frozen=True)
class Secret:
    """A recorded input or output that the program marked secret."""

    value: Any

    def __repr__(self) -> str:
        return f"Secret({SECRET_MASK})"  # never the value, even in a failing test's report


def _plain(value: Any) -> Any:
    """Recorded values as plain, picklable data: unknowns as :data:`UNKNOWN`, secrets wrapped."""
    if isinstance(value, Unknown):
        return UNKNOWN
    if rpc.is_rpc_secret(value):
        return Secret(_plain(rpc.unwrap_rpc_secret(value)))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


class ProviderMocks(pulumi_mocks.Mocks):
    """Answers as azure-native, databricks and random would, from :mod:`.resource_types`.

    With ``state`` (an earlier run of the same stack), a resource that the earlier
    run created answers with the id recorded then and what its provider holds after
    this run's step (:mod:`.replay`, which the monitor plays first): unchanged when
    nothing differs; after an update, what the provider reads back (a Terraform-based
    type's rule), or the sent inputs laid over the old outputs, a property the program
    no longer sends keeping its value, as azure-native leaves a removed property as it
    is in Azure (pulumi-azure-native#2507); a replacement answers as a new resource.
    """

    def __init__(
        self,
        *,
        stack: str,
        preview: bool,
        seed: str | None = None,
        state: ProgramRun | None = None,
        world: World | None = None,
        config: Mapping[str, str] | None = None,
    ) -> None:
        self.preview = preview
        self.world = world or World()
        self.config: Mapping[str, str] = dict(config or {})
        # Stands in for the provider's own randomness: stable for one stack, different across.
        self._seed = seed if seed is not None else stack
        self._state = {(r.type, r.name): r for r in state.resources} if state else {}
        self.steps: dict[tuple[str, str], tuple[replay.Options, replay.Step]] = {}
        """Each resource's step, played by the monitor before it asks :meth:`new_resource`."""

    def previous(self, type_: str, name: str) -> RecordedResource | None:
        """The resource as the earlier run's state holds it, if it does."""
        return self._state.get((type_, name))

    def play(
        self, previous: RecordedResource, sent: dict[str, Any], options: replay.Options
    ) -> replay.Step:
        """The step of a resource the state holds, given the inputs as recorded."""
        known = _TYPES.get(previous.type)
        played = replay.step(
            sent,
            earlier_inputs=previous.inputs,
            held=previous.outputs,
            options=options,
            reads_back=known.reads_back if known else None,
            computed=known.computed if known else frozenset(),
            replaced_by=known.replaced_by if known else (),
        )
        self.steps[(previous.type, previous.name)] = (options, played)
        return played

    def rng(self, name: str) -> random.Random:
        digest = hashlib.sha256(f"{self._seed}/{name}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def later(self, value: Any) -> Any:
        return UNKNOWN if self.preview else value

    def is_unknown(self, value: Any) -> bool:
        return is_unknown(value) or value is None

    def new_resource(
        self, args: pulumi_mocks.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if not args.custom:
            return "", {}
        known = _TYPES.get(args.typ)
        if known is None or known.answer is None:
            raise NotImplementedError(
                f"the offline engine has no model of {args.typ}; describe it in "
                "llmops_infra/offline/resource_types.py"
            )
        previous = self._state.get((args.typ, args.name))
        if previous is not None:
            options, played = self.steps[(args.typ, args.name)]
            inputs = replay.ignore(inputs, _wire(previous.inputs), options.ignore_changes)
            if played.change != "replace":
                if played.held is not None:
                    return previous.id, _wire(played.held)
                return previous.id, replay.overlay(_wire(previous.outputs), inputs)
        resource_id, computed = known.answer(self, args.name, inputs)
        return (UNKNOWN if self.preview else resource_id), {**inputs, **computed}

    # Pulumi's stub says a tuple; the mock monitor takes (and wants) a bare dict.
    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        function = _FUNCTIONS.get(args.token)
        if function is None:
            raise NotImplementedError(
                f"the offline engine has no model of the function {args.token}; describe it "
                "in llmops_infra/offline/resource_types.py"
            )
        return function.answer(self, dict(args.args))


_TYPES: Final = {t.token: t for t in RESOURCE_TYPES}
_FUNCTIONS: Final = {f.token: f for f in FUNCTIONS}


def _wire(value: Any) -> Any:
    """A recorded value as a mock hands it back to the program (secrets unwrapped)."""
    if isinstance(value, Secret):
        return _wire(value.value)
    if isinstance(value, Mapping):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Pulumi's mock monitor, also keeping what the program asked for and how it nested."""

    mocks: ProviderMocks

    def __init__(self, mocks: ProviderMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.invokes: list[RecordedInvoke] = []

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        inputs = _plain(rpc.deserialize_properties(request.object, keep_unknowns=True))
        options = replay.Options(
            ignore_changes=tuple(request.ignoreChanges),
            replace_on_changes=tuple(request.replaceOnChanges),
            delete_before_replace=bool(request.deleteBeforeReplace),
        )
        change: replay.Change = "create"
        diff: tuple[str, ...] = ()
        previous = self.mocks.previous(request.type, request.name)
        if previous is not None and request.custom:
            played = self.mocks.play(previous, inputs, options)
            inputs, change, diff = played.inputs, played.change, played.diff
        elif previous is not None:
            change = "same"  # a component: nothing of its own to change
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        registration = self.resources[response.urn]
        self.recorded.append(
            RecordedResource(
                urn=response.urn,
                id=_plain(registration.id),
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                parent=request.parent,
                provider=request.provider,
                dependencies=tuple(request.dependencies),
                aliases=tuple(_alias(a) for a in request.aliases),
                inputs=inputs,
                outputs=_plain(registration.state),
                change=change,
                diff=diff,
                options=options,
            )
        )
        return response

    def Invoke(self, request: Any) -> Any:
        if self.mocks.preview and self._unconfigured_provider(request):
            # As the engine does in a preview: a function called through a provider whose
            # settings are not known yet (the new workspace's provider) answers an empty
            # result, not unknowns. (Dependencies still to be created are the SDK's business:
            # it answers unknown without asking the engine.)
            response = resource_pb2.ResourceInvokeResponse()
        else:
            try:
                response = super().Invoke(request)  # type: ignore[no-untyped-call]
            except ProviderError as err:
                # As the engine passes a provider's failure on: a gRPC error with its text,
                # which the SDK raises as "invoke of <token> failed: <text>".
                self.invokes.append(
                    RecordedInvoke(
                        token=request.tok,
                        args=_plain(rpc.deserialize_properties(request.args, keep_unknowns=True)),
                        provider=request.provider,
                        error=str(err),
                    )
                )
                raise _InvokeFailed(str(err)) from None
        self.invokes.append(
            RecordedInvoke(
                token=request.tok,
                args=_plain(rpc.deserialize_properties(request.args, keep_unknowns=True)),
                provider=request.provider,
                result=_plain(rpc.deserialize_properties(response.__getattribute__("return"))),
            )
        )
        return response

    def _unconfigured_provider(self, request: Any) -> bool:
        """Whether the explicit provider of an invoke has an input only the cloud knows."""
        if not request.provider:
            return False
        provider_urn = request.provider.rsplit("::", 1)[0]
        for resource in self.recorded:
            if resource.urn == provider_urn:
                return _has_unknown(resource.inputs)
        return False


class _InvokeFailed(grpc.RpcError):  # type: ignore[misc]
    """A provider function's failure as the engine returns it to the program."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return self._details


def _has_unknown(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def _qualify(config: Mapping[str, str]) -> dict[str, str]:
    return {key if ":" in key else f"{PROJECT_NAME}:{key}": value for key, value in config.items()}


def run_program(
    config: Mapping[str, str],
    *,
    stack: str = "dev",
    preview: bool = False,
    program: Path = PROJECT_DIR / "__main__.py",
    seed: str | None = None,
    state: ProgramRun | None = None,
    world: World | None = None,
) -> ProgramRun:
    """Run the program once in this process under the mocks; return what it did.

    ``config`` maps keys (``llmops:capacity`` or just ``capacity``) to the
    strings the Pulumi CLI would pass. With ``state`` (an earlier run), resources
    it created answer from it, as in a second ``pulumi up``. ``world``: what the
    tenant holds beyond the program (who signs in, the workspace's metastore). Raises
    :class:`ProgramFailed` with the program's own message when it stops, as
    ``pulumi up`` would.
    """
    with _own_event_loop():
        return _run_program(
            config,
            stack=stack,
            preview=preview,
            program=program,
            seed=seed,
            state=state,
            world=world,
        )


@contextlib.contextmanager
def _own_event_loop() -> Iterator[None]:
    """A new event loop for one run, its threads ended and the loop closed afterwards.

    Pulumi runs every invoke and registration in the event loop's default thread pool. A loop
    left over from an earlier run in this process keeps a pool whose threads wait idle; a
    process forked from this one inherits that pool without its threads (a fork copies only
    the forking thread), the pool still counts them as idle, so it starts none and the
    child's first invoke waits for good. Seen in the tests: forked runs stuck in
    ``_sync_await`` after another test had planned in the xdist worker itself.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)  # Pulumi's next ``_sync_await`` makes a new one
        loop.close()


def _run_program(
    config: Mapping[str, str],
    *,
    stack: str,
    preview: bool,
    program: Path,
    seed: str | None,
    state: ProgramRun | None,
    world: World | None,
) -> ProgramRun:
    qualified = _qualify(config)
    mocks = ProviderMocks(
        stack=stack, preview=preview, seed=seed, state=state, world=world, config=qualified
    )
    monitor = _RecordingMonitor(mocks)
    # A new stack for each run: ``set_mocks`` keeps a root stack resource it finds, and with
    # it an earlier run's outputs (a keyless run then exported the key run's key).
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(qualified)
    warnings = _WarningsKept()
    pulumi.runtime.set_mocks(
        mocks,
        project=PROJECT_NAME,
        stack=stack,
        preview=preview,
        monitor=monitor,
        logger=warnings.logger,
    )

    def execute() -> None:
        runpy.run_path(str(program), run_name="__main__")

    try:
        _sync_await(run_pulumi_func(execute))
    except pulumi.RunError as err:
        types = tuple(resource.type for resource in monitor.recorded)
        raise ProgramFailed(str(err), registered=len(types), types=types) from None

    root = pulumi.runtime.get_root_resource()
    exports: dict[str, StackExport] = {}
    for name, value in getattr(root, "outputs", {}).items():
        output = pulumi.Output.from_input(value)
        known = _sync_await(output.is_known())
        exports[name] = StackExport(
            value=_plain(_sync_await(output.future())) if known else UNKNOWN,
            secret=bool(_sync_await(output.is_secret())),
        )
    return ProgramRun(
        stack=stack,
        preview=preview,
        config=qualified,
        resources=list(monitor.recorded),
        invokes=list(monitor.invokes),
        exports=exports,
        warnings=warnings.messages,
    )


class _WarningsKept(logging.Handler):
    """The mock engine's log, kept: its warnings are the program's ``pulumi.log.warn``.

    The logger has no parent, so nothing reaches the root logger's stderr: the caller
    (``plan``) says them its own way.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.logger = logging.Logger("llmops-program")
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _child(conn: Any, config: Mapping[str, str], kwargs: dict[str, Any]) -> None:
    for key in [k for k in os.environ if k.startswith("PULUMI_")]:
        del os.environ[key]  # the CLI's variables would leak configuration in
    try:
        conn.send(("ok", run_program(config, **kwargs)))
    except ProgramFailed as err:
        conn.send(("failed", (str(err), err.registered, err.types)))
    except BaseException:  # report anything else to the parent, then exit
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def preload_program() -> None:
    """Import the program and load the SDK sub-packages it reaches lazily, then freeze them.

    Call it once before :func:`run_program_isolated`: every forked run then starts
    with the SDKs loaded (a third of the time of a run that loads them itself), and
    the frozen objects are not rescanned by each child's garbage collector.
    """
    import llmops_infra.stack.program  # noqa: F401 (imports the provider SDKs the program uses)

    for name, module in list(sys.modules.items()):
        if name.startswith("llmops_infra"):
            for value in list(vars(module).values()):
                if isinstance(value, types.ModuleType) and value.__name__.startswith("pulumi"):
                    # A lazy SDK module loads on the first access to a non-dunder attribute.
                    hasattr(value, "_preload")
    gc.collect()
    gc.freeze()


#: How long a forked run may go without answering and without its main thread using any CPU
#: before it counts as stuck: a child waiting on a lock it inherited uses none, and a slow one
#: on a busy machine (a run takes a few seconds of CPU, minutes of wall time when other
#: processes hold the cores) keeps using some. Where the CPU time cannot be read, this is the
#: limit on the wall time.
_CHILD_SECONDS: Final = 30.0
#: However busy it keeps, a run still going after this many of those intervals is stuck too.
_CHILD_INTERVALS: Final = 10


def _cpu_seconds(pid: int) -> float | None:
    """The CPU time the main thread of process ``pid`` has used so far (Linux's /proc), None
    where unknown. The main thread's alone: the program runs its event loop there, and a stuck
    child's other threads (gRPC's timers and pollers) still wake up now and then."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _answers(receiver: Any, pid: int) -> bool:
    """Wait for the child's answer (True), or until it has stopped working (False)."""
    used = _cpu_seconds(pid)
    for _ in range(_CHILD_INTERVALS):
        if receiver.poll(_CHILD_SECONDS):
            return True
        now = _cpu_seconds(pid)
        if used is None or now is None or now <= used:
            return False
        used = now
    return False


def run_program_isolated(config: Mapping[str, str], **kwargs: Any) -> ProgramRun:
    """:func:`run_program` in a forked child, leaving this process's runtime untouched.

    Call :func:`preload_program` in the parent first, so that no child imports anything.

    A fork copies only the thread that forks: a lock another thread of the parent held at
    that moment stays held in the child for good (Python's ``os.fork`` documentation warns
    of it; the test processes run servers and pytest-xdist's own threads). Seen once in
    several hundred runs: a child waiting forever on its first invoke. So a child that
    has used no CPU for :data:`_CHILD_SECONDS` without answering is ended and the run
    forked once more; a second stuck child is an error, never a silent pass.
    """
    for attempt in (1, 2):
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(sender, dict(config), kwargs))
        child.start()
        sender.close()
        assert child.pid is not None
        if not _answers(receiver, child.pid):
            child.kill()
            child.join()
            receiver.close()
            if attempt == 1:
                continue
            raise RuntimeError(
                f"the program's process was stuck twice (no CPU used in {_CHILD_SECONDS:g} s)"
            )
        try:
            status, payload = receiver.recv()
        except EOFError:
            child.join()
            raise RuntimeError(f"the program's process died (exit code {child.exitcode})") from None
        child.join()
        break
    if status == "failed":
        message, registered, types = payload
        raise ProgramFailed(message, registered=registered, types=types)
    if status == "error":
        raise RuntimeError(f"the program crashed:\n{payload}")
    assert isinstance(payload, ProgramRun)
    return payload


# --- identities across versions of the program ---------------------------------------------------

_ROOT_STACK_TYPE: Final = "pulumi:pulumi:Stack"


def _urn_parts(urn: str) -> tuple[str, str, str, str]:
    """``urn:pulumi:<stack>::<project>::<qualified type>::<name>`` into its four parts."""
    head, project, qualified_type, name = urn.split("::", 3)
    return head.removeprefix("urn:pulumi:"), project, qualified_type, name


def engine_urns(run: ProgramRun) -> dict[str, str]:
    """Each recorded resource's URN as the real engine writes it.

    Pulumi's mock monitor builds a URN from the parent's own type alone; the engine
    chains every ancestor's type (and leaves the root stack's out), so a component's
    child's identity carries the whole path. Keys are the recorded URNs.
    """
    real: dict[str, str] = {}
    for resource in run.resources:
        stack, project, _, _ = _urn_parts(resource.urn)
        parent = real.get(resource.parent, "")
        real[resource.urn] = _new_urn(stack, project, parent, resource.type, resource.name)
    return real


def _new_urn(stack: str, project: str, parent_urn: str, type_: str, name: str) -> str:
    parent_type = _urn_parts(parent_urn)[2] if parent_urn else ""
    qualified = type_ if parent_type in ("", _ROOT_STACK_TYPE) else f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _collapse(resource: RecordedResource, alias: AliasSpec, stack: str, project: str) -> str:
    """An alias as the URN it names (``stepGenerator.collapseAliasToUrn``): parts it leaves
    empty are the resource's own."""
    if alias.urn:
        return alias.urn
    parent = "" if alias.no_parent else (alias.parent_urn or resource.parent)
    return _new_urn(
        stack, project, parent, alias.type or resource.type, alias.name or resource.name
    )


def match_previous_state(run: ProgramRun, old_urns: Iterable[str]) -> dict[str, str]:
    """Which resource of ``run`` takes over which URN of an earlier state, as the engine decides.

    URNs on both sides are the engine's (:func:`engine_urns`); the result's keys too.

    The engine's rule (``stepGenerator.generateAliases``): a resource is found in
    the old state by its URN, else by each alias it declares, else by its parent's
    matched alias with the child's type and name (the name's parent prefix
    renamed); the first match wins. Returns new URN -> old URN for each match; an
    old URN that no resource matches would be deleted by the next ``up``.
    """
    olds = set(old_urns)
    real = engine_urns(run)
    matched: dict[str, str] = {}
    through_alias: dict[str, str] = {}
    for recorded in run.resources:
        resource = dataclasses.replace(
            recorded,
            urn=real[recorded.urn],
            parent=real.get(recorded.parent, ""),
            aliases=tuple(
                dataclasses.replace(a, parent_urn=real.get(a.parent_urn, a.parent_urn))
                for a in recorded.aliases
            ),
        )
        stack, project, _, _ = _urn_parts(resource.urn)

        candidates = [
            resource.urn,
            *(_collapse(resource, a, stack, project) for a in resource.aliases),
        ]
        parent_alias = through_alias.get(resource.parent)
        if parent_alias:
            parent_name = _urn_parts(resource.parent)[3]
            old_parent_name = _urn_parts(parent_alias)[3]
            for type_, name in [(resource.type, resource.name)] + [
                (_urn_parts(c)[2].rsplit("$", 1)[-1], _urn_parts(c)[3]) for c in candidates[1:]
            ]:
                if name.startswith(parent_name):
                    name = old_parent_name + name[len(parent_name) :]
                candidates.append(_new_urn(stack, project, parent_alias, type_, name))
        for candidate in candidates:
            if candidate in olds:
                matched[resource.urn] = candidate
                if candidate != resource.urn:
                    through_alias[resource.urn] = candidate
                break
    return matched
