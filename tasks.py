"""Set up and run the project on a fresh machine that has only Python 3.11+ and a package index.

    python3 tasks.py plan [ARGS...]   install what is needed, then show the dev stack's offline plan
    python3 tasks.py demo [ARGS...]   install what is needed, then run the LLMOps loop (chat, eval,
                                      monitor) against a local FAKE of Azure OpenAI: no Azure needed
    python3 tasks.py test [ARGS...]   install what is needed (with test tools), then run the tests
                                      (in parallel processes; pass -n 0 for one)
    python3 tasks.py lint             ruff, mypy and the GitHub workflows' checks, as CI runs them

Everything goes into ./.venv (the virtualenv Pulumi.yaml names, so `pulumi up`
uses the same one). The install runs again only when a requirements file changed.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
WORKFLOWS = ROOT / ".github" / "workflows"


def _install(requirements: str) -> None:
    """Create the virtualenv and install ``requirements`` unless already done.

    With ``LLMOPS_VENV_CACHE=DIR`` (CI sets it), the environment lives in DIR,
    keyed by the requirements files' content, and ./.venv links to it: a clean
    clone on the same machine then installs nothing. Everything is installed
    through the environment's real path, never through the link, so the console
    scripts it holds (pytest, zizmor, ...) name an interpreter that outlives the
    clone that made them.

    uv makes the environment and installs the pins (seconds where pip takes
    minutes); pip does when uv cannot be had (``LLMOPS_INSTALLER=pip`` asks for it).
    """
    if sys.version_info < (3, 11):  # noqa: UP036 (the check is for users on an older Python)
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    files = sorted(ROOT.glob("requirements*.txt"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    cache = os.environ.get("LLMOPS_VENV_CACHE")
    if cache and not VENV.exists():
        target = Path(cache).expanduser().resolve() / f"venv-{digest[:16]}"
        target.parent.mkdir(parents=True, exist_ok=True)
        VENV.symlink_to(target, target_is_directory=True)
        requirements = "requirements-dev.txt"  # the superset, so one cached env serves all
    real = VENV.resolve()
    python = real / PYTHON.relative_to(VENV)
    stamp = real / f".installed-{requirements}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    uv = None if os.environ.get("LLMOPS_INSTALLER") == "pip" else _uv()
    if uv:
        if not python.exists():
            print(f"creating {VENV} (uv)", file=sys.stderr)
            # --seed: pip inside too, for `pulumi install` (Pulumi.yaml's toolchain is pip).
            subprocess.run(
                [*uv, "venv", "--quiet", "--seed", "--python", sys.executable, str(real)],
                check=True,
            )
        print(f"installing {requirements} into {VENV} (uv)", file=sys.stderr)
        subprocess.run(
            [*uv, "pip", "install", "--python", str(python), "-r", str(ROOT / requirements)],
            check=True,
        )
    else:
        if not python.exists():
            print(f"creating {VENV}", file=sys.stderr)
            venv.create(real, with_pip=True)
        print(f"installing {requirements} into {VENV} (pip: a few minutes)", file=sys.stderr)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True
        )
        _pip_with_progress(python, ["install", "-r", str(ROOT / requirements)])
    stamp.write_text(digest)


def _uv_pin() -> str:
    """The uv version requirements.txt pins: the one place the project states it."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.replace(" ", "").startswith("uv=="):
            return line.split("==", 1)[1].split("#", 1)[0].strip()
    raise SystemExit("requirements.txt pins no uv (a line uv==VERSION)")


def _uv() -> list[str] | None:
    """The uv to install with: the pinned one, fetched with pip into the user's cache once.

    A uv of another version on PATH is not used: the pins resolve the same with any
    uv, but one version everywhere keeps a failure reproducible. None when pip cannot
    fetch it (no index, say): the install then falls back on pip.
    """
    version = _uv_pin()
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tools = home / "llmops-databricks" / f"uv-{version}"
    binary = tools / "bin" / ("uv.exe" if os.name == "nt" else "uv")
    if not binary.exists():
        print(f"fetching uv {version} with pip into {tools}", file=sys.stderr)
        fetched = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(tools),
                f"uv=={version}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if fetched.returncode != 0 or not binary.exists():
            last = (fetched.stdout.strip().splitlines() or ["(no output)"])[-1]
            print(f"uv could not be fetched ({last}); installing with pip", file=sys.stderr)
            return None
    return [str(binary)]


