"""Benchmark 2, the ``pulumi up`` critical path, under the mock engine with provisioning delays.

Each resource's creation sleeps in proportion to how long Azure or Databricks
really takes to create one of its type (:data:`PROVISIONING_SECONDS`, scaled by
:data:`SCALE`), inside ``Mocks.new_resource``. Pulumi's mock monitor calls it
from the event loop's executor threads, as the real Python language host
calls the engine's ``RegisterResource``, so registrations whose inputs are
ready proceed concurrently and the wall time shows how much of the stack
waits on what.

The floor is the critical-path bound of the recorded graph: each resource
can finish no earlier than the latest of its dependencies (``dependencies``
and its explicit provider) plus its own delay. Target: wall time at most
1.05 times the bound. The table also gives the ratio against doing the lab's
steps one after another (the sum of all delays), and the note names the
critical chain.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bench.common import PROJECT_DIR, BenchmarkError, Result, median
from llmops_infra.offline.resource_types import RESOURCE_TYPES

__all__ = ["PROVISIONING_SECONDS", "SCALE", "Graph", "critical_path", "run"]

TARGET_RATIO: Final = 1.05
#: Seconds of benchmark per second of real provisioning (full run; --quick uses 1/1000).
SCALE: Final = 1 / 50

#: How long creating one resource of each type takes in Azure or Databricks, in seconds:
#: the catalog's figures (sources and ranges in BENCHMARKS.md, "Provisioning figures"). A
#: type with no figure counts :data:`DEFAULT_SECONDS` (a Databricks REST call), named in the note.
PROVISIONING_SECONDS: Final[Mapping[str, float]] = {
    t.token: t.provisioning_seconds for t in RESOURCE_TYPES if t.answer is not None
}
DEFAULT_SECONDS: Final = 1.0
#: The cluster's creation if the provider did not wait for RUNNING (``no_wait``): the
#: Clusters API answers with the new id at once; a few seconds (estimate) for the call.
CLUSTER_NO_WAIT_SECONDS: Final = 5.0
CLUSTER_TYPE: Final = "databricks:index/cluster:Cluster"
#: A stopped cluster's start before a job runs: the cluster's provisioning figure (a cold VM
#: start, BENCHMARKS.md). Serverless jobs in performance-optimized mode (the default)
#: "typically start in less than a minute"; in standard mode "within 4 to 6 minutes"
#: (Microsoft Learn, "Choose a performance mode for serverless jobs and pipelines", read
#: 2026-12-05).
CLUSTER_START_SECONDS: Final = 300.0


@dataclass(frozen=True)
class Node:
    """One registered resource, as far as scheduling goes."""

    urn: str
    name: str
    type: str
    custom: bool
    parent: str
    waits_for: tuple[str, ...]
    """URNs it waits for: its ``dependencies`` and its explicit provider."""


@dataclass(frozen=True)
class Graph:
    """The recorded resources, with a delay (benchmark seconds) for each."""

    nodes: dict[str, Node]
    delays: dict[str, float]

    def expanded(self, urn: str) -> set[str]:
        """A component stands for the custom resources under it (as Pulumi expands it)."""
        node = self.nodes.get(urn)
        if node is None or node.custom:
            return {urn} if node is not None else set()
        out: set[str] = set()
        for child in self.nodes.values():
            if child.parent == urn:
                out |= self.expanded(child.urn)
        return out

    def waits_for(self, urn: str) -> set[str]:
        """The custom resources this one cannot start before."""
        out: set[str] = set()
        for dep in self.nodes[urn].waits_for:
            out |= self.expanded(dep)
        return out - {urn}


def critical_path(graph: Graph) -> tuple[float, list[str]]:
    """The longest path by delay through the graph: its length and its URNs, first to last."""
    finish: dict[str, float] = {}
    before: dict[str, str | None] = {}

    def visit(urn: str, stack: tuple[str, ...] = ()) -> float:
        if urn in finish:
            return finish[urn]
        if urn in stack:
            raise BenchmarkError(f"dependency cycle through {urn}")
        start, prev = 0.0, None
        for dep in graph.waits_for(urn):
            end = visit(dep, (*stack, urn))
            if end > start:
                start, prev = end, dep
        finish[urn] = start + graph.delays.get(urn, 0.0)
        before[urn] = prev
        return finish[urn]

    customs = [u for u, n in graph.nodes.items() if n.custom]
    if not customs:
        raise BenchmarkError("the program registered no resource")
    last = max(customs, key=visit)
    chain: list[str] = []
    cursor: str | None = last
    while cursor is not None:
        chain.append(cursor)
        cursor = before[cursor]
    return finish[last], chain[::-1]


def _delay_of(type_: str, scale: float, unknown: set[str]) -> float:
    if type_ not in PROVISIONING_SECONDS:
        unknown.add(type_)
    return PROVISIONING_SECONDS.get(type_, DEFAULT_SECONDS) * scale


def _preload_program() -> None:
    """The SDKs loaded and frozen once in the parent: a forked run's time is scheduling."""
    import sys

    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    from llmops_infra.offline.engine import preload_program

    preload_program()


