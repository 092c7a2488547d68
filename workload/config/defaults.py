"""Defaults the workload's commands share, taken from the lab's notebook cell."""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_EXPERIMENT", "LAB_SYSTEM_PROMPT", "LAB_USER_PROMPT"]

#: Where traces go when neither --experiment nor MLFLOW_EXPERIMENT_NAME says otherwise.
DEFAULT_EXPERIMENT: Final = "llmops-lab"

#: The lab's system prompt (section "MLflow を使用して LLM をログする").
LAB_SYSTEM_PROMPT: Final = "Assistant is a large language model trained by OpenAI."

#: The lab's user prompt.
LAB_USER_PROMPT: Final = "Tell me a joke about animals."
