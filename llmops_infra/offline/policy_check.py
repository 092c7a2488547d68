"""Run a Pulumi policy pack over the resources the offline engine recorded.

A Python ``PolicyPack`` starts its analyzer server when constructed and never
returns, so a pack cannot be imported. This module starts it as the Pulumi CLI
does (the ``pulumi-analyzer-policy-python`` shim: ``python -u -m pulumi.policy
<engine address> .`` in the pack's folder, with the virtualenv its
``PulumiPolicy.yaml`` names), reads the port the server prints, and speaks the
analyzer protocol to it: ``GetAnalyzerInfo``, ``Configure`` with the pack's
configuration reconciled as the CLI does (schema defaults, then ``all``, then
each policy's entry, validated against the schema), then ``Analyze`` for each
resource with its inputs marshalled as the engine marshals them (unknowns as
the unknown sentinel, secrets as secret objects) and ``AnalyzeStack`` when the
pack has stack policies. Any pack works, not only ours.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from llmops_infra.offline.policy_config import LEVELS, Level, PolicyPackError, reconcile_config
from workload.contract import SECRET_MASK

__all__ = ["PolicyAnalyzer", "PolicyPackError", "Violation"]

#: How long a pack may take to print its port (imports on a loaded machine).
START_TIMEOUT: Final = 60.0
#: The signature the engine puts on a secret value (pulumi's rpc conventions).
_SECRET_SIG: Final = "1b47061264138c4ac30d75fd1eb44270"
_SIG_KEY: Final = "4dabf18193072939515e22adb298388d"
#: The engine address the shim passes; a pack logs through it only under a real engine.
_NO_ENGINE: Final = "127.0.0.1:0"


@dataclass(frozen=True)
class Violation:
    """One policy violation, as the engine reports it."""

    policy: str
    level: Level
    message: str
    """What the policy said about this resource (without the policy's description)."""
    description: str
    """The policy's one-line description."""
    urn: str
    """The resource concerned; "" for the stack as a whole."""
    pack: str


def _pack_python(pack: Path) -> tuple[str, str | None]:
    """The interpreter to run the pack with, and why, when it is not the one the pack names.

    The CLI runs the pack in the virtualenv its ``PulumiPolicy.yaml`` names (ours:
    the project's ``../.venv``). Where that does not exist (the dependencies installed
    into an environment of the user's own, or CI's interpreter), this interpreter runs
    it instead, when it has pulumi-policy: it is the one the program runs in too.
    """
    import importlib.util

    from ruamel.yaml import YAML

    project = pack / "PulumiPolicy.yaml"
    if not project.is_file():
        raise PolicyPackError(
            f"{pack} is not a policy pack (no PulumiPolicy.yaml); pass --policy-pack <folder>"
        )
    spec = YAML(typ="safe").load(project.read_text(encoding="utf-8")) or {}
    runtime = spec.get("runtime")
    name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if name != "python":
        raise PolicyPackError(
            f"{project}: runtime {name!r}; the offline plan runs Python packs only "
            "(use `pulumi preview --policy-pack` for others)"
        )
    options = (runtime.get("options") or {}) if isinstance(runtime, dict) else {}
    virtualenv = options.get("virtualenv")
    if not virtualenv:
        return sys.executable, None
    python = (pack / str(virtualenv)).absolute() / "bin" / "python"
    if python.exists():
        return str(python), None
    if importlib.util.find_spec("pulumi_policy") is None:
        raise PolicyPackError(
            f"{project}: the virtualenv {virtualenv} has no bin/python, and this interpreter "
            f"({sys.executable}) has no pulumi-policy; create it (`pulumi install` in the "
            "project), install requirements.txt here, or fix runtime.options.virtualenv"
        )
    return sys.executable, f"{project.name}'s virtualenv {virtualenv} does not exist"


def _to_wire(value: Any) -> Any:
    """A recorded value as the engine marshals it with KeepUnknowns and KeepSecrets."""
    from llmops_infra.offline.engine import UNKNOWN, Secret, is_unknown

    if isinstance(value, Secret):
        return {_SIG_KEY: _SECRET_SIG, "value": _to_wire(value.value)}
    if is_unknown(value):
        return UNKNOWN  # the engine sends every unknown as the unknown string
    if isinstance(value, Mapping):
        return {str(k): _to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_wire(v) for v in value]
    return value


def _secret_strings(value: Any, inside: bool = False) -> Iterable[str]:
    from llmops_infra.offline.engine import Secret

    if isinstance(value, Secret):
        yield from _secret_strings(value.value, True)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secret_strings(item, inside)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_strings(item, inside)
    elif inside and isinstance(value, str) and len(value) >= 4:
        yield value


class PolicyAnalyzer:
    """A policy pack's analyzer process; a context manager that kills it on exit.

    The process starts in the constructor and imports while the caller does
    other work (the program's run, say); the first call waits for its port.
    """

    def __init__(
        self,
        pack: Path,
        *,
        project: str = "llmops",
        stack: str = "dev",
        config: Mapping[str, str] | None = None,
    ) -> None:
        self.pack = pack.resolve()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
        # What the CLI gives a pack: the stack's configuration and its names.
        env.update(
            PULUMI_PROJECT=project,
            PULUMI_STACK=stack,
            PULUMI_DRY_RUN="true",
            PULUMI_CONFIG=json.dumps(dict(config or {})),
        )
        python, self.substitute = _pack_python(self.pack)
        self.python = python
        """The interpreter the pack runs with."""
        # A file, not a pipe: a chatty pack never blocks on a full pipe nobody reads.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._process = subprocess.Popen(
            [python, "-u", "-m", "pulumi.policy", _NO_ENGINE, "."],
            cwd=self.pack,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._drain: threading.Thread | None = None
        self._info: dict[str, Any] | None = None
        self._stub: Any = None
        self._channel: Any = None

    @property
    def pid(self) -> int:
        """The pack's process id (gone once :meth:`close` has run)."""
        return self._process.pid

    def __enter__(self) -> PolicyAnalyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and kill the pack's process."""
        if self._channel is not None:
            self._channel.close()
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._drain is not None:
            self._drain.join()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._stderr.close()

    def _failure(self, what: str) -> PolicyPackError:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._stderr.seek(0)
        err = self._stderr.read().decode(errors="replace")
        lines = [line for line in err.splitlines() if line.strip()]
        detail = lines[-1].strip() if lines else f"exit status {self._process.returncode}"
        return PolicyPackError(f"the policy pack {self.pack} {what}: {detail}")

    def _discard_stdout(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        while os.read(stdout.fileno(), 4096):
            pass

    def _call(self, method: str, request: Any) -> Any:
        """One RPC; a pack's failure becomes one line, not a gRPC traceback."""
        import grpc  # type: ignore[import-untyped]

        try:
            return getattr(self._connect(), method)(request)
        except grpc.RpcError as err:
            if self._process.poll() is not None:
                raise self._failure(f"stopped during {method}") from None
            details = (err.details() or str(err.code())).strip().splitlines()
            raise PolicyPackError(
                f"the policy pack {self.pack} failed in {method}: {details[-1] if details else ''}"
            ) from None

    def _connect(self) -> Any:
        if self._stub is not None:
            return self._stub
        import grpc
        from pulumi.runtime.proto import analyzer_pb2_grpc

        assert self._process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self._process.stdout, selectors.EVENT_READ)
        line = b""
        while not line.endswith(b"\n"):
            # No clock here (the infrastructure package reads none): each read has its timeout.
            if not selector.select(timeout=START_TIMEOUT):
                raise self._failure(f"printed no port within {START_TIMEOUT:g} s")
            chunk = os.read(self._process.stdout.fileno(), 64)
            if not chunk:
                raise self._failure("stopped before it served")
            line += chunk
        selector.close()
        # Whatever the pack prints later is read and dropped, as nobody shows it.
        self._drain = threading.Thread(target=self._discard_stdout, daemon=True)
        self._drain.start()
        port = int(line.strip())
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        return self._stub

    def info(self) -> dict[str, Any]:
        """The pack's name and its policies (name, default level, config schema, kind)."""
        from google.protobuf import empty_pb2, json_format  # type: ignore[import-untyped]
        from pulumi.runtime.proto import analyzer_pb2

        if self._info is not None:
            return self._info
        response = self._call("GetAnalyzerInfo", empty_pb2.Empty())
        policies = []
        for policy in response.policies:
            schema = json_format.MessageToDict(policy.configSchema)
            policies.append(
                {
                    "name": policy.name,
                    "level": LEVELS[policy.enforcementLevel],
                    "schema": {
                        "properties": schema.get("properties") or {},
                        "required": list(policy.configSchema.required),
                    },
                    "stack": policy.policy_type == analyzer_pb2.POLICY_TYPE_STACK,
                }
            )
        self._info = {"name": response.name, "policies": policies}
        return self._info

    def analyze(
        self, resources: Sequence[Any], pack_config: Mapping[str, Any] | None = None
    ) -> list[Violation]:
        """Configure the pack, analyze every recorded resource; the violations, in order.

        ``resources`` are ``llmops_infra.offline.engine.RecordedResource``s. A secret's value never
        appears in a returned message, whatever the pack writes.
        """
        from pulumi.runtime.proto import analyzer_pb2

        info = self.info()
        reconciled = reconcile_config(info["policies"], pack_config or {})
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in reconciled.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = LEVELS.index(level)
            entry.properties.update(props)
        self._call("Configure", request)

        by_urn = {r.urn: r for r in resources}
        diagnostics: list[tuple[str, Any]] = []
        for resource in resources:
            diagnostics += [
                (resource.urn, d)
                for d in self._call("Analyze", self._analyze_request(resource, by_urn)).diagnostics
            ]
        if any(p["stack"] for p in info["policies"]):
            stack_request = analyzer_pb2.AnalyzeStackRequest()
            for resource in resources:
                item = stack_request.resources.add(
                    urn=resource.urn, type=resource.type, name=resource.name
                )
                item.properties.update(_to_wire(resource.outputs))
                item.parent = resource.parent
                item.dependencies.extend(resource.dependencies)
            diagnostics += [("", d) for d in self._call("AnalyzeStack", stack_request).diagnostics]

        secrets = sorted(
            {s for r in resources for s in _secret_strings([r.inputs, r.outputs])},
            key=len,
            reverse=True,
        )
        violations = []
        for urn, diagnostic in diagnostics:
            message = diagnostic.message
            if message.startswith(diagnostic.description):
                message = message[len(diagnostic.description) :].strip()
            for secret in secrets:
                message = message.replace(secret, SECRET_MASK)
            violations.append(
                Violation(
                    policy=diagnostic.policyName,
                    level=LEVELS[diagnostic.enforcementLevel],
                    message=message or diagnostic.description,
                    description=diagnostic.description,
                    urn=diagnostic.urn or urn,
                    pack=diagnostic.policyPackName,
                )
            )
        return violations

    def _analyze_request(self, resource: Any, by_urn: Mapping[str, Any]) -> Any:
        from pulumi.runtime.proto import analyzer_pb2

        request = analyzer_pb2.AnalyzeRequest(
            urn=resource.urn, type=resource.type, name=resource.name
        )
        request.properties.update(_to_wire(resource.inputs))
        request.options.parent = resource.parent
        provider_urn = resource.provider.rsplit("::", 1)[0] if resource.provider else ""
        provider = by_urn.get(provider_urn)
        if provider is not None:
            request.provider.urn = provider.urn
            request.provider.type = provider.type
            request.provider.name = provider.name
            request.provider.properties.update(_to_wire(provider.inputs))
        return request
