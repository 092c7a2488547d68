"""docs/reference.md holds the contracts users rely on, and nothing points at a file they lack.

The design notes the project was built from are not in the repository; a page or a message
that cites them sends a user to a file they cannot open.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from workload import contract
from workload.model.chat import ChatResult

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference.md"
#: The name of the notes no user has (spelt in two halves, so this file does not cite it).
UNSHIPPED = "DESIGN" + ".md"


def _shipped_text_files() -> list[Path]:
    """Every page and every module a user gets: docs, README, the code and its messages."""
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "tasks.py", ROOT / "Pulumi.yaml"]
    files += sorted((ROOT / "docs").glob("*.md"))
    for package in ("workload", "llmops_infra", "policy", "bench"):
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def test_no_page_or_message_names_the_unshipped_design_notes() -> None:
    citing = [
        str(path.relative_to(ROOT))
        for path in _shipped_text_files()
        if UNSHIPPED in path.read_text(encoding="utf-8")
    ]
    assert citing == [], f"these point users at a file the repository does not have: {citing}"


def _reference() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def test_every_stack_output_is_in_the_reference_table() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \|", _reference(), re.MULTILINE)
    outputs = [name for name in rows if name in contract.ALL_OUTPUTS]
    assert outputs == list(contract.ALL_OUTPUTS), "every output, once, in the contract's order"


def test_every_environment_variable_the_workload_reads_is_named() -> None:
    named = {
        value
        for name, value in vars(contract).items()
        if name.startswith("ENV_") and isinstance(value, str)
    }
    missing = sorted(variable for variable in named if f"`{variable}`" not in _reference())
    assert missing == [], f"the reference names every variable: {missing}"


def test_the_chat_json_shown_is_what_chat_prints() -> None:
    shown = re.search(r"`chat --json`:\n\n```json\n(.*?)```", _reference(), re.DOTALL)
    assert shown is not None
    keys = re.findall(r'"([a-z_]+)":', shown.group(1))
    assert keys == [field.name for field in dataclasses.fields(ChatResult)]


def test_every_link_of_the_reference_and_the_readme_leads_to_a_file() -> None:
    for page in (REFERENCE, ROOT / "README.md"):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"
