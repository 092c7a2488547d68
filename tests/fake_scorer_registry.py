"""MLflow's registered scorers on Databricks, faked below MLflow's public API, in a child process.

A registered scorer needs a Databricks workspace; this fake lets a test run
``python -m workload scorers ...`` as a user does while MLflow's own code runs
unchanged from the public API (``Scorer.register``/``start``/``update``/``stop``,
``list_scorers``) down to its Databricks store. Only the edges are replaced:

* ``DatabricksStore._request``, MLflow's one call to the workspace's managed-evals
  REST API, is answered from a JSON file (``FAKE_SCORERS_STATE``), so what one process
  registered the next one lists: the scheduled scorers of each experiment, stored as
  MLflow sends them, a ``scorer_version`` bumped when a name's definition changes, and
  PATCH answered 404 until the experiment's list was first created with POST (as the
  store expects of a workspace);
* ``DatabricksStore._validate_experiment_is_active`` and ``mlflow.set_experiment`` (the
  tracking server's side) answer for one active experiment, :data:`EXPERIMENT_ID`;
* each public call is recorded in the same file (``calls``): its name, the scorer's name,
  the experiment, the sample rate, the judge's model and guidelines.

Run a command through it as ``python -c "import fake_scorer_registry as f; f.main()" ARGS``
with this folder and the project on ``PYTHONPATH``.
"""

from __future__ import annotations

import fcntl
import json
import os
import runpy
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

#: The one experiment the fake tracking server knows.
EXPERIMENT_ID: Final = "4242"
#: The code that runs a workload command through the fake (``python -c``).
WRAPPER: Final = "import fake_scorer_registry as f; f.main()"


@contextmanager
def _state() -> Iterator[dict[str, Any]]:
    """The state file, read and written back under a lock."""
    path = Path(os.environ["FAKE_SCORERS_STATE"])
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        state: dict[str, Any] = json.loads(text) if text.strip() else {}
        state.setdefault("experiments", {})
        state.setdefault("calls", [])
        yield state
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(state, indent=1))


def _record(call: dict[str, Any]) -> None:
    with _state() as state:
        state["calls"].append(call)


def _not_found(what: str) -> Exception:
    from mlflow.exceptions import RestException
    from mlflow.protos.databricks_pb2 import NOT_FOUND, ErrorCode

    return RestException({"error_code": ErrorCode.Name(NOT_FOUND), "message": what})  # type: ignore[no-untyped-call]


def _request(
    self: Any,
    method: str,
    endpoint: str,
    *,
    json_body: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The managed-evals scheduled-scorers API of one workspace, from the state file."""
    prefix = "/api/2.0/managed-evals/scheduled-scorers/"
    if not endpoint.startswith(prefix):
        raise AssertionError(f"the fake workspace does not serve {method} {endpoint}")
    experiment = endpoint.removeprefix(prefix)
    with _state() as state:
        state["calls"].append({"call": f"REST {method}", "experiment_id": experiment})
        stored: list[dict[str, Any]] | None = state["experiments"].get(experiment)
        if method == "GET":
            return {"scheduled_scorers": {"scorers": stored or []}}
        if method == "PATCH" and stored is None:
            raise _not_found(f"no scheduled scorers for experiment {experiment}")
        if method == "POST" and stored is not None:
            raise AssertionError("POST on an experiment that has scheduled scorers")
        before = {c["name"]: c for c in stored or []}
        sent = (json_body or {})["scheduled_scorers"]["scorers"]
        kept = []
        for config in sent:
            old = before.get(config["name"])
            version = (old or {}).get("scorer_version", 0)
            if old is None or old["serialized_scorer"] != config["serialized_scorer"]:
                version += 1
            kept.append({**config, "scorer_version": version})
        state["experiments"][experiment] = kept
        return {"scheduled_scorers": {"scorers": kept}}


def _described(scorer: Any) -> dict[str, Any]:
    return {
        "scorer": scorer.name,
        "class": type(scorer).__name__,
        "model": getattr(scorer, "model", None),
        "guidelines": getattr(scorer, "guidelines", None),
    }


def _recording(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        sampling = kwargs.get("sampling_config")
        _record(
            {
                "call": name,
                **_described(self),
                "name": kwargs.get("name"),
                "experiment_id": kwargs.get("experiment_id"),
                "sample_rate": getattr(sampling, "sample_rate", None),
            }
        )
        return method(self, *args, **kwargs)

    return call


class _Experiment:
    experiment_id = EXPERIMENT_ID
    lifecycle_stage = "active"


def install() -> None:
    """Patch MLflow's edges (above) in this process."""
    import mlflow
    import mlflow.genai.scorers as scorers
    from mlflow.genai.scorers.base import Scorer
    from mlflow.genai.scorers.registry import DatabricksStore

    DatabricksStore._request = _request  # type: ignore[method-assign]
    DatabricksStore._validate_experiment_is_active = lambda self, experiment_id: None  # type: ignore[method-assign]

    def set_experiment(name: str | None = None, **_: Any) -> _Experiment:
        _record({"call": "set_experiment", "experiment": name})
        return _Experiment()

    mlflow.set_experiment = set_experiment  # type: ignore[assignment]
    for method in ("register", "start", "update", "stop"):
        setattr(Scorer, method, _recording(method, getattr(Scorer, method)))
    listing = scorers.list_scorers

    def list_scorers(*, experiment_id: str | None = None) -> Any:
        _record({"call": "list_scorers", "experiment_id": experiment_id})
        return listing(experiment_id=experiment_id)

    scorers.list_scorers = list_scorers


def main() -> None:
    """Run ``python -m workload`` with the arguments after ``-c``, through the fake."""
    install()
    sys.argv = ["workload", *sys.argv[1:]]
    runpy.run_module("workload", run_name="__main__", alter_sys=True)
