"""The lab's section "クラスターの作成": the single-node 16.4 LTS ML cluster.

One component, created through the workspace's provider: the cluster the lab
makes in the workspace UI, started with the lab's environment (the first cell's
variables, the key only as a secret reference) and the workload's libraries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_databricks as databricks

from llmops_infra.stack.identity import formerly_under_databricks

__all__ = ["LabCluster", "LabClusterArgs"]

#: What the UI's "単一ノード: オン" sets: no workers, a local Spark master.
_SINGLE_NODE_SPARK_CONF: Final = {
    "spark.databricks.cluster.profile": "singleNode",
    "spark.master": "local[*]",
}
_SINGLE_NODE_TAGS: Final = {"ResourceClass": "SingleNode"}


@dataclass(frozen=True)
class LabClusterArgs:
    """What the lab's cluster form asks for, and what the cluster starts with."""

    user_name: pulumi.Input[str]
    """The deploying user: the cluster is theirs ("<user>'s cluster", single user)."""
    spark_version: str
    """Databricks ランタイム: 16.4 LTS with 機械学習 on."""
    node_type: str
    """ノードの種類 (the driver's VM size on a single node)."""
    autotermination_minutes: int
    """Idle minutes before the cluster stops, so a forgotten lab costs little."""
    spark_env_vars: Mapping[str, pulumi.Input[str]]
    """The cluster's environment (the lab's first cell)."""
    libraries: Sequence[databricks.ClusterLibraryArgs]
    """The workload's pinned packages."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the cluster's VMs."""
    no_wait: bool = False
    """Let ``pulumi up`` go on once the cluster is created, without waiting for RUNNING."""
    starts_after: Sequence[pulumi.Resource] = ()
    """What must exist before the cluster starts (its secret: else the start fails)."""


class LabCluster(pulumi.ComponentResource):
    """The lab's single-node ML cluster. Create it with the workspace's provider."""

    cluster_id: pulumi.Output[str]
    """The cluster's id in the workspace."""

    def __init__(
        self, name: str, args: LabClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:databricks:LabCluster", name, None, opts)
        cluster = databricks.Cluster(
            name,
            # クラスター名: the UI's default, "<user>'s cluster".
            cluster_name=pulumi.Output.from_input(args.user_name).apply(
                lambda user: f"{user}'s cluster"
            ),
            spark_version=args.spark_version,
            node_type_id=args.node_type,
            # Photon Acceleration を使用する: オフ
            runtime_engine="STANDARD",
            # 単一ノード: オン
            num_workers=0,
            spark_conf=_SINGLE_NODE_SPARK_CONF,
            custom_tags={**args.tags, **_SINGLE_NODE_TAGS},
            # Dedicated to one user: the access mode the ML runtime supports.
            data_security_mode="SINGLE_USER",
            single_user_name=args.user_name,
            autotermination_minutes=args.autotermination_minutes,
            spark_env_vars=dict(args.spark_env_vars),
            libraries=list(args.libraries),
            # The cluster start is the longest step of `pulumi up`; the jobs need only its id.
            no_wait=args.no_wait,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.starts_after),
                # Until 2026-11 the cluster sat directly under the `databricks` component.
                aliases=[formerly_under_databricks()],
            ),
        )
        self.cluster_id = cluster.cluster_id
        self.register_outputs({"cluster_id": self.cluster_id})
