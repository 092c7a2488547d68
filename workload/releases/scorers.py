"""Production scorers: the eval's judge, registered on the experiment, judging live traces.

On Databricks, MLflow's registered scorers judge a sample of the experiment's
traces as they arrive, with no eval run: ``Scorer.register`` puts a scorer on the
experiment, ``start`` (a ``ScorerSamplingConfig``) sets the share of traces it
judges, ``stop`` sets it to 0 and keeps it registered. MLflow's registered scorers
there accept only a Databricks-served judge (``databricks:/<endpoint>``), which the
stack's AI Gateway provides: the judge endpoint (``databricks_judge_serving_endpoint``),
else the chat endpoint.

The judge is the eval's ``guidelines`` judge (MLflow's ``Guidelines``, under the same
name, so ``monitor``'s ``assessment:guidelines`` reads eval and production alike) on
the shipped prompt set's general guidelines (those most of its rows share). The eval's
other judge, ``expectations_guidelines``, needs each row's expectations, which a
production trace does not carry.

A second ``start`` updates what is registered under the same name (the judge's
definition when it changed, and the sample rate); it never adds a second scorer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

from workload.config.settings import tracks_to_databricks
from workload.config.via import gateway_endpoint, gateway_judge_endpoint
from workload.errors import ServiceError, SettingsError, first_line
from workload.evaluation.judges import GUIDELINES

if TYPE_CHECKING:
    from mlflow.genai.scorers import Scorer

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "REGISTERED_JUDGES",
    "RegisteredScorer",
    "judge_model",
    "list_registered",
    "production_judges",
    "start_scorers",
    "stop_scorers",
]

#: The share of traces each scorer judges when ``--sample-rate`` is not given: the lab's
#: traffic is a few calls, each worth judging.
DEFAULT_SAMPLE_RATE: Final = 1.0

#: The names this project registers (the eval's judges that fit a production trace).
REGISTERED_JUDGES: Final[tuple[str, ...]] = (GUIDELINES,)


@dataclass(frozen=True)
class RegisteredScorer:
    """One registered scorer as ``scorers list`` shows it."""

    name: str
    sample_rate: float | None
    """The share of traces it judges (0 stopped; None never started)."""
    model: str | None
    """Its judge model (``databricks:/<endpoint>``), None for a scorer with none."""
    active: bool
    """Whether it judges traces now (a sample rate above 0)."""
    ours: bool
    """Whether ``scorers start`` registered it (one of :data:`REGISTERED_JUDGES`)."""

    def as_json(self) -> dict[str, Any]:
        """The scorer as ``scorers list --json`` prints it."""
        return asdict(self)


def judge_model(outputs: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """``databricks:/<endpoint>`` of the gateway's judge endpoint, else of its chat endpoint.

    Raises one :class:`SettingsError` (exit 2), before anything is called, anywhere but a
    Databricks experiment in gateway mode, naming what is missing.
    """
    missing = []
    if not tracks_to_databricks(env):
        missing.append("MLFLOW_TRACKING_URI=databricks (a Databricks experiment)")
    endpoint = gateway_judge_endpoint(outputs, env) or gateway_endpoint(outputs, env)
    if not endpoint:
        missing.append(
            "a stack with llmops:gateway true (its output databricks_serving_endpoint, "
            "from --outputs FILE or --stack NAME)"
        )
    if missing:
        raise SettingsError(
            "production scorers run only on a Databricks experiment in gateway mode "
            "(MLflow's registered scorers accept only a Databricks-served judge): needs "
            + " and ".join(missing)
        )
    return f"databricks:/{endpoint}"


def production_judges(model: str) -> list[Scorer]:
    """The judges to register, each under its eval name, asking ``model``."""
    from mlflow.genai.scorers import Guidelines

    from workload.evaluation.dataset import general_guidelines, load_dataset

    guidelines = list(general_guidelines(load_dataset(None)))
    return [Guidelines(name=GUIDELINES, guidelines=guidelines, model=model)]


def _definition(scorer: Scorer) -> tuple[str, Any, Any]:
    """What a scorer judges and with which model: its class, guidelines and judge model."""
    return (
        type(scorer).__name__,
        getattr(scorer, "guidelines", None),
        getattr(scorer, "model", None),
    )


def _service_error(err: Exception, doing: str) -> ServiceError:
    import mlflow

    return ServiceError(
        f"MLflow's scorer registry at {mlflow.get_tracking_uri()} could not {doing}: "
        f"{first_line(err)}"
    )


def _registered(experiment_id: str) -> dict[str, Scorer]:
    from mlflow.exceptions import MlflowException
    from mlflow.genai.scorers import list_scorers

    try:
        return {s.name: s for s in list_scorers(experiment_id=experiment_id)}
    except MlflowException as err:
        raise _service_error(err, "list the experiment's scorers") from None


def start_scorers(experiment_id: str, model: str, sample_rate: float) -> list[RegisteredScorer]:
    """Register each judge (or update the one of its name) and have it judge ``sample_rate``
    of the experiment's traces; what is registered afterwards."""
    from mlflow.exceptions import MlflowException
    from mlflow.genai.scorers import ScorerSamplingConfig

    current = _registered(experiment_id)
    sampling = ScorerSamplingConfig(sample_rate=sample_rate)
    for judge in production_judges(model):
        known = current.get(judge.name)
        try:
            if known is None:
                judge.register(name=judge.name, experiment_id=experiment_id).start(
                    name=judge.name, experiment_id=experiment_id, sampling_config=sampling
                )
                continue
            if _definition(known) != _definition(judge):
                # The same name again: MLflow replaces the definition, keeping one scorer.
                known = judge.register(name=judge.name, experiment_id=experiment_id)
            known.update(name=judge.name, experiment_id=experiment_id, sampling_config=sampling)
        except MlflowException as err:
            raise _service_error(err, f"register and start the scorer {judge.name!r}") from None
    return list_registered(experiment_id)


def stop_scorers(experiment_id: str) -> list[str]:
    """Stop each of this project's registered scorers (sample rate 0; still registered);
    the names stopped."""
    from mlflow.exceptions import MlflowException

    stopped = []
    for name, scorer in _registered(experiment_id).items():
        if name not in REGISTERED_JUDGES:
            continue
        try:
            scorer.stop(name=name, experiment_id=experiment_id)
        except MlflowException as err:
            raise _service_error(err, f"stop the scorer {name!r}") from None
        stopped.append(name)
    return stopped


def list_registered(experiment_id: str) -> list[RegisteredScorer]:
    """Every scorer registered on the experiment, ours and any other, by name."""
    listed = []
    for name, scorer in sorted(_registered(experiment_id).items()):
        rate = scorer.sample_rate
        model = getattr(scorer, "model", None)
        listed.append(
            RegisteredScorer(
                name=name,
                sample_rate=rate,
                model=model if isinstance(model, str) else None,
                active=bool(rate and rate > 0),
                ours=name in REGISTERED_JUDGES,
            )
        )
    return listed
