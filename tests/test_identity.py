"""Stacks deployed before the redesign keep every resource: each old URN is still claimed.

``tests/data/urns-dev-2026-11.txt`` holds the URNs (as the engine writes them)
that the program registered for the dev stack before the lab's steps became
components of their own. A URN that no resource of today's program claims, by
its own URN or an alias, would be deleted (and a new copy created) by the next
``pulumi up``: the workspace, the account, the experiment and its traces.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from conftest import Run

from llmops_infra.offline.engine import engine_urns, match_previous_state
from llmops_infra.offline.stack_files import read_stack_config
from workload.contract import PROJECT_DIR

BEFORE = Path(__file__).with_name("data") / "urns-dev-2026-11.txt"
_FILE = "workspaceFile:WorkspaceFile"


def test_every_resource_of_a_stack_deployed_before_keeps_its_identity(run: Run) -> None:
    old = BEFORE.read_text().split()
    assert len(old) == 34, "the recorded state of the dev stack"
    today = run(read_stack_config(PROJECT_DIR, "dev"), stack="dev")
    matched = match_previous_state(today, old)
    claimed = Counter(matched.values())
    # The per-module workspace files give way to one wheel: the next `up` deletes them and
    # uploads the wheel; every other resource keeps its identity (the jobs are updated).
    lost = [urn for urn in old if urn not in claimed and _FILE not in urn]
    assert not lost, f"the next `pulumi up` would delete and recreate: {lost}"
    assert all(n == 1 for n in claimed.values()), "no old resource is claimed twice"
    moved = {new: o for new, o in matched.items() if new != o}
    assert moved, "the redesign moved resources; they are claimed through aliases"
    real = set(engine_urns(today).values())
    files = [urn for urn in real if _FILE in urn]
    assert files == [
        "urn:pulumi:dev::llmops::llmops:databricks:LabJobs$databricks:index/workspaceFile:"
        "WorkspaceFile::databricks-jobs-wheel"
    ], "one workspace file: the wheel"
    assert not [urn for urn in old if _FILE in urn and urn in claimed], "no module file is kept"
    new = real - set(matched) - set(files)
    assert new == {
        # The cluster's new component, which holds no cloud resource of its own ...
        "urn:pulumi:dev::llmops::llmops:databricks:LabCluster::databricks-cluster",
        # ... and the eval job, new with `workload eval`.
        "urn:pulumi:dev::llmops::llmops:databricks:LabJobs$databricks:index/job:Job"
        "::databricks-jobs-eval",
    }, "nothing else is created anew"


def test_a_component_moved_without_an_alias_loses_its_children(run: Run) -> None:
    """The check itself: a state that names a parent the program never had matches nothing."""
    old = [
        urn.replace("llmops:databricks:Databricks$", "llmops:databricks:Elsewhere$")
        for urn in BEFORE.read_text().split()
    ]
    today = run(read_stack_config(PROJECT_DIR, "dev"), stack="dev")
    claimed = set(match_previous_state(today, old).values())
    assert (
        "urn:pulumi:dev::llmops::llmops:databricks:Elsewhere$azure-native:databricks:Workspace"
        "::databricks-workspace" not in claimed
    )
