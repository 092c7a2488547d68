"""The lab's sections "Azure Databricks ワークスペースをプロビジョニングする" and
"クラスターの作成".

One component: the Premium workspace in the lab's resource group and region,
a Databricks provider bound to it, and the single-node 16.4 LTS ML cluster
the lab creates in the workspace UI. Inside it, the lab's MLflow section
(``databricks_lab``): the key as a secret, the experiment, the cluster's
environment and libraries, and the workload as jobs on the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_databricks as databricks
from pulumi_azure_native import databricks as azure_databricks

from llmops_infra.databricks_lab import LabEnvironment, LabEnvironmentArgs, LabJobs, LabJobsArgs

__all__ = ["Databricks", "DatabricksArgs"]

#: What the UI's "単一ノード: オン" sets: no workers, a local Spark master.
_SINGLE_NODE_SPARK_CONF = {
    "spark.databricks.cluster.profile": "singleNode",
    "spark.master": "local[*]",
}
_SINGLE_NODE_TAGS = {"ResourceClass": "SingleNode"}
#: The workload's folder in the deploying user's home (the jobs run as that user).
_WORKLOAD_FOLDER = "llmops-workload"


@dataclass(frozen=True)
class DatabricksArgs:
    """What the lab's portal and cluster forms ask for."""

    resource_group_name: pulumi.Input[str]
    """リソース グループ: the same group as the Azure OpenAI account."""
    location: pulumi.Input[str]
    """リージョン: the same region as the Azure OpenAI account."""
    workspace_name: pulumi.Input[str]
    """[名前]: the workspace's name."""
    managed_resource_group_id: pulumi.Input[str]
    """ARM id of the workspace's own managed group; it must not exist yet."""
    sku: str
    """価格レベル: ``premium`` or ``trial``."""
    spark_version: str
    """Databricks ランタイム: 16.4 LTS with 機械学習 on."""
    node_type: str
    """worker の種類 (the driver's VM size on a single node)."""
    autotermination_minutes: int
    """Idle minutes before the cluster stops, so a forgotten lab costs little."""
    lab: LabEnvironmentArgs
    """The key, endpoint and experiment the cluster's environment carries."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the workspace and the cluster's VMs."""
    cluster_no_wait: bool = False
    """Let ``pulumi up`` go on once the cluster is created, without waiting for RUNNING."""


class Databricks(pulumi.ComponentResource):
    """A Databricks workspace with the lab's single-node ML cluster."""

    workspace_url: pulumi.Output[str]
    """``https://adb-<id>.<n>.azuredatabricks.net``."""
    workspace_resource_id: pulumi.Output[str]
    """ARM id of the workspace."""
    cluster_id: pulumi.Output[str]
    """The cluster's id in the workspace."""
    provider: databricks.Provider
    """The workspace-level provider, for more resources inside the workspace."""
    secret_scope: pulumi.Output[str]
    """The secret scope holding the Azure OpenAI key."""
    experiment_path: pulumi.Output[str]
    """Workspace path of the MLflow experiment the traces land in."""
    chat_job_id: pulumi.Output[str]
    """Id of the job that runs ``workload chat`` on the cluster."""
    monitor_job_id: pulumi.Output[str]
    """Id of the paused, scheduled job that runs ``workload monitor --fail-on-drift``."""

    def __init__(
        self, name: str, args: DatabricksArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:databricks:Databricks", name, None, opts)

        workspace = azure_databricks.Workspace(
            f"{name}-workspace",
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=azure_databricks.SkuArgs(name=args.sku),
            # Classic compute (the lab's cluster) needs Hybrid; Serverless has none.
            compute_mode=azure_databricks.ComputeMode.HYBRID,
            managed_resource_group_id=args.managed_resource_group_id,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.workspace_url = workspace.workspace_url.apply(lambda host: f"https://{host}")
        self.workspace_resource_id = workspace.id

        # Azure auth through the workspace's ARM id: `az login` or ARM_* variables.
        self.provider = databricks.Provider(
            f"{name}-provider",
            host=self.workspace_url,
            azure_workspace_resource_id=workspace.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_workspace = pulumi.ResourceOptions(parent=self, provider=self.provider)

        me = databricks.get_current_user_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self.provider)
        )
        environment = LabEnvironment(f"{name}-lab", args.lab, opts=in_workspace)
        cluster = databricks.Cluster(
            f"{name}-cluster",
            # クラスター名: the UI's default, "<user>'s cluster".
            cluster_name=me.user_name.apply(lambda user: f"{user}'s cluster"),
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
            single_user_name=me.user_name,
            autotermination_minutes=args.autotermination_minutes,
            # The lab's first cell, done once: its variables, the key as a secret reference.
            spark_env_vars=environment.spark_env_vars,
            libraries=environment.libraries,
            # The cluster start is the longest step of `pulumi up`; the jobs need only its id.
            no_wait=args.cluster_no_wait,
            # A cluster that starts before its secret exists fails to start.
            opts=pulumi.ResourceOptions.merge(
                in_workspace, pulumi.ResourceOptions(depends_on=[environment.key_secret])
            ),
        )
        self.cluster_id = cluster.cluster_id

        jobs = LabJobs(
            f"{name}-jobs",
            LabJobsArgs(
                cluster_id=cluster.cluster_id,
                folder=me.home.apply(lambda home: f"{home}/{_WORKLOAD_FOLDER}"),
            ),
            opts=in_workspace,
        )
        self.secret_scope = environment.secret_scope
        self.experiment_path = environment.experiment_path
        self.chat_job_id = jobs.chat_job_id
        self.monitor_job_id = jobs.monitor_job_id

        self.register_outputs(
            {
                "workspace_url": self.workspace_url,
                "workspace_resource_id": self.workspace_resource_id,
                "cluster_id": self.cluster_id,
                "secret_scope": self.secret_scope,
                "experiment_path": self.experiment_path,
                "chat_job_id": self.chat_job_id,
                "monitor_job_id": self.monitor_job_id,
            }
        )
