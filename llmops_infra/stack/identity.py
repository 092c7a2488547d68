"""Identities in the stack's state that earlier versions of this program created.

A resource's URN includes its ancestors' types and names. When a component is
re-parented or its type renamed, the next ``pulumi up`` would create a new copy
and delete the old one (the workspace, the account, the experiment and its
traces) unless the resource names its former identity in ``aliases``.
``tests/data/urns-dev-2026-11.txt`` holds the URNs of the layout before the
lab's steps became components of their own; ``tests/test_identity.py`` proves
each one is still claimed.
"""

from __future__ import annotations

from typing import Final

import pulumi

__all__ = ["FORMER_DATABRICKS_TYPE", "formerly_under_databricks"]

#: Until 2026-11 one component held the workspace, the cluster, the lab and the jobs.
FORMER_DATABRICKS_TYPE: Final = "llmops:databricks:Databricks"
_FORMER_DATABRICKS_NAME: Final = "databricks"


def formerly_under_databricks() -> pulumi.Alias:
    """The alias of a resource that was a direct child of the former ``databricks`` component."""
    former_parent = (
        f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::"
        f"{FORMER_DATABRICKS_TYPE}::{_FORMER_DATABRICKS_NAME}"
    )
    return pulumi.Alias(parent=former_parent)
