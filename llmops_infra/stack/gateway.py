"""One governed door to the model: a Databricks serving endpoint with AI Gateway per deployment.

The lab calls Azure OpenAI with the account's key. In gateway mode every caller
goes through a Mosaic AI Model Serving endpoint whose served entity is an
*external model* (Azure OpenAI): the key stays in the stack's Databricks secret,
which only the endpoint reads, and each user or job calls with their own
Databricks identity. AI Gateway on the endpoint adds what a shared lab lacks:
rate limits for the whole endpoint and for each user, usage tracking (system
tables), an inference table of prompts and answers, and guardrails.

Sources (read 2026-12-05):
- ``pulumi_databricks`` 1.118 ``model_serving.py``, ``_inputs.py`` and
  ``permissions.py``: every argument name below; rate-limit ``key`` is ``user``,
  ``user_group``, ``service_principal`` or ``endpoint`` (the default), ``renewal_period``
  only ``minute``; the PII filter's behavior only ``BLOCK``; a served entity's name,
  when not given, defaults to the external model's name.
- Microsoft Learn, "Configure AI Gateway on model serving endpoints": usage tracking
  writes to ``system.serving.endpoint_usage`` (Unity Catalog); inference tables need
  Unity Catalog; the keyword and topic guardrails are deprecated.
- databricks/terraform-provider-databricks issue #5504 (2026-03-21): an enabled
  ``ai_gateway.inference_table_config`` is not disabled by setting ``enabled = false``.
  Its source (``serving/resource_model_serving.go``, ``common/reflect_resource.go``, read
  2026-12-07) says why: the request is built with ``GetOk``, which skips a false value,
  without ``ForceSendFields``, so ``enabled = false`` never reaches Databricks. An update
  calls the config, tags and AI Gateway APIs only: a changed ``description`` is never sent,
  and ``name`` is the one argument that forces a replacement.

The provider reads the whole endpoint back and diffs what the program sends against it
(nothing under ``ai_gateway`` is computed), so the stack states every value Databricks would
otherwise fill in (the served entity's name, the traffic route, the inference table's
prefix), keeps sending an inference table it once sent (Databricks keeps it), and replaces
an endpoint whose description changes: a second ``pulumi up`` shows no diff.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_databricks as databricks

from workload.model.pacing import default_rpm

__all__ = [
    "ENDPOINT_PREFIX",
    "GatewayDeployment",
    "LabGateway",
    "LabGatewayArgs",
    "endpoint_name",
    "inference_table_prefix",
    "secret_reference",
]

#: docs/reference.md: each deployment's endpoint is ``llmops-<deployment name>``.
ENDPOINT_PREFIX: Final = "llmops-"
#: The external model: Azure OpenAI through the OpenAI provider, chat completions.
_PROVIDER: Final = "openai"
_TASK: Final = "llm/v1/chat"
_API_TYPE: Final = "azure"  # key (access token) validation; ``azuread`` is Entra ID
#: Every user of the workspace may call the endpoints; none sees the key.
_USERS_GROUP: Final = "users"
_CAN_QUERY: Final = "CAN_QUERY"
#: Where the endpoint's inference table is, as Pulumi names the path (``ignore_changes``).
_TABLE_PATH: Final = "aiGateway.inferenceTableConfig"


#: A serving endpoint's (and a served entity's) name: letters, digits, dashes, underscores
#: (pulumi_databricks 1.118, ``ModelServingArgs.name``), 1 to 63 of them (Databricks REST API
#: reference, "Get a single serving endpoint", read 2026-12-05).
_ENDPOINT_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,63}")


def endpoint_name(deployment: str, key: str = "deploymentName") -> str:
    """The serving endpoint in front of one deployment (the stack outputs name it so).

    Azure accepts deployment names Databricks does not accept for an endpoint (``gpt-4.1``):
    such a name stops the program, naming ``key``, before anything is created.
    """
    name = f"{ENDPOINT_PREFIX}{deployment}"
    if not _ENDPOINT_NAME.fullmatch(name):
        raise pulumi.RunError(
            f"invalid stack configuration: llmops:{key} = {deployment!r} cannot name the "
            f"gateway's serving endpoint {name!r}: Databricks allows only letters, digits, "
            f"dashes and underscores there, at most 63; choose such a name for llmops:{key} "
            f"(at most {63 - len(ENDPOINT_PREFIX)} characters), or set llmops:gateway false"
        )
    return name


def inference_table_prefix(endpoint: str) -> str:
    """The endpoint's table prefix: its name in Unity Catalog's spelling, no dashes and lower
    case (Unity Catalog stores all object names in lower case: Microsoft Learn, "Unity
    Catalog requirements and limitations", read 2026-12-07)."""
    return endpoint.replace("-", "_").lower()


@dataclass(frozen=True)
class GatewayDeployment:
    """One Azure OpenAI deployment the gateway fronts, with the limits it has at Azure."""

    deployment: str
    """The Azure deployment's name (the external model's ``openai_deployment_name``)."""
    model: str
    """The model deployed (``gpt-4o``): the external model's ``name``."""
    tokens_per_minute: int
    """The deployment's TPM (capacity x 1000): the endpoint never allows more."""
    user_tokens_per_minute: int = 0
    """Each user's token limit on this endpoint; 0 = none beyond the endpoint's."""

    @property
    def requests_per_minute(self) -> int:
        """Azure's RPM for this Standard deployment (6 per 1,000 TPM)."""
        return default_rpm(self.tokens_per_minute)


@dataclass(frozen=True)
class LabGatewayArgs:
    """What the endpoints front, how they reach it, and what AI Gateway adds."""

    openai_endpoint: pulumi.Input[str]
    """The account's endpoint, ``https://<subdomain>.openai.azure.com/``."""
    api_version: str
    """The Azure OpenAI API version the endpoints call (``llmops:openaiApiVersion``)."""
    key_reference: str
    """The key as a Databricks secret reference, ``{{secrets/<scope>/<key>}}``; never the key."""
    key_secret: pulumi.Resource
    """The secret holding the key: an endpoint created before it cannot reach the model."""
    chat: GatewayDeployment
    """The chat deployment."""
    judge: GatewayDeployment | None = None
    """The judge deployment, when the stack has one."""
    guardrails: bool = False
    """Block PII in requests and answers, and unsafe requests."""
    inference_table: tuple[str, str] | None = None
    """``(catalog, schema)`` of the inference tables (Unity Catalog), or None."""


def _rate_limits(target: GatewayDeployment) -> list[databricks.ModelServingAiGatewayRateLimitArgs]:
    """At most what the deployment allows: a gateway limit above Azure's only turns the
    gateway's answer into Azure's 429."""
    limits = [
        databricks.ModelServingAiGatewayRateLimitArgs(
            key="endpoint", renewal_period="minute", tokens=target.tokens_per_minute
        ),
        databricks.ModelServingAiGatewayRateLimitArgs(
            key="endpoint", renewal_period="minute", calls=target.requests_per_minute
        ),
    ]
    if target.user_tokens_per_minute > 0:
        limits.append(
            databricks.ModelServingAiGatewayRateLimitArgs(
                key="user",
                renewal_period="minute",
                tokens=min(target.user_tokens_per_minute, target.tokens_per_minute),
            )
        )
    return limits


def _description(deployment: str) -> str:
    """The endpoint's description. The provider never updates one (it is sent at creation
    only), so its one variable part is the deployment, which names the endpoint too: a new
    deployment is a new endpoint anyway. A new wording replaces every endpoint
    (``replace_on_changes``); existing stacks hold this one."""
    return f"Azure OpenAI deployment {deployment} behind AI Gateway (LLMOps lab, llmops:gateway)."


def _guardrails() -> databricks.ModelServingAiGatewayGuardrailsArgs:
    """PII blocked both ways, the safety filter on requests (no keyword or topic lists:
    Databricks deprecates them)."""
    return databricks.ModelServingAiGatewayGuardrailsArgs(
        input=databricks.ModelServingAiGatewayGuardrailsInputArgs(
            pii=databricks.ModelServingAiGatewayGuardrailsInputPiiArgs(behavior="BLOCK"),
            safety=True,
        ),
        output=databricks.ModelServingAiGatewayGuardrailsOutputArgs(
            pii=databricks.ModelServingAiGatewayGuardrailsOutputPiiArgs(behavior="BLOCK"),
        ),
    )


class LabGateway(pulumi.ComponentResource):
    """A serving endpoint with AI Gateway in front of each deployment, queryable by ``users``.

    Create it with the workspace's provider; its children inherit it.
    """

    chat_endpoint: pulumi.Output[str]
    """The chat deployment's endpoint name (``databricks_serving_endpoint``)."""
    judge_endpoint: pulumi.Output[str]
    """The judge deployment's endpoint name, "" without a judge."""

    def __init__(
        self, name: str, args: LabGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llmops:databricks:LabGateway", name, None, opts)
        self._args = args
        self.chat_endpoint = self._endpoint(f"{name}-chat", args.chat).name
        self.judge_endpoint = (
            self._endpoint(f"{name}-judge", args.judge).name
            if args.judge is not None
            else pulumi.Output.from_input("")
        )
        self.register_outputs(
            {"chat_endpoint": self.chat_endpoint, "judge_endpoint": self.judge_endpoint}
        )

    def _endpoint(self, name: str, target: GatewayDeployment) -> databricks.ModelServing:
        args = self._args
        endpoint = endpoint_name(target.deployment)
        entity = target.deployment
        serving = databricks.ModelServing(
            name,
            name=endpoint,
            description=_description(target.deployment),
            config=databricks.ModelServingConfigArgs(
                served_entities=[
                    databricks.ModelServingConfigServedEntityArgs(
                        # Named, not left to Databricks' default, so the route below names it.
                        name=entity,
                        external_model=databricks.ModelServingConfigServedEntityExternalModelArgs(
                            name=target.model,
                            provider=_PROVIDER,
                            task=_TASK,
                            openai_config=databricks.ModelServingConfigServedEntityExternalModelOpenaiConfigArgs(
                                openai_api_type=_API_TYPE,
                                openai_api_base=args.openai_endpoint,
                                openai_deployment_name=target.deployment,
                                openai_api_version=args.api_version,
                                # A reference Databricks resolves inside the endpoint.
                                openai_api_key=args.key_reference,
                            ),
                        ),
                    )
                ],
                # The route Databricks would add by itself, stated: no diff on the next up.
                traffic_config=databricks.ModelServingConfigTrafficConfigArgs(
                    routes=[
                        databricks.ModelServingConfigTrafficConfigRouteArgs(
                            served_entity_name=entity, traffic_percentage=100
                        )
                    ]
                ),
            ),
            ai_gateway=databricks.ModelServingAiGatewayArgs(
                usage_tracking_config=databricks.ModelServingAiGatewayUsageTrackingConfigArgs(
                    enabled=True
                ),
                rate_limits=_rate_limits(target),
                inference_table_config=(
                    databricks.ModelServingAiGatewayInferenceTableConfigArgs(
                        catalog_name=args.inference_table[0],
                        schema_name=args.inference_table[1],
                        table_name_prefix=inference_table_prefix(endpoint),
                        enabled=True,
                    )
                    if args.inference_table is not None
                    else None
                ),
                guardrails=_guardrails() if args.guardrails else None,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.key_secret],
                # Without llmops:inferenceTable, send the table as the stack last sent it:
                # none for a stack that never had one; for one that had it, the table
                # Databricks keeps and reads back (the provider cannot send it disabled).
                ignore_changes=[_TABLE_PATH] if args.inference_table is None else [],
                # The provider leaves a changed description as it was: replace instead of
                # diffing on every up, the old endpoint first (the new one takes its name).
                replace_on_changes=["description"],
                delete_before_replace=True,
            ),
        )
        databricks.Permissions(
            f"{name}-permissions",
            serving_endpoint_id=serving.serving_endpoint_id,
            access_controls=[
                databricks.PermissionsAccessControlArgs(
                    group_name=_USERS_GROUP, permission_level=_CAN_QUERY
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return serving


def secret_reference(scope: str, key: str) -> str:
    """``{{secrets/<scope>/<key>}}``: how Databricks configurations name a secret."""
    return f"{{{{secrets/{scope}/{key}}}}}"