def _child(conn: Any, scale: float, overrides: dict[str, str]) -> None:
    """One ``pulumi up`` under delayed mocks; sends back the wall time, graph and timeline."""
    try:
        from llmops_infra.offline import engine as mock_engine
        from llmops_infra.offline.stack_files import read_stack_config

        lock = threading.Lock()
        timeline: list[tuple[str, float, float]] = []
        unknown: set[str] = set()
        origin = [0.0]

        class DelayedMocks(mock_engine.ProviderMocks):
            def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
                start = time.perf_counter() - origin[0]
                if args.custom:
                    time.sleep(_delay_of(args.typ, scale, unknown))
                result = super().new_resource(args)
                with lock:
                    timeline.append((args.name, start, time.perf_counter() - origin[0]))
                return result

        # run_program builds its mocks from this module global; the child is thrown away.
        mock_engine.ProviderMocks = DelayedMocks  # type: ignore[misc]
        config = read_stack_config(mock_engine.PROJECT_DIR, "dev", overrides)
        origin[0] = time.perf_counter()
        program_run = mock_engine.run_program(config, stack="dev", preview=False)
        wall = time.perf_counter() - origin[0]
        nodes = {
            r.urn: Node(
                urn=r.urn,
                name=r.name,
                type=r.type,
                custom=r.custom,
                parent=r.parent,
                waits_for=tuple(r.dependencies)
                + ((r.provider.rsplit("::", 1)[0],) if r.provider else ()),
            )
            for r in program_run.resources
        }
        conn.send(("ok", (wall, nodes, timeline, sorted(unknown))))
    except BaseException as err:  # report to the parent, whatever it is
        conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


def _up(
    scale: float, overrides: dict[str, str] | None = None
) -> tuple[float, dict[str, Node], list[tuple[str, float, float]], list[str]]:
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, scale, overrides or {}))
    child.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        raise BenchmarkError(f"the program's process died (exit {child.exitcode})") from None
    finally:
        child.join()
    if status != "ok":
        raise BenchmarkError(f"the program failed under the mocks: {payload}")
    return payload  # type: ignore[no-any-return]


def _max_overlap(timeline: list[tuple[str, float, float]], min_length: float) -> int:
    """The most creations in flight at once, counting only those that waited at all."""
    events = sorted(
        [(s, 1) for _, s, e in timeline if e - s >= min_length]
        + [(e, -1) for _, s, e in timeline if e - s >= min_length]
    )
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def run(quick: bool) -> list[Result]:
    """Time delayed ``pulumi up`` runs against the graph's critical path and the serial sum."""
    _preload_program()
    scale = SCALE / 20 if quick else SCALE
    repetitions = 1 if quick else 5

    overhead, *_ = _up(0.0)  # the program's own time with no provisioning at all
    walls: list[float] = []
    for _ in range(repetitions):
        wall, nodes, timeline, unknown = _up(scale)
        walls.append(wall)

    unknown_set: set[str] = set()
    delays = {
        urn: _delay_of(n.type, scale, unknown_set) if n.custom else 0.0 for urn, n in nodes.items()
    }
    graph = Graph(nodes, delays)
    bound, chain = critical_path(graph)
    serial = sum(delays.values())
    wall = median(walls)
    ratio = wall / bound

    names = " -> ".join(
        f"{nodes[u].name} ({delays[u] / scale:.0f} s)" for u in chain if delays[u] > 0
    )
    real = f"{bound / scale / 60:.1f} min of provisioning"
    no_wait = {
        urn: CLUSTER_NO_WAIT_SECONDS * scale if nodes[urn].type == CLUSTER_TYPE else delay
        for urn, delay in delays.items()
    }
    no_wait_bound, _ = critical_path(Graph(nodes, no_wait))
    # The same per-type figures for llmops:compute serverless: no cluster in the graph.
    _, s_nodes, _, _ = _up(0.0, {"compute": "serverless", "region": "eastus2"})
    s_delays = {
        urn: _delay_of(n.type, scale, unknown_set) if n.custom else 0.0
        for urn, n in s_nodes.items()
    }
    serverless_bound, _ = critical_path(Graph(s_nodes, s_delays))
    notes = [
        f"critical chain: {names}; {real}",
        f"scale 1/{round(1 / scale)}; wall min-max {min(walls):.2f}-{max(walls):.2f} s; "
        f"program's own time at zero delay {overhead:.2f} s",
        f"peak concurrent creations {_max_overlap(timeline, min_length=scale)}",
        f"with llmops:clusterNoWait=true (the cluster not waited for): "
        f"{no_wait_bound / scale / 60:.1f} min",
        f"with llmops:compute=serverless (no cluster): {serverless_bound / scale / 60:.1f} min, "
        f"{serverless_bound / bound:.2f}x the cluster mode's critical path; a first job run "
        f"then starts in under 1 min (serverless, performance-optimized) instead of a "
        f"stopped cluster's {CLUSTER_START_SECONDS / 60:.0f} min",
    ]
    if unknown:
        notes.append(f"no provisioning figure for {', '.join(unknown)} ({DEFAULT_SECONDS} s each)")
    return [
        Result(
            name="2. pulumi up: wall vs critical path",
            measured=wall,
            floor=bound,
            unit="s",
            target=f"<= {TARGET_RATIO}x",
            met=ratio <= TARGET_RATIO,
            note="; ".join(notes),
        ),
        Result(
            name="2. pulumi up: wall vs steps one by one",
            measured=wall,
            floor=serial,
            unit="s",
            target="(info)",
            met=True,
            note=(
                f"the lab's {sum(1 for n in nodes.values() if n.custom)} resources created one "
                f"after another: {serial / scale / 60:.1f} min"
            ),
        ),
    ]