def _pip_with_progress(python: Path, args: list[str]) -> None:
    """Run pip, showing one short line per package it fetches, so a first install of a few
    minutes is seen to move; all that pip said only when it fails."""
    kept: list[str] = []
    fetched = 0
    with subprocess.Popen(
        [str(python), "-m", "pip", *args, "--progress-bar", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as pip:
        assert pip.stdout is not None
        for line in pip.stdout:
            kept.append(line)
            if line.startswith("Collecting "):
                fetched += 1
                print(f"  {fetched:3} {line.split()[1]}", file=sys.stderr, flush=True)
            elif line.startswith("Installing collected packages"):
                print(f"  installing {fetched} packages ...", file=sys.stderr, flush=True)
    if pip.returncode != 0:
        sys.stderr.write("".join(kept))
        raise subprocess.CalledProcessError(pip.returncode, pip.args)


def _call(command: list[str]) -> int:
    """Run ``command`` here, without the Pulumi CLI's variables, and pass SIGTERM on to it.

    Python's default for SIGTERM ends this process at once and leaves the command running
    with no parent (``timeout``, a CI's cancel and ``kill`` send SIGTERM to this process
    alone): the command gets it instead, ends what it started, and its status is ours.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    with subprocess.Popen(command, cwd=ROOT, env=env) as child:
        previous = signal.signal(signal.SIGTERM, lambda signum, _: child.send_signal(signum))
        try:
            return child.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)


def _run(*args: str) -> int:
    return _call([str(PYTHON), *args])


def _tool(name: str, *args: str) -> int:
    """A binary installed into the virtualenv (zizmor: no module to run with ``python -m``;
    being no script, it names no interpreter that could be gone)."""
    script = PYTHON.parent / (f"{name}.exe" if os.name == "nt" else name)
    return _call([str(script), *args])


def _lint_workflows() -> int:
    """zizmor (offline: no GitHub API) and the vendored GitHub-workflow schema, over the workflows.

    actionlint would check more (expressions, shell), but its PyPI package downloads its
    binary from GitHub at install time; check-jsonschema's schema stands in (docs/ci.md).
    """
    workflows = [str(p.relative_to(ROOT)) for p in sorted(WORKFLOWS.glob("*.y*ml"))]
    if not workflows:
        return 0
    return _tool("zizmor", "--offline", "--no-progress", *workflows) or _run(
        "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows
    )


def main(argv: list[str]) -> int:
    """Dispatch one task."""
    task, rest = (argv[0], argv[1:]) if argv else ("", [])
    if task == "plan":
        _install("requirements.txt")
        return _run("-m", "llmops_infra", "plan", *rest)
    if task == "demo":
        _install("requirements.txt")
        return _run("-m", "llmops_infra", "demo", *rest)
    if task == "test":
        _install("requirements-dev.txt")
        # Test modules spread over up to four processes (pytest-xdist), a module's tests in
        # one of them, as their fixtures expect; ``-n 0`` among ARGS runs them in this one.
        # Modules go out in the order tests/conftest.py gives (the longest first), not
        # xdist's (the most tests first, which left the benchmarks' smoke runs to the end).
        workers = (
            []
            if any(a == "-n" or a.startswith("--numprocesses") for a in rest)
            else [
                "--numprocesses=auto",
                "--maxprocesses=4",
                "--dist=loadfile",
                "--no-loadscope-reorder",
            ]
        )
        return _run("-m", "pytest", *workers, *(rest or ["-q"]))
    if task == "lint":
        _install("requirements-dev.txt")
        return (
            _run("-m", "ruff", "check", ".")
            or _run("-m", "ruff", "format", "--check", ".")
            or _run("-m", "mypy")
            or _lint_workflows()
        )
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
