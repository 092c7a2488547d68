"""The lab's chat prompt as a file: MLflow's chat-prompt form, checked, and filled in.

A prompt file (``workload/prompts/lab_chat.json`` is the lab's, shipped in the
package) is a JSON object: ``template``, a list of ``{"role", "content"}``
messages where ``{{prompt}}`` stands for the user's text; optional
``model_config`` (MLflow's prompt model config) and ``commit_message``. The
same shape is what the Prompt Registry stores, so a registered version and the
packaged file fill in alike (:meth:`ChatTemplate.messages`).

MLflow 3.17's ``PromptVersion.format(prompt=...)`` rejects the variable name
``prompt`` (its own first parameter), so the text is filled in here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from workload.errors import SettingsError

__all__ = [
    "PACKAGED_PROMPT",
    "ChatTemplate",
    "load_template_file",
    "packaged_template",
    "parse_template",
]

#: The packaged prompt, relative to the ``workload`` package.
PACKAGED_PROMPT: Final = "prompts/lab_chat.json"

#: MLflow's template variable syntax (``{{ name }}``, spaces allowed).
_VARIABLE: Final = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_.]*)\s*\}\}")
_ROLES: Final = ("system", "user", "assistant")
_KEYS: Final = ("template", "model_config", "commit_message")
#: Model config fields that are chat request parameters (MLflow's name -> OpenAI's).
_REQUEST_PARAMETERS: Final = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "stop_sequences": "stop",
}


@dataclass(frozen=True)
class ChatTemplate:
    """A chat prompt: its messages with ``{{prompt}}`` unfilled, and its model config."""

    template: tuple[Mapping[str, str], ...]
    model_config: Mapping[str, Any] = field(default_factory=dict)
    commit_message: str | None = None

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """The request's messages, ``{{prompt}}`` replaced by ``prompt`` (taken literally)."""
        return [
            {"role": m["role"], "content": _VARIABLE.sub(lambda _: prompt, m["content"])}
            for m in self.template
        ]

    def request_parameters(self) -> dict[str, Any]:
        """The model config's fields the chat request takes (temperature, max_tokens, ...)."""
        return {
            _REQUEST_PARAMETERS[key]: value
            for key, value in self.model_config.items()
            if key in _REQUEST_PARAMETERS and value is not None
        }

    def same_as(self, other: ChatTemplate) -> bool:
        """Same messages and model config (a commit message alone is no new version)."""
        return [dict(m) for m in self.template] == [dict(m) for m in other.template] and dict(
            self.model_config
        ) == dict(other.model_config)

    def as_template(self) -> list[dict[str, str]]:
        """The messages as MLflow's ``register_prompt`` takes them."""
        return [dict(m) for m in self.template]


def _messages(value: Any) -> tuple[tuple[dict[str, str], ...], list[str]]:
    if not isinstance(value, list) or not value:
        return (), ['"template" must be a non-empty list of {"role", "content"} messages']
    problems: list[str] = []
    messages: list[dict[str, str]] = []
    for index, message in enumerate(value, start=1):
        where = f"template message {index}"
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            problems.append(f'{where} must be an object with exactly "role" and "content"')
            continue
        role, content = message["role"], message["content"]
        if role not in _ROLES:
            problems.append(f"{where}: role {role!r} is not one of {', '.join(_ROLES)}")
        if not isinstance(content, str) or not content.strip():
            problems.append(f"{where}: content must be non-empty text")
            continue
        others = sorted({v for v in _VARIABLE.findall(content) if v != "prompt"})
        if others:
            problems.append(
                f"{where} uses {', '.join('{{' + v + '}}' for v in others)}: only {{{{prompt}}}} "
                "(the user's text) is filled in"
            )
        messages.append({"role": str(role), "content": content})
    user_text = [
        m for m in messages if m["role"] == "user" and "prompt" in _VARIABLE.findall(m["content"])
    ]
    if messages and not user_text:
        problems.append("no user message holds {{prompt}}, the user's text")
    return tuple(messages), problems


def _model_config(value: Any) -> tuple[dict[str, Any], list[str]]:
    """The config as MLflow's PromptModelConfig accepts it (its own validation)."""
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        return {}, ['"model_config" must be an object (temperature, max_tokens, ...)']
    from mlflow.entities.model_registry.prompt_version import PromptModelConfig
    from pydantic import ValidationError

    try:
        return PromptModelConfig.from_dict(value).to_dict(), []
    except (ValidationError, TypeError, ValueError) as err:
        errors = err.errors() if isinstance(err, ValidationError) else []
        named = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return {}, [f'"model_config" is not valid: {named or err}']


def parse_template(obj: Any, source: str) -> ChatTemplate:
    """The template in ``obj`` (a prompt file's JSON); one SettingsError naming each problem."""
    if not isinstance(obj, dict):
        raise SettingsError(f'{source}: must be a JSON object with "template"')
    problems = [
        f"unknown key {key!r} (allowed: {', '.join(_KEYS)})" for key in obj if key not in _KEYS
    ]
    messages, bad = _messages(obj.get("template"))
    problems += bad
    config, bad = _model_config(obj.get("model_config"))
    problems += bad
    message = obj.get("commit_message")
    if message is not None and not isinstance(message, str):
        problems.append('"commit_message" must be text')
    if problems:
        raise SettingsError(f"{source}: " + "; ".join(problems))
    return ChatTemplate(messages, config, message)


def load_template_file(path: str | Path) -> ChatTemplate:
    """A prompt file's template; SettingsError when it cannot be read or is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsError(f"cannot read prompt file {str(path)!r}: {err.strerror}") from None
    try:
        obj = json.loads(text)
    except ValueError as err:
        raise SettingsError(f"{path}: not JSON ({err})") from None
    return parse_template(obj, str(path))


def packaged_template() -> ChatTemplate:
    """The lab's prompt shipped in this package (read with importlib.resources)."""
    text = resources.files("workload").joinpath(PACKAGED_PROMPT).read_text(encoding="utf-8")
    return parse_template(json.loads(text), PACKAGED_PROMPT)
