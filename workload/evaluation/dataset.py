"""The evaluation dataset: JSON Lines in MLflow's evaluation-data shape.

One object per line::

    {"inputs": {"prompt": "...", "system_prompt": "..."}, "expectations": {"guidelines": ["..."]}}

``inputs.prompt`` is required; ``inputs.system_prompt`` (else the lab's) and
``expectations`` are optional. Blank lines are skipped. The whole file is
checked before anything is sent: every bad line is named by its number in one
:class:`~workload.errors.SettingsError` (exit 2). Without ``--dataset`` the
lab's prompt set shipped in this package is used
(``workload/evaluation/datasets/lab_prompts.jsonl``, read with importlib.resources, so it
works wherever the package was copied).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from workload.errors import SettingsError

__all__ = [
    "DEFAULT_DATASET",
    "ROW_KEY_TAG",
    "EvalRow",
    "general_guidelines",
    "load_dataset",
    "parse_dataset",
    "row_key",
]

#: The shipped prompt set, relative to the ``workload`` package.
DEFAULT_DATASET: Final = "datasets/lab_prompts.jsonl"

#: The trace tag each eval row's trace carries: :func:`row_key` of the dataset row, so
#: ``compare`` pairs the rows of two runs by what the dataset said, not what was sent.
ROW_KEY_TAG: Final = "llmops.eval_row"

#: Bad lines named in one message at most; the count says how many more.
_MAX_NAMED: Final = 5


@dataclass(frozen=True)
class EvalRow:
    """One row of the dataset."""

    prompt: str
    system_prompt: str | None
    guidelines: tuple[str, ...]
    """The row's own guidelines (``expectations.guidelines``); may be empty."""

    def as_record(self) -> dict[str, Any]:
        """The row as ``mlflow.genai.evaluate`` takes it."""
        inputs: dict[str, Any] = {"prompt": self.prompt}
        if self.system_prompt is not None:
            inputs["system_prompt"] = self.system_prompt
        record: dict[str, Any] = {"inputs": inputs}
        if self.guidelines:
            record["expectations"] = {"guidelines": list(self.guidelines)}
        return record

    @property
    def key(self) -> str:
        """What tells this row from any other: its whole inputs and expectations."""
        return row_key(self.as_record())


def row_key(record: dict[str, Any]) -> str:
    """A digest of a row's ``inputs`` and ``expectations`` (key order and all else ignored).

    A digest, not the text: a trace tag holds 8,000 characters at most, a prompt may not.
    """
    whole = {"inputs": record.get("inputs") or {}, "expectations": record.get("expectations") or {}}
    text = json.dumps(whole, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def general_guidelines(rows: Sequence[EvalRow]) -> tuple[str, ...]:
    """The guidelines most rows share (more than half of them), in the order first seen.

    A prompt set's rows mix general rules (suitable for all ages) with their own
    (a joke about cats); only the general ones fit any reply, such as a production
    trace's, which carries no row's expectations.
    """
    counts: dict[str, int] = {}
    for row in rows:
        for guideline in dict.fromkeys(row.guidelines):
            counts[guideline] = counts.get(guideline, 0) + 1
    return tuple(g for g, n in counts.items() if 2 * n > len(rows))


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _row(obj: Any) -> EvalRow | str:
    """The row, or what is wrong with it."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    inputs = obj.get("inputs")
    if not isinstance(inputs, dict):
        return 'no "inputs" object'
    if not _text(inputs.get("prompt")):
        return '"inputs.prompt" is missing or not a non-empty string'
    unknown = sorted(set(inputs) - {"prompt", "system_prompt"})
    if unknown:
        return f'"inputs" has unknown keys {unknown} (allowed: prompt, system_prompt)'
    system = inputs.get("system_prompt")
    if system is not None and not _text(system):
        return '"inputs.system_prompt" is not a non-empty string'
    expectations = obj.get("expectations", {})
    if not isinstance(expectations, dict):
        return '"expectations" is not an object'
    guidelines = expectations.get("guidelines", [])
    if isinstance(guidelines, str):
        guidelines = [guidelines]
    if not isinstance(guidelines, list) or not all(_text(g) for g in guidelines):
        return '"expectations.guidelines" is not a list of non-empty strings'
    return EvalRow(inputs["prompt"], system, tuple(guidelines))


def parse_dataset(text: str, source: str) -> tuple[EvalRow, ...]:
    """Every row of the JSON Lines ``text``; one SettingsError naming each bad line."""
    rows: list[EvalRow] = []
    bad: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as err:
            bad.append(f"line {number}: not JSON ({err.msg})")
            continue
        row = _row(parsed)
        if isinstance(row, str):
            bad.append(f"line {number}: {row}")
        else:
            rows.append(row)
    if bad:
        more = f" (and {len(bad) - _MAX_NAMED} more bad lines)" if len(bad) > _MAX_NAMED else ""
        raise SettingsError(
            f"dataset {source}: "
            + "; ".join(bad[:_MAX_NAMED])
            + more
            + '; each line must be like {"inputs": {"prompt": "..."}, '
            '"expectations": {"guidelines": ["..."]}}'
        )
    if not rows:
        raise SettingsError(f"dataset {source} has no rows")
    return tuple(rows)


def load_dataset(path: str | None) -> tuple[EvalRow, ...]:
    """The rows of ``--dataset path``, or of the shipped lab set when ``path`` is None."""
    if path is None:
        source = resources.files("workload.evaluation").joinpath(DEFAULT_DATASET)
        return parse_dataset(source.read_text(encoding="utf-8"), f"(shipped) {DEFAULT_DATASET}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsError(f"cannot read --dataset {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"--dataset {path} is not UTF-8 text") from None
    return parse_dataset(text, path)
