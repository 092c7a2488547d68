"""A credential the service echoes in an error is masked before the SDK, the logs or the trace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
from fake_azure_openai import FakeAzureOpenAI, Reply

from workload.contract import PROJECT_DIR
from workload.model.masking import MaskingTransport, sent_credentials

KEY = "key-echoed-back-0123456789abcdef"


class _Echo(httpx2.BaseTransport):
    """A service that repeats the credentials it got, with the status it is given."""

    def __init__(self, status: int) -> None:
        self.status = status

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        said = " and ".join(sent_credentials(request))
        return httpx2.Response(self.status, json={"error": {"message": f"got {said}"}})


def _send(status: int, headers: dict[str, str]) -> httpx2.Response:
    with httpx2.Client(transport=MaskingTransport(_Echo(status))) as client:
        return client.post("https://example.invalid/chat", headers=headers, json={})


def test_an_error_answer_loses_the_key_and_the_bearer_the_request_carried() -> None:
    answer = _send(500, {"api-key": KEY, "authorization": "Bearer token-0123456789"})
    assert answer.status_code == 500
    assert answer.json() == {"error": {"message": "got [secret] and [secret]"}}


def test_a_successful_answer_and_short_values_pass_untouched() -> None:
    assert _send(200, {"api-key": KEY}).json() == {"error": {"message": f"got {KEY}"}}
    assert sent_credentials(httpx2.Request("GET", "https://x", headers={"api-key": "abc"})) == []


def test_the_chat_command_stores_no_echoed_key_in_its_trace(
    tmp_path: Path, empty_mlflow_store: Path
) -> None:
    shutil.copyfile(empty_mlflow_store, tmp_path / "mlflow.db")  # its tables made already
    echo = {"error": {"code": "BadRequest", "message": f"key {KEY} was not expected"}}
    with FakeAzureOpenAI(api_key=KEY) as fake:
        fake.script(Reply(400, echo))  # not retried: the answer as it came
        keep = ("PATH", "HOME", "LANG", "TMPDIR")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(
            {
                "AZURE_OPENAI_ENDPOINT": fake.endpoint,
                "AZURE_OPENAI_API_KEY": KEY,
                "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
                "AZURE_OPENAI_DEPLOYMENT": fake.deployment,
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "PYTHONPATH": str(PROJECT_DIR),
            }
        )
        done = subprocess.run(
            [sys.executable, "-m", "workload", "chat", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert done.returncode == 1, done.stderr
    assert "[secret]" in done.stderr and KEY not in done.stdout + done.stderr
    stored = [path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()]
    assert any(b"[secret] was not expected" in data for data in stored), "the error is traced"
    assert not any(KEY.encode() in data for data in stored), "the key is stored nowhere"


def test_a_one_letter_key_is_masked_alone_in_a_rows_error_not_inside_words() -> None:
    import openai

    from workload.evaluation.runner import _describe

    request = httpx2.Request("POST", "https://example.invalid/chat")
    answer = httpx2.Response(
        400, request=request, json={"error": {"message": "max_tokens too large for key k"}}
    )
    err = openai.BadRequestError("bad", response=answer, body=answer.json())
    assert _describe(err, "k") == "HTTP 400: max_tokens too large for key [secret]", (
        "the key is masked where it stands alone, and max_tokens keeps its letters"
    )
    assert _describe(err, KEY) == "HTTP 400: max_tokens too large for key k"


def test_a_one_letter_key_is_masked_alone_in_a_judges_error_not_inside_words() -> None:
    from test_eval import _StubClient

    from workload.evaluation.judges import JudgeClient, guidelines_judge
    from workload.model.paced_client import RunControl

    stub = _StubClient("max_tokens k")  # not MLflow's judge format: a judge error
    judge = JudgeClient(stub, "judge-dep", RunControl(1), 64, secret="k")  # type: ignore[arg-type]
    scorer = guidelines_judge(judge, guidelines=["Be kind."], record=lambda *_: None)
    feedback = scorer.run(inputs={"prompt": "p"}, outputs="r")
    assert feedback.error.error_message == "the judge's answer is not JSON: 'max_tokens [secret]'"
