"""The lab's prompt in MLflow's Prompt Registry: its name, push, list, which version a run uses.

Everything goes through MLflow's public prompt API (``mlflow.genai.register_prompt``,
``load_prompt``, ``set_prompt_alias``, prompt tags, ``MlflowClient``'s prompt
reads), so the same code works on a local store (sqlite, the demo) and on
Databricks, where the registry is Unity Catalog and the name has three levels.

What MLflow lacks is a record of an alias's moves; promote and rollback leave
one as prompt tags, one tag per move (``llmops.history.<alias>.<NNNN>``, a JSON
object): a tag per move keeps every value small, whatever a tag's length limit
is, and needs nothing beside the registry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from workload import contract
from workload.config.settings import tracks_to_databricks
from workload.errors import ServiceError, SettingsError, first_line
from workload.releases.template import ChatTemplate, packaged_template, parse_template

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import PromptVersion

__all__ = [
    "LOCAL_PROMPT_NAME",
    "PRODUCTION",
    "PromptChoice",
    "PushResult",
    "alias_version",
    "choose_prompt",
    "describe_prompt",
    "history",
    "newest_version",
    "now",
    "push_prompt",
    "record_move",
    "registered_template",
    "require_prompt_name",
    "resolve_prompt_name",
]

#: The prompt's name on a local store (the demo, a laptop), where names have one level.
LOCAL_PROMPT_NAME: Final = contract.LAB_PROMPT
#: The alias the lab's calls and jobs run, unless ``--prompt-version`` says otherwise.
PRODUCTION: Final = "production"
#: The prompt tags holding an alias's moves: ``llmops.history.<alias>.<NNNN>``.
_HISTORY_TAG: Final = "llmops.history.{alias}."


def resolve_prompt_name(
    flag: str | None, outputs: Mapping[str, Any], env: Mapping[str, str]
) -> str | None:
    """``--prompt-name``, else ``LLMOPS_PROMPT_NAME``, else the output ``mlflow_prompt_name``,
    else ``lab_chat`` on a local store; None when tracking to Databricks with no name (the
    stack has no ``llmops:catalog``, so Unity Catalog has no place for the prompt)."""
    for candidate in (
        flag,
        env.get(contract.ENV_PROMPT_NAME),
        outputs.get(contract.MLFLOW_PROMPT_NAME),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None if tracks_to_databricks(env) else LOCAL_PROMPT_NAME


def require_prompt_name(
    flag: str | None, outputs: Mapping[str, Any], env: Mapping[str, str]
) -> str:
    """The name for a command that manages the prompt; SettingsError when there is none."""
    name = resolve_prompt_name(flag, outputs, env)
    if name is None:
        raise SettingsError(
            "no prompt name for Unity Catalog: set llmops:catalog on the stack (its output "
            "mlflow_prompt_name), or give --prompt-name or LLMOPS_PROMPT_NAME "
            "(<catalog>.<schema>.lab_chat)"
        )
    return name


def _client() -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient()


def _registry_error(err: Exception, doing: str) -> ServiceError:
    import mlflow

    return ServiceError(
        f"the Prompt Registry at {mlflow.get_tracking_uri()} could not {doing}: {first_line(err)}"
    )


def _versions(name: str) -> list[PromptVersion]:
    """Every version of ``name``, newest first (none when the prompt does not exist)."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        if client.get_prompt(name) is None:
            return []
        found: list[PromptVersion] = []
        token: str | None = None
        while True:
            page = client.search_prompt_versions(name, max_results=100, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
    except MlflowException as err:
        raise _registry_error(err, f"read prompt {name!r}") from None
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def newest_version(name: str) -> PromptVersion | None:
    """The newest version of ``name``, or None when the registry has no such prompt."""
    versions = _versions(name)
    return versions[0] if versions else None


def registered_template(version: PromptVersion) -> ChatTemplate:
    """A registered version as a template (SettingsError when it is not a chat prompt)."""
    where = f"prompt {version.name} version {version.version}"
    if version.is_text_prompt:
        raise SettingsError(f"{where} is a text prompt; the lab's call needs a chat prompt")
    return parse_template(
        {"template": version.template, "model_config": version.model_config}, where
    )


@dataclass(frozen=True)
class PushResult:
    """What ``prompt push`` did."""

    name: str
    version: int
    created: bool
    """A new version was registered (False: the newest already had this content)."""


def push_prompt(
    name: str, template: ChatTemplate, *, message: str | None, alias: str | None
) -> PushResult:
    """Register ``template`` unless the newest version has the same messages and config.

    The first version also gets ``production``; ``alias`` points at the pushed (or the
    unchanged newest) version.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    newest = newest_version(name)
    created = newest is None or not registered_template(newest).same_as(template)
    try:
        if created:
            registered = mlflow.genai.register_prompt(
                name=name,
                template=template.as_template(),
                commit_message=message or template.commit_message,
                model_config=dict(template.model_config) or None,
            )
            version = int(registered.version)
        else:
            assert newest is not None
            version = int(newest.version)
        if newest is None:
            mlflow.genai.set_prompt_alias(name=name, alias=PRODUCTION, version=version)
        if alias:
            mlflow.genai.set_prompt_alias(name=name, alias=alias, version=version)
    except MlflowException as err:
        raise _registry_error(err, f"register prompt {name!r}") from None
    return PushResult(name, version, created)


def alias_version(name: str, alias: str) -> int | None:
    """The version ``alias`` points at, or None when it points nowhere."""
    from mlflow.exceptions import MlflowException

    try:
        version = _client().get_prompt_version_by_alias(name, alias)
    except MlflowException:
        return None
    return int(version.version) if version is not None else None


def record_move(name: str, alias: str, move: Mapping[str, Any]) -> None:
    """Append one move of ``alias`` to the prompt's history (a tag of its own)."""
    import mlflow

    sequence = len(history(name, alias)) + 1
    key = f"{_HISTORY_TAG.format(alias=alias)}{sequence:04d}"
    mlflow.genai.set_prompt_tag(name, key, json.dumps(dict(move), sort_keys=True))


def history(name: str, alias: str = PRODUCTION) -> list[dict[str, Any]]:
    """The moves of ``alias`` by promote and rollback, oldest first."""
    from mlflow.exceptions import MlflowException

    try:
        prompt = _client().get_prompt(name)
    except MlflowException as err:
        raise _registry_error(err, f"read prompt {name!r}") from None
    prefix = _HISTORY_TAG.format(alias=alias)
    tags = (prompt.tags or {}) if prompt is not None else {}
    return [json.loads(tags[key]) for key in sorted(k for k in tags if k.startswith(prefix))]


def now() -> str:
    """The time of a move, as it is recorded (UTC, ISO 8601, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _created(version: PromptVersion) -> str | None:
    stamp = getattr(version, "creation_timestamp", None)
    if not isinstance(stamp, int):
        return None
    return datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="seconds")


def describe_prompt(name: str) -> dict[str, Any]:
    """``prompt list --json``: the name, production's version, every version, the history."""
    versions = _versions(name)
    client = _client()
    described: list[dict[str, Any]] = []
    for version in versions:
        # A search's versions may leave their aliases out; a version read alone has them.
        full = client.get_prompt_version(name, version.version) or version
        described.append(
            {
                "version": int(version.version),
                "aliases": sorted(full.aliases or []),
                "message": version.commit_message,
                "created": _created(version),
            }
        )
    production = next((v["version"] for v in described if PRODUCTION in v["aliases"]), None)
    return {
        "name": name,
        "production": production,
        "versions": described,
        "history": history(name) if versions else [],
    }


@dataclass(frozen=True)
class PromptChoice:
    """Which prompt makes a command's requests, decided before anything is sent."""

    label: str
    """The runs' and traces' tag ``llmops.prompt_version``: ``<name>/<version>``,
    ``packaged`` or ``override``."""
    template: ChatTemplate
    name: str | None = None
    version: int | None = None

    def load(self) -> ChatTemplate:
        """Inside the run: the registered version through ``mlflow.genai.load_prompt``, which
        links the version to the active run; the packaged template otherwise."""
        if self.name is None or self.version is None:
            return self.template
        import mlflow

        loaded = mlflow.genai.load_prompt(self.name, version=self.version)
        return registered_template(loaded)


def choose_prompt(name: str | None, reference: str) -> PromptChoice:
    """The version ``reference`` (a number or an alias) of prompt ``name``.

    The packaged prompt when there is no name or the registry has no such prompt and
    ``production`` is asked for; SettingsError (exit 2, nothing sent) when the prompt
    exists without that version or alias, or a version of a prompt that does not exist is
    asked for.
    """
    packaged = PromptChoice("packaged", packaged_template())
    if name is None:
        return packaged
    versions = _versions(name)
    if not versions:
        if reference == PRODUCTION:
            return packaged
        raise SettingsError(
            f"prompt {name!r} is not in the registry, so it has no version {reference!r} "
            "(push it first: prompt push)"
        )
    if reference.isdigit():
        chosen = next((v for v in versions if int(v.version) == int(reference)), None)
    else:
        number = alias_version(name, reference)
        chosen = next((v for v in versions if int(v.version) == number), None)
    if chosen is None:
        known = ", ".join(str(v.version) for v in reversed(versions))
        raise SettingsError(
            f"prompt {name!r} has no version or alias {reference!r} (versions: {known})"
        )
    return PromptChoice(
        f"{name}/{chosen.version}", registered_template(chosen), name, int(chosen.version)
    )
