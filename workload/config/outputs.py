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
from typing import Any, Final

from workload.contract import PROJECT_DIR
from workload.errors import SettingsError, first_line

__all__ = ["PULUMI_TIMEOUT", "load_outputs", "run_pulumi"]


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


#: How long a pulumi CLI call may take before it counts as not answering.
PULUMI_TIMEOUT: Final = 120.0


def run_pulumi(
    *args: str, timeout: float = PULUMI_TIMEOUT, project: Path = PROJECT_DIR
) -> subprocess.CompletedProcess[str]:
    """``pulumi ARGS`` in the project folder (``project``), its output captured, no stdin.

    No stdin: a login or passphrase prompt would wait unseen (stderr is captured);
    pulumi fails instead, saying what it needs, and that line can be reported.
    Raises FileNotFoundError when the CLI is not installed and
    ``subprocess.TimeoutExpired`` when it does not answer in time.
    """
    return subprocess.run(
        ["pulumi", *args],
        cwd=project if (project / "Pulumi.yaml").is_file() else None,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _from_stack(stack: str) -> Mapping[str, Any]:
    try:
        done = run_pulumi("stack", "output", "--json", "--show-secrets", "--stack", stack)
    except FileNotFoundError:
        raise SettingsError(
            "the pulumi CLI is not on PATH: install it, or pass --outputs FILE "
            "(the JSON of `pulumi stack output --json --show-secrets`)"
        ) from None
    except subprocess.TimeoutExpired:
        raise SettingsError(
            f"`pulumi stack output --stack {stack}` did not answer in {PULUMI_TIMEOUT:g} s"
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
