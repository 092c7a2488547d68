"""`python -m llmops_infra plan` for the tests: as a real process, or its main in a fork.

A real process proves the command starts as a user starts it; a fork of the test
process (where the provider SDKs are already loaded) runs the same code after its
imports in a fraction of a second. Both give ``(exit status, stdout, stderr)``.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from llmops_infra import cli
from workload.contract import PROJECT_DIR

PLAN = [sys.executable, "-m", "llmops_infra", "plan"]
Result = tuple[int, str, str]
#: The longest a plan may take (seconds of imports when the machine is busy) before it fails.
TIMEOUT = 300


def clean_env() -> dict[str, str]:
    """This environment without the Pulumi CLI's variables (they would leak configuration)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}


@dataclass
class Started:
    """A plan under way: a process, or a fork of this one."""

    process: subprocess.Popen[str] | None = None
    receiver: Any = None
    child: Any = None

    def result(self) -> Result:
        """Wait for it: its exit status, stdout and stderr."""
        if self.process is not None:
            out, err = self.process.communicate(timeout=TIMEOUT)
            return self.process.returncode, out, err
        if not self.receiver.poll(TIMEOUT):
            self.child.kill()
            self.child.join(timeout=30)
            raise TimeoutError(f"the forked plan did not answer in {TIMEOUT} s")
        result: Result = self.receiver.recv()
        self.child.join(timeout=30)
        return result


def start_process(*args: str) -> Started:
    """``python -m llmops_infra plan ARGS`` as a user runs it."""
    process = subprocess.Popen(
        [*PLAN, *args],
        cwd=PROJECT_DIR,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Started(process=process)


def _forked(conn: Any, args: tuple[str, ...]) -> None:
    out, err = io.StringIO(), io.StringIO()
    for name in [name for name in os.environ if name.startswith("PULUMI_")]:
        del os.environ[name]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(["plan", *args])
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
    conn.send((code, out.getvalue(), err.getvalue()))
    conn.close()


def start_in_fork(*args: str) -> Started:
    """The command's ``main`` in a fork of this process (load the SDKs here first)."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_forked, args=(sender, args))
    child.start()
    sender.close()
    return Started(receiver=receiver, child=child)
