"""The Pulumi stack's outputs, from a file or from the Pulumi CLI.

``--outputs FILE`` reads what ``pulumi stack output --json --show-secrets``
printed; ``--stack NAME`` runs that command itself. Either way the result is
a plain mapping of output names (``workload.contract``) to values.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workload.contract import PROJECT_DIR
from workload.errors import SettingsError, first_line

__all__ = ["load_outputs"]


def _parse(text: str, source: str) -> Mapping[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError as err:
        raise SettingsError(
            f"{source} is not the JSON of `pulumi stack output --json --show-secrets`: {err}"
        ) from None
    if not isinstance(parsed, dict):
        raise SettingsError(f"{source} must hold a JSON object of stack outputs")
    return parsed


def _from_file(path: str) -> Mapping[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsError(f"cannot read --outputs {path}: {err.strerror or err}") from None
    return _parse(text, f"--outputs {path}")


def _from_stack(stack: str) -> Mapping[str, Any]:
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
    cwd = PROJECT_DIR if (PROJECT_DIR / "Pulumi.yaml").is_file() else None
    try:
        # No stdin: a passphrase prompt would wait unseen (stderr is captured); pulumi fails
        # instead, saying PULUMI_CONFIG_PASSPHRASE is needed, and that line is reported.
        done = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except FileNotFoundError:
        raise SettingsError(
            "the pulumi CLI is not on PATH: install it, or pass --outputs FILE "
            "(the JSON of `pulumi stack output --json --show-secrets`)"
        ) from None
    except subprocess.TimeoutExpired:
        raise SettingsError(
            f"`pulumi stack output --stack {stack}` did not answer in 120 s"
        ) from None
    if done.returncode != 0:
        said = first_line(done.stderr) or "no details"
        raise SettingsError(
            f"`pulumi stack output --stack {stack}` failed ({said}); "
            "is the stack deployed (`pulumi up`) and are you logged in to its backend?"
        )
    outputs = _parse(done.stdout, f"the outputs of stack {stack}")
    if not outputs:
        raise SettingsError(f"stack {stack} has no outputs: run `pulumi up` first")
    return outputs


def load_outputs(outputs_file: str | None, stack: str | None) -> Mapping[str, Any]:
    """The stack outputs named by ``--outputs`` or ``--stack``; empty when neither is given."""
    if outputs_file is not None:
        return _from_file(outputs_file)
    if stack is not None:
        return _from_stack(stack)
    return {}
