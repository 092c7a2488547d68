"""README.md and docs/*.md describe the program as it is: every command, flag, path and
import they show is checked against the program itself.

A page that shows a command the parser no longer has, a flag it never had, a file that
moved or an import that fails sends a new user into an error on their first try; these
tests read each page the way that user copies from it (as ``test_reference.py`` does for
the stack's keys and outputs).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmops_infra import cli as infra_cli
from llmops_infra.offline.engine import ProgramRun
from workload import cli as workload_cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: A fenced block (its language, its text) and an inline code span.
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
#: Where a command starts: the module or the script a user runs, and what follows it.
_COMMAND = re.compile(
    r"(?:^|[\s$(])(?:\S*python3?\s+-m\s+(?P<module>workload|llmops_infra)\b"
    r"|(?P<script>\S*tasks\.py)\b"
    r"|(?<![\w./-])(?P<console>workload)(?=\s+(?:-|[a-z])))"
    r"(?P<rest>[^\n]*)"
)
#: A shell's or Python's comment.
_COMMENT = re.compile(r"(?:^|\s)#.*$")
#: What ends a command on its line: a shell operator, or the end of an inline code span.
_END = re.compile(r"\s(?:\||&&|;|>|2>)\s|`")
#: Repository paths as pages show them (a path inside another path or a URL is not one).
_PATH = re.compile(
    r"(?<![\w./<>-])((?:llmops_infra|workload|docs|tests|policy|bench|\.github|\.ci)/[\w./*-]*)"
)


@dataclass(frozen=True)
class Shown:
    """Something a page shows: the page, the line it is on and its text."""

    page: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def _code(page: Path) -> Iterator[tuple[str, int, str]]:
    """Each fenced block (language, first line, text, continuation lines joined) and each
    inline code span outside them (language "")."""
    text = page.read_text(encoding="utf-8")
    blocks = list(_FENCE.finditer(text))
    for block in blocks:
        first = text.count("\n", 0, block.start(2)) + 1
        yield block.group(1), first, block.group(2).replace("\\\n", " ")
    outside = text
    for block in reversed(blocks):  # blank them out, keeping the line numbers
        outside = (
            outside[: block.start()] + re.sub(r"[^\n]", " ", block.group()) + outside[block.end() :]
        )
    for span in _SPAN.finditer(outside):
        yield "", outside.count("\n", 0, span.start()) + 1, span.group(1)


def _shown(page: Path, pattern: re.Pattern[str]) -> Iterator[tuple[Shown, re.Match[str]]]:
    """Each match of ``pattern`` in the page's code, comments left out (``# what it does``)."""
    for _, first, code in _code(page):
        for offset, line in enumerate(code.splitlines()):
            for found in pattern.finditer(_COMMENT.sub("", line)):
                yield Shown(page.name, first + offset, line.strip()), found


def _commands(pages: list[Path]) -> Iterator[tuple[Shown, str, list[str]]]:
    """Every command the pages show: (where, program, its arguments)."""
    for page in pages:
        for shown, found in _shown(page, _COMMAND):
            rest = _END.split(found.group("rest") + " ", maxsplit=1)[0]
            try:
                words = shlex.split(rest)
            except ValueError:
                words = rest.split()
            program = found.group("module") or found.group("console") or "tasks.py"
            yield shown, program, words


