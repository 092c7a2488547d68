"""Run the real Pulumi program under Pulumi's mock engine, with mocks that act like the providers.

Shared by ``python -m llmops_infra plan`` and the tests, so both see the same
stack. The mocks fill the output-only properties that Azure, Databricks and
pulumi-random would (names, endpoints, URLs, ids, random draws), derived from
the inputs the program really sent, so a wrong wiring shows up as a wrong
value instead of a silent ``None``. In preview mode, values that only the
cloud knows at creation are *unknown*, as ``pulumi preview`` shows them.

The mock runtime is process-global: :func:`run_program` runs once per process;
:func:`run_program_isolated` forks a child for each run, so tests can run
many configurations after importing the provider SDKs only once.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import random
import runpy
import sys
import traceback
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

__all__ = [
    "FAKE_SUBSCRIPTION_ID",
    "FAKE_USER",
    "PROJECT_DIR",
    "UNKNOWN",
    "ProgramFailed",
    "ProgramRun",
    "ProviderMocks",
    "RecordedInvoke",
    "RecordedResource",
    "Secret",
    "StackExport",
    "is_unknown",
    "run_program",
    "run_program_isolated",
]

#: The project folder: where ``Pulumi.yaml`` and the program's ``__main__.py`` live.
PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
PROJECT_NAME: Final = "llmops"

#: Marks a value only the cloud knows (``pulumi preview`` shows "output<string>").
UNKNOWN: Final = rpc.UNKNOWN

FAKE_SUBSCRIPTION_ID: Final = "00000000-0000-0000-0000-000000000000"
FAKE_TENANT_ID: Final = "11111111-1111-1111-1111-111111111111"
FAKE_USER: Final = "lab.user@example.com"


def is_unknown(value: object) -> bool:
    """Whether a recorded value is one only the cloud would know."""
    return isinstance(value, Unknown) or value == UNKNOWN


class ProgramFailed(Exception):
    """The Pulumi program stopped with an error (its message, as Pulumi would print it)."""

    def __init__(self, message: str, registered: int = 0) -> None:
        super().__init__(message)
        self.registered = registered
        """How many resources the program had registered when it stopped."""


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
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass(frozen=True)
class RecordedInvoke:
    """One provider function call (``get_client_config``, ``list_account_keys`` ...)."""

    token: str
    args: dict[str, Any]
    provider: str


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
            name: export.value if show_secrets or not export.secret else "[secret]"
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
        return "Secret([secret])"  # never the value, even in a failing test's report


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


def _any_unknown(*values: Any) -> bool:
    return any(is_unknown(v) or v is None for v in values)


class ProviderMocks(pulumi_mocks.Mocks):
    """Answers like azure-native, databricks and random would, for the types this stack uses."""

    def __init__(self, *, stack: str, preview: bool, seed: str | None = None) -> None:
        self.preview = preview
        # Stands in for the provider's own randomness: stable for one stack, different across.
        self._seed = seed if seed is not None else stack

    def _rng(self, name: str) -> random.Random:
        digest = hashlib.sha256(f"{self._seed}/{name}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _cloud(self, value: Any) -> Any:
        """A value the cloud assigns at creation: unknown in preview."""
        return UNKNOWN if self.preview else value

    def new_resource(
        self, args: pulumi_mocks.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if not args.custom:
            return "", {}
        handler = _RESOURCE_HANDLERS.get(args.typ)
        if handler is None:
            raise NotImplementedError(
                f"the mock engine has no model of {args.typ}; add one to ProviderMocks"
            )
        resource_id, computed = handler(self, args.name, inputs)
        return (UNKNOWN if self.preview else resource_id), {**inputs, **computed}

    # Pulumi's stub says a tuple; the mock monitor takes (and wants) a bare dict.
    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        handler = _INVOKE_HANDLERS.get(args.token)
        if handler is None:
            raise NotImplementedError(f"the mock engine has no model of the function {args.token}")
        return handler(self, dict(args.args))

    # --- resources -------------------------------------------------------------------------

    def _random_string(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        alphabet = ""
        if inputs.get("lower", True):
            alphabet += "abcdefghijklmnopqrstuvwxyz"
        if inputs.get("numeric", True):
            alphabet += "0123456789"
        if inputs.get("upper", True):
            alphabet += "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        if inputs.get("special", True):
            alphabet += "!@#$%&*()-_=+[]{}<>:?"
        rng = self._rng(name)
        result = "".join(rng.choice(alphabet) for _ in range(int(inputs["length"])))
        return result, {"result": self._cloud(result)}

    def _random_shuffle(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        items = list(inputs.get("inputs") or [])
        self._rng(name).shuffle(items)
        count = int(inputs.get("resultCount") or len(items))
        return "-", {"results": self._cloud(items[:count])}

    def _resource_group(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        rg = inputs.get("resourceGroupName") or f"{name}{self._rng(name).randrange(16**8):08x}"
        arm_id = f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/{rg}"
        return arm_id, {"name": rg, "azureApiVersion": "2024-03-01"}

    def _openai_account(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        account = inputs["accountName"]
        group = inputs["resourceGroupName"]
        subdomain = (inputs.get("properties") or {}).get("customSubDomainName")
        # Without a custom subdomain Azure serves the regional endpoint, which Entra ID rejects.
        if _any_unknown(subdomain):
            endpoint = (
                UNKNOWN
                if is_unknown(subdomain)
                else (f"https://{inputs['location']}.api.cognitive.microsoft.com/")
            )
        else:
            endpoint = f"https://{subdomain}.openai.azure.com/"
        properties = {
            **(inputs.get("properties") or {}),
            "endpoint": self._cloud(endpoint),
            "provisioningState": self._cloud("Succeeded"),
        }
        arm_id = (
            f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/{group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{account}"
        )
        return arm_id, {"name": account, "properties": properties}

    def _openai_deployment(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        deployment = inputs["deploymentName"]
        model = dict((inputs.get("properties") or {}).get("model") or {})
        if not model.get("version"):
            model["version"] = self._cloud("2024-11-20")  # Azure fills the default version.
        properties = {**(inputs.get("properties") or {}), "model": model}
        arm_id = (
            f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/{inputs['resourceGroupName']}"
            f"/providers/Microsoft.CognitiveServices/accounts/{inputs['accountName']}"
            f"/deployments/{deployment}"
        )
        return arm_id, {"name": deployment, "properties": properties}

    def _databricks_workspace(
        self, name: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        workspace = inputs["workspaceName"]
        numeric_id = str(self._rng(name).randrange(10**15, 10**16))
        arm_id = (
            f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/{inputs['resourceGroupName']}"
            f"/providers/Microsoft.Databricks/workspaces/{workspace}"
        )
        return arm_id, {
            "name": workspace,
            "workspaceId": self._cloud(numeric_id),
            "workspaceUrl": self._cloud(f"adb-{numeric_id}.{numeric_id[-2:]}.azuredatabricks.net"),
            "provisioningState": self._cloud("Succeeded"),
        }

    def _databricks_provider(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return f"{name}-provider-id", {}

    def _databricks_cluster(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        rng = self._rng(name)
        cluster_id = "-".join(
            (f"{rng.randrange(10**3, 10**4)}", f"{rng.randrange(10**5, 10**6)}", f"lab{name[:3]}")
        )
        return cluster_id, {
            "clusterId": self._cloud(cluster_id),
            "state": self._cloud("RUNNING"),
            "url": self._cloud(f"#setting/clusters/{cluster_id}/configuration"),
        }

    # Issue 6: the lab inside the workspace (llmops_infra/databricks_lab.py).

    def _databricks_secret_scope(
        self, name: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        # The scope's id is its name; without a backend Databricks picks its own.
        return inputs["name"], {"backendType": inputs.get("backendType") or "DATABRICKS"}

    def _databricks_secret(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        scope, key = inputs["scope"], inputs["key"]
        return f"{scope}|||{key}", {
            "configReference": self._cloud(f"{{{{secrets/{scope}/{key}}}}}"),
            "lastUpdatedTimestamp": self._cloud(1_767_225_600_000),
        }

    def _databricks_mlflow_experiment(
        self, name: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        experiment_id = str(self._rng(name).randrange(10**15, 10**16))
        return experiment_id, {
            "experimentId": self._cloud(experiment_id),
            "artifactLocation": self._cloud(f"dbfs:/databricks/mlflow-tracking/{experiment_id}"),
            "lifecycleStage": self._cloud("active"),
        }

    def _databricks_workspace_file(
        self, name: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        path = inputs["path"]
        return path, {
            # The id is the path; the URL is relative to the workspace's host, as for clusters.
            "url": self._cloud(f"#workspace{path}"),
            "workspacePath": self._cloud(f"/Workspace{path}"),
            "objectId": self._cloud(self._rng(name).randrange(10**15, 10**16)),
        }

    def _databricks_job(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        job_id = str(self._rng(name).randrange(10**14, 10**15))
        return job_id, {"url": self._cloud(f"#job/{job_id}")}

    def _deleted_account_purge(
        self, name: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        # Issue 7 (llmops_infra/purge.py): create records its inputs, with no Azure call.
        fields = ("subscription_id", "resource_group_name", "location", "account_name")
        values = [inputs.get(key) for key in fields]
        if _any_unknown(*values):
            return f"{name}-id", {}
        sub, group, location, account = values
        return (
            f"/subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{location}"
            f"/resourceGroups/{group}/deletedAccounts/{account}"
        ), {}

    # --- functions -------------------------------------------------------------------------

    def _client_config(self, args: dict[str, Any]) -> dict[str, Any]:
        # Known in preview: the provider reads it from the Azure CLI or ARM_* variables.
        return {
            "subscriptionId": FAKE_SUBSCRIPTION_ID,
            "tenantId": FAKE_TENANT_ID,
            "clientId": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            "objectId": "22222222-2222-2222-2222-222222222222",
        }

    def _account_keys(self, args: dict[str, Any]) -> dict[str, Any]:
        account = args["accountName"]
        rng = self._rng(f"keys/{account}")
        return {
            "key1": "".join(rng.choice("0123456789abcdef") for _ in range(32)),
            "key2": "".join(rng.choice("0123456789abcdef") for _ in range(32)),
        }

    def _current_user(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "1234567890123456",
            "userName": FAKE_USER,
            "alphanumeric": "lab_user",
            "home": f"/Users/{FAKE_USER}",
            "aclPrincipalId": f"users/{FAKE_USER}",
        }


_RESOURCE_HANDLERS: Final = {
    "random:index/randomString:RandomString": ProviderMocks._random_string,
    "random:index/randomShuffle:RandomShuffle": ProviderMocks._random_shuffle,
    "azure-native:resources:ResourceGroup": ProviderMocks._resource_group,
    "azure-native:cognitiveservices:Account": ProviderMocks._openai_account,
    "azure-native:cognitiveservices:Deployment": ProviderMocks._openai_deployment,
    "azure-native:databricks:Workspace": ProviderMocks._databricks_workspace,
    "pulumi:providers:databricks": ProviderMocks._databricks_provider,
    "databricks:index/cluster:Cluster": ProviderMocks._databricks_cluster,
    "databricks:index/secretScope:SecretScope": ProviderMocks._databricks_secret_scope,
    "databricks:index/secret:Secret": ProviderMocks._databricks_secret,
    "databricks:index/mlflowExperiment:MlflowExperiment": (
        ProviderMocks._databricks_mlflow_experiment
    ),
    "databricks:index/workspaceFile:WorkspaceFile": ProviderMocks._databricks_workspace_file,
    "databricks:index/job:Job": ProviderMocks._databricks_job,
    "pulumi-python:dynamic/llmops:DeletedAccountPurge": ProviderMocks._deleted_account_purge,
}

_INVOKE_HANDLERS: Final = {
    "azure-native:authorization:getClientConfig": ProviderMocks._client_config,
    "azure-native:cognitiveservices:listAccountKeys": ProviderMocks._account_keys,
    "databricks:index/getCurrentUser:getCurrentUser": ProviderMocks._current_user,
}


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Pulumi's mock monitor, also keeping what the program asked for and how it nested."""

    mocks: ProviderMocks

    def __init__(self, mocks: ProviderMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.invokes: list[RecordedInvoke] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
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
                    inputs=_plain(rpc.deserialize_properties(request.object, keep_unknowns=True)),
                    outputs=_plain(registration.state),
                )
            )
        return response

    def Invoke(self, request: Any) -> Any:
        self.invokes.append(
            RecordedInvoke(
                token=request.tok,
                args=_plain(rpc.deserialize_properties(request.args, keep_unknowns=True)),
                provider=request.provider,
            )
        )
        if self.mocks.preview and self._pending(request):
            # As the engine does: a function whose provider or dependencies are still to be
            # created (the workspace's provider, say) cannot be called; its result is unknown.
            return resource_pb2.ResourceInvokeResponse(unknown=True)
        return super().Invoke(request)  # type: ignore[no-untyped-call]

    def _pending(self, request: Any) -> bool:
        """In a preview of a new stack every resource this run registers is pending creation."""
        registered = {r.urn for r in self.recorded}
        provider_urn = request.provider.rsplit("::", 1)[0] if request.provider else ""
        return provider_urn in registered or any(u in registered for u in request.dependsOn)


