"""The packaged prompt and prompt files: checked before anything is registered, filled in here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workload.errors import SettingsError
from workload.releases.template import load_template_file, packaged_template

LAB_SYSTEM = "Assistant is a large language model trained by OpenAI."


def _file(tmp_path: Path, obj: object) -> Path:
    path = tmp_path / "prompt.json"
    path.write_text(json.dumps(obj))
    return path


def test_the_packaged_prompt_makes_the_labs_two_messages() -> None:
    template = packaged_template()
    assert template.messages("Tell me a joke about animals.") == [
        {"role": "system", "content": LAB_SYSTEM},
        {"role": "user", "content": "Tell me a joke about animals."},
    ], "the lab's call is unchanged by default"
    assert template.request_parameters() == {}, "no model config: the request has no extras"


def test_the_users_text_is_filled_in_literally_with_spaces_in_the_braces(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        {
            "template": [{"role": "user", "content": "Q: {{ prompt }}!"}],
            "model_config": {"temperature": 0.2, "max_tokens": 50, "stop_sequences": ["END"]},
        },
    )
    template = load_template_file(path)
    text = r"a \1 {{prompt}} $0"
    assert template.messages(text) == [{"role": "user", "content": f"Q: {text}!"}]
    assert template.request_parameters() == {"temperature": 0.2, "max_tokens": 50, "stop": ["END"]}


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        ([], "must be a JSON object"),
        ({"template": []}, "non-empty list"),
        ({"template": [{"role": "user", "content": "hi"}]}, "no user message holds {{prompt}}"),
        ({"template": [{"role": "robot", "content": "{{prompt}}"}]}, "role 'robot'"),
        ({"template": [{"role": "user", "content": "{{prompt}} {{tone}}"}]}, "uses {{tone}}"),
        ({"template": [{"role": "user", "content": "{{prompt}}"}], "extra": 1}, "key 'extra'"),
        (
            {"template": [{"role": "user", "content": "{{prompt}}"}], "model_config": {"top_p": 3}},
            "model_config",
        ),
    ],
)
def test_a_bad_prompt_file_names_its_problem(tmp_path: Path, obj: object, says: str) -> None:
    with pytest.raises(SettingsError, match=r"prompt\.json") as raised:
        load_template_file(_file(tmp_path, obj))
    assert says in str(raised.value)


def test_a_file_that_is_not_json_or_missing_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(SettingsError, match="not JSON"):
        load_template_file(tmp_path / "bad.json")
    with pytest.raises(SettingsError, match="cannot read prompt file"):
        load_template_file(tmp_path / "absent.json")


def test_a_changed_commit_message_alone_is_the_same_template(tmp_path: Path) -> None:
    packaged = packaged_template()
    copy = json.loads(json.dumps({"template": list(packaged.as_template()), "commit_message": "x"}))
    assert load_template_file(_file(tmp_path, copy)).same_as(packaged)
    copy["model_config"] = {"temperature": 0}
    assert not load_template_file(_file(tmp_path, copy)).same_as(packaged)
