"""The Unity Catalog schema that holds the lab's prompt in MLflow's Prompt Registry.

On Databricks the Prompt Registry lives in Unity Catalog: a prompt is an object
of a schema, named ``<catalog>.<schema>.<prompt>``. With ``llmops:catalog`` set
the stack creates the schema (``llmops:schema``) in that existing catalog and
grants the account's users what Databricks documents a user needs there to view
and create prompts: ``CREATE FUNCTION``, ``EXECUTE`` and ``MANAGE`` on the schema
(with ``USE SCHEMA`` to reach it). ``USE CATALOG`` on the catalog is the catalog
owner's to grant; the stack does not own the catalog and leaves its grants alone.

Sources (read 2026-12-07):
- Databricks, "Create and edit prompts" (MLflow 3 Prompt Registry):
  https://docs.databricks.com/aws/mlflow3/genai/prompt-version-mgmt/prompt-registry/create-and-edit-prompts
  "You must have the CREATE FUNCTION, EXECUTE, and MANAGE privileges on the Unity
  Catalog schema" to view or create prompts.
- ``pulumi_databricks`` ``schema.py`` (``catalog_name``, ``name``, ``comment``,
  ``force_destroy``) and ``grants.py`` (``schema`` is the schema's full name;
  ``GrantsGrantArgs(principal, privileges)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_databricks as databricks

from workload import contract

__all__ = ["PROMPT_PRIVILEGES", "USERS", "PromptSchema", "PromptSchemaArgs"]

#: Unity Catalog's built-in group of every user of the account (workspace groups are not
#: Unity Catalog principals).
USERS: Final = "account users"
#: What a user needs on the schema to read and register prompts (the page above).
PROMPT_PRIVILEGES: Final = ("USE_SCHEMA", "CREATE_FUNCTION", "EXECUTE", "MANAGE")


@dataclass(frozen=True)
class PromptSchemaArgs:
    """Where the lab's prompt lives."""

    catalog: str
    """An existing Unity Catalog catalog (``llmops:catalog``)."""
    schema: str
    """The schema to create in it (``llmops:schema``)."""


class PromptSchema(pulumi.ComponentResource):
    """The schema and its grants; ``prompt_name`` is the lab's prompt's three-level name.

    Create it with the workspace's provider (``ResourceOptions(provider=...)``).
    """

    prompt_name: pulumi.Output[str]
    """``<catalog>.<schema>.lab_chat``: the output ``mlflow_prompt_name``."""

    def __init__(
        self, name: str, args: PromptSchemaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:databricks:PromptSchema", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        schema = databricks.Schema(
            f"{name}-schema",
            catalog_name=args.catalog,
            name=args.schema,
            comment="The LLMOps lab's prompt (MLflow Prompt Registry): python -m workload prompt",
            # A destroy takes the prompt's versions with it, as it takes the experiment.
            force_destroy=True,
            opts=child,
        )
        databricks.Grants(
            f"{name}-grants",
            schema=pulumi.Output.concat(schema.catalog_name, ".", schema.name),
            grants=[
                databricks.GrantsGrantArgs(principal=USERS, privileges=list(PROMPT_PRIVILEGES))
            ],
            opts=child,
        )
        self.prompt_name = pulumi.Output.concat(
            schema.catalog_name, ".", schema.name, f".{contract.LAB_PROMPT}"
        )
        self.register_outputs({"prompt_name": self.prompt_name})