def _qualify(config: Mapping[str, str]) -> dict[str, str]:
    return {key if ":" in key else f"{PROJECT_NAME}:{key}": value for key, value in config.items()}


def run_program(
    config: Mapping[str, str],
    *,
    stack: str = "dev",
    preview: bool = False,
    program: Path = PROJECT_DIR / "__main__.py",
    seed: str | None = None,
) -> ProgramRun:
    """Run the program once in this process under the mocks; return what it did.

    ``config`` maps keys (``llmops:capacity`` or just ``capacity``) to the
    strings the Pulumi CLI would pass. Raises :class:`ProgramFailed` with the
    program's own message when it stops, as ``pulumi up`` would.
    """
    qualified = _qualify(config)
    mocks = ProviderMocks(stack=stack, preview=preview, seed=seed)
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(qualified)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT_NAME, stack=stack, preview=preview, monitor=monitor
    )

    def execute() -> None:
        runpy.run_path(str(program), run_name="__main__")

    try:
        _sync_await(run_pulumi_func(execute))
    except pulumi.RunError as err:
        raise ProgramFailed(str(err), registered=len(monitor.recorded)) from None

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
    )


def _child(conn: Any, config: Mapping[str, str], kwargs: dict[str, Any]) -> None:
    for key in [k for k in os.environ if k.startswith("PULUMI_")]:
        del os.environ[key]  # the CLI's variables would leak configuration in
    try:
        conn.send(("ok", run_program(config, **kwargs)))
    except ProgramFailed as err:
        conn.send(("failed", (str(err), err.registered)))
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
    import llmops_infra.stack  # noqa: F401 (imports the provider SDKs the program uses)

    for name, module in list(sys.modules.items()):
        if name.startswith("llmops_infra"):
            for value in list(vars(module).values()):
                if isinstance(value, types.ModuleType) and value.__name__.startswith("pulumi"):
                    # A lazy SDK module loads on the first access to a non-dunder attribute.
                    hasattr(value, "_preload")
    gc.collect()
    gc.freeze()


def run_program_isolated(config: Mapping[str, str], **kwargs: Any) -> ProgramRun:
    """:func:`run_program` in a forked child, leaving this process's runtime untouched.

    Call :func:`preload_program` in the parent first, so that no child imports anything.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, dict(config), kwargs))
    child.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        child.join()
        raise RuntimeError(f"the program's process died (exit code {child.exitcode})") from None
    child.join()
    if status == "failed":
        message, registered = payload
        raise ProgramFailed(message, registered=registered)
    if status == "error":
        raise RuntimeError(f"the program crashed:\n{payload}")
    assert isinstance(payload, ProgramRun)
    return payload
