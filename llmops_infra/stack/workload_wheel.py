"""The workload as one wheel, built by hatchling from this folder: same sources, same bytes.

``pulumi up`` uploads the wheel as one workspace file and the jobs install it
(``llmops_infra/stack/lab_jobs.py``). The build goes through hatchling's own
wheel builder (the backend ``pyproject.toml`` names, pinned in
``requirements.txt``), in this process: no hand-written zip code. Hatchling's
reproducible mode (its default) walks the files in sorted order, normalizes
their permissions and dates every entry with ``SOURCE_DATE_EPOCH``, which is
fixed here rather than read from the clock or the environment. So a second
``up`` with nothing changed uploads nothing, and a changed module changes the
wheel, its hash and the path the jobs install it from.

Built wheels are kept under ``build/workload-wheel/<source hash>/``: a program
run with unchanged sources reads the hash of the wheel already there instead
of building again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from workload import contract

__all__ = [
    "BUILD_DIR",
    "SOURCE_DATE_EPOCH",
    "WheelBuildError",
    "WorkloadWheel",
    "build_wheel",
    "dependency_names",
    "source_hash",
]

#: The date on every entry of the wheel (hatchling's own default, 2020-02-02): fixed, so a
#: build on another day, machine or checkout gives the same bytes.
SOURCE_DATE_EPOCH: Final = 1580601600
#: Where built wheels are kept, one folder per source hash (ignored by git).
BUILD_DIR: Final = contract.PROJECT_DIR / "build" / "workload-wheel"
#: The package the wheel holds; pyproject.toml's [tool.hatch.build.targets.wheel] says so too.
_PACKAGE: Final = "workload"


class WheelBuildError(Exception):
    """The wheel could not be built (hatchling missing, or refusing the project)."""


@dataclass(frozen=True)
class WorkloadWheel:
    """One built wheel: where it is and what its bytes hash to."""

    path: Path
    """The ``.whl`` file on this machine."""
    sha256: str
    """Its content's SHA-256 (hex): the workspace path the jobs install from carries it."""
    md5: str
    """Its content's MD5 (hex): what ``databricks.WorkspaceFile`` compares to upload again."""

    @property
    def filename(self) -> str:
        """``llmops_workload-0.1.0-py3-none-any.whl``: the name pip needs to install it."""
        return self.path.name


def _source_files(project_dir: Path) -> list[Path]:
    """What the wheel is built from: ``pyproject.toml`` and the package's files (no caches)."""
    package = project_dir / _PACKAGE
    files = sorted(
        path
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    return [project_dir / "pyproject.toml", *files]


def source_hash(project_dir: Path) -> str:
    """SHA-256 over the sources' relative paths and contents: the build cache's key."""
    digest = hashlib.sha256()
    for path in _source_files(project_dir):
        digest.update(path.relative_to(project_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def dependency_names(project_dir: Path = contract.PROJECT_DIR) -> list[str]:
    """The wheel's runtime dependencies by name, as ``pyproject.toml`` declares them."""
    project = tomllib.loads((project_dir / "pyproject.toml").read_text())["project"]
    names = []
    for requirement in project["dependencies"]:
        name = requirement
        for mark in "<>=!~;[ ":
            name = name.split(mark, 1)[0]
        names.append(name)
    return names


@contextmanager
def _source_date_epoch() -> Iterator[None]:
    """``SOURCE_DATE_EPOCH`` set to the fixed date while hatchling builds, then restored."""
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(SOURCE_DATE_EPOCH)
    try:
        yield
    finally:
        if before is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before


def _described(path: Path) -> WorkloadWheel:
    data = path.read_bytes()
    return WorkloadWheel(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )


def _hatchling_build(project_dir: Path, out_dir: Path) -> Path:
    """hatchling's PEP 517 ``build_wheel``, with the project folder given instead of the cwd."""
    try:
        from hatchling.builders.wheel import WheelBuilder
    except ImportError:
        raise WheelBuildError(
            "hatchling is not installed: run `pulumi install` (or `python3 tasks.py plan`), "
            "which installs requirements.txt"
        ) from None
    with _source_date_epoch():
        try:
            return Path(next(WheelBuilder(str(project_dir)).build(directory=str(out_dir))))
        except Exception as err:  # hatchling's own errors are plain exceptions
            raise WheelBuildError(f"hatchling could not build the workload wheel: {err}") from None


def build_wheel(
    project_dir: Path = contract.PROJECT_DIR, build_dir: Path = BUILD_DIR
) -> WorkloadWheel:
    """The workload's wheel for these sources: the one already built, else a new build.

    A new build goes to a private folder first and is then renamed into place, so
    two programs building at once (parallel test runs) never see half a wheel.
    """
    key = source_hash(project_dir)
    target = build_dir / key[:16]
    built = sorted(target.glob("*.whl"))
    if len(built) == 1:
        return _described(built[0])
    build_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=build_dir))
    try:
        wheel = _hatchling_build(project_dir, staging)
        try:
            staging.rename(target)
        except OSError:  # another run put the same wheel there first
            shutil.rmtree(staging, ignore_errors=True)
        else:
            return _described(target / wheel.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _described(next(target.glob("*.whl")))