def _tasks() -> set[str]:
    """The tasks ``tasks.py`` dispatches, read from its ``main`` (running it would install)."""
    tree = ast.parse((ROOT / "tasks.py").read_text(encoding="utf-8"))
    return {
        node.comparators[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and isinstance(node.left, ast.Name)
        and node.left.id == "task"
        and isinstance(node.comparators[0], ast.Constant)
    }


#: What each task runs, whose parser its arguments go to (None: another tool's, as pytest's).
_TASK_RUNS = {"plan": ["plan"], "demo": ["demo"], "test": None, "lint": None}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def _placeholder(word: str) -> bool:
    """``<command>``, ``COMMAND``, ``...``: a page's stand-in, not a word to check."""
    return bool(re.search(r"[<>{}]|\.\.\.|^[A-Z_|]+$", word))


def _problems(parser: argparse.ArgumentParser, words: list[str], shown: Shown) -> list[str]:
    """What in ``words`` the parser (and the sub-command's parser they select) lacks."""
    problems = []
    path: list[str] = []
    for word in words:
        word = word.strip("[]()")
        if not word or _placeholder(word):
            continue
        if word.startswith("-") and not re.fullmatch(r"-\d[\d.]*", word):
            option = word.split("=", 1)[0]
            if option not in _options(parser):
                problems.append(f"{shown}: `{' '.join(path) or 'the command'}` has no {option}")
            continue
        choices = _subcommands(parser)
        if choices:
            if word not in choices:
                problems.append(f"{shown}: no command `{' '.join([*path, word])}`")
                return problems
            parser = choices[word]
            path.append(word)
    return problems


def _command_problems(pages: list[Path]) -> tuple[int, list[str]]:
    """How many commands ``pages`` show, and what in them the program lacks."""
    parsers = {
        "workload": workload_cli.build_parser(),
        "llmops_infra": infra_cli.build_parser(),
    }
    tasks = _tasks()
    problems: list[str] = []
    seen = 0
    for shown, program, words in _commands(pages):
        seen += 1
        if program == "tasks.py":
            if not words or _placeholder(words[0]):
                continue
            if words[0] not in tasks:
                problems.append(f"{shown}: tasks.py has no task `{words[0]}`")
                continue
            runs = _TASK_RUNS[words[0]]
            if runs is not None:
                problems += _problems(parsers["llmops_infra"], [*runs, *words[1:]], shown)
            continue
        problems += _problems(parsers[program], words, shown)
    return seen, problems


def test_tasks_py_has_the_tasks_known_here() -> None:
    assert _tasks() == set(_TASK_RUNS), "every task tasks.py has is known here, and no other"


def test_every_command_and_flag_a_page_shows_is_the_programs() -> None:
    seen, problems = _command_problems(PAGES)
    assert seen > 50, f"the pages show commands, and this finds them ({seen})"
    assert problems == [], "\n".join(problems)


def _paths() -> Iterator[tuple[Shown, str]]:
    for page in PAGES:
        for shown, found in _shown(page, _PATH):
            path = found.group(1).rstrip(".,:;")
            yield shown, path.split("::", 1)[0]


def test_every_repository_path_a_page_shows_exists() -> None:
    missing = []
    seen = 0
    for shown, path in _paths():
        seen += 1
        if not list(ROOT.glob(path)) and not (ROOT / path).exists():
            missing.append(f"{shown}: {path}")
    assert seen > 20, f"the pages show paths, and this finds them ({seen})"
    assert missing == [], "\n".join(missing)


#: Where ``pulumi up`` puts the workload in the workspace, and what a page shows after it.
_WORKSPACE = re.compile(r"llmops-workload(/[^\s`'\")]*)?")
_WORKSPACE_FILE = "databricks:index/workspaceFile:WorkspaceFile"


def _tail_pattern(tail: str) -> re.Pattern[str]:
    """A page's ``/wheel-<hash>/...whl`` as a pattern: a placeholder stands for one part."""
    pattern = re.escape(tail)
    pattern = re.sub(r"<[^>]*>", "[^/]+", pattern)
    pattern = pattern.replace(re.escape("..."), "[^/]*").replace(re.escape("*"), "[^/]*")
    return re.compile(pattern if tail.endswith("/") or not tail else pattern + "$")


def _workspace_folders_on_sys_path(code: str) -> list[str]:
    """What a block puts on ``sys.path`` under the workload's folder (its tail)."""
    lines = [line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return [
        found.group(1) or ""
        for node in ast.walk(ast.parse("\n".join(lines)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("insert", "append")
        and ast.unparse(node.func.value) == "sys.path"
        for arg in node.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        if (found := _WORKSPACE.search(arg.value))
    ]


def test_every_workspace_path_a_page_shows_is_where_up_puts_the_workload(
    dev: ProgramRun,
) -> None:
    made = [
        str(r.inputs["path"]).split("llmops-workload", 1)[1]
        for r in dev.resources
        if r.type == _WORKSPACE_FILE
    ]
    assert made, "the program uploads the workload"
    wrong = []
    seen = 0
    for page in PAGES:
        for shown, found in _shown(page, _WORKSPACE):
            seen += 1
            tail = (found.group(1) or "").rstrip(".,:;")
            if not any(_tail_pattern(tail).match(path) for path in made):
                wrong.append(f"{shown}: nothing is uploaded to llmops-workload{tail}")
        for language, first, code in _code(page):
            if language != "python":
                continue
            imports_workload = any(
                module.split(".")[0] == "workload" for module, _ in _imports(code)
            )
            wrong += [
                f"{page.name}:{first}: the block imports workload from llmops-workload{folder}, "
                "where nothing uploads it"
                for folder in _workspace_folders_on_sys_path(code)
                if imports_workload
                and not any(_tail_pattern(f"{folder}/workload/").match(path) for path in made)
            ]
    assert seen > 3, f"the pages show where the workload goes, and this finds it ({seen})"
    assert wrong == [], "\n".join(wrong)


def _imports(code: str) -> Iterator[tuple[str, list[str]]]:
    """(module, names) of each import statement in a block (magics and shell lines dropped)."""
    lines = [line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))]
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, [alias.name for alias in node.names]


def test_every_import_a_pages_python_shows_imports() -> None:
    failing = []
    seen = 0
    for page in PAGES:
        for language, first, code in _code(page):
            if language != "python":
                continue
            for module, names in _imports(code):
                seen += 1
                where = f"{page.name}:{first}"
                try:
                    imported = importlib.import_module(module)
                except ImportError as err:
                    failing.append(f"{where}: import {module}: {err}")
                    continue
                failing += [
                    f"{where}: from {module} import {name}: no such name"
                    for name in names
                    if not hasattr(imported, name)
                    and importlib.util.find_spec(f"{module}.{name}") is None
                ]
    assert seen > 0, "the pages' Python imports are found"
    assert failing == [], "\n".join(failing)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("python -m workload chat --bogus", ["`chat` has no --bogus"]),
        ("python -m workload chatter --json", ["no command `chatter`"]),
        (".venv/bin/python -m llmops_infra plan --stack dev --json", []),
        ("python3 tasks.py plan --config llmops:capacity=20", []),
        ("python3 tasks.py deploy", ["tasks.py has no task `deploy`"]),
        ("python3 tasks.py plan --jsn", ["`plan` has no --jsn"]),
        ("workload eval --fail-under guidelines=0.8 | tee out  # a comment --nothing", []),
        ("workload eval --nothing=1 > out", ["`eval` has no --nothing"]),
    ],
)
def test_the_checker_finds_what_a_stale_page_would_show(
    tmp_path: Path, line: str, expected: list[str]
) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"Run `{line}`.\n\n```bash\n{line}\n```\n")
    seen, problems = _command_problems([page])
    assert seen == 2, "the command in the span and in the block"
    assert [p.rsplit(": ", 1)[1] for p in problems] == [e for e in expected for _ in (0, 1)]
