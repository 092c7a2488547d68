"""The offline engine's replay of a later ``up``: ``ignore_changes`` as Pulumi applies it, the
diff against what a provider reads back, and what the provider then holds."""

from __future__ import annotations

from typing import Any

from llmops_infra.offline import replay
from llmops_infra.offline.replay import Options, Step


def test_ignore_changes_puts_the_earlier_inputs_back_or_removes_what_they_lacked() -> None:
    sent: dict[str, Any] = {"a": {"keep": 1, "table": None}, "b": 2}
    earlier = {"a": {"keep": 0, "table": {"on": True}}, "b": 1}
    assert replay.ignore(sent, earlier, ("a.table",)) == {
        "a": {"keep": 1, "table": {"on": True}},
        "b": 2,
    }
    assert replay.ignore({"a": {"table": {"on": True}}}, {"a": {}}, ("a.table",)) == {"a": {}}
    assert replay.ignore({"b": 2}, {"a": {"table": 1}}, ("a.table",)) == {"b": 2}, (
        "no intermediate object is made"
    )
    assert sent["a"]["table"] is None, "the sent inputs are left as they were"


def test_a_property_held_and_no_longer_sent_differs_unless_the_provider_computes_it() -> None:
    held = {"name": "x", "id": "1", "block": {"rules": [{"k": 1, "auto": 2}], "gone": True}}
    sent = {"name": "x", "block": {"rules": [{"k": 1}]}}
    assert replay.diff(sent, held) == ["block.rules[0].auto", "block.gone", "id"]
    computed = frozenset({"id", "block.rules.auto"})
    assert replay.diff(sent, held, computed) == ["block.gone"]
    assert replay.diff({"name": "y", "new": 1}, {"name": "x"}) == ["name", "new"]
    assert replay.diff({"l": [1, 2]}, {"l": [1]}) == ["l"]


def _keeps_flag(held: Any, sent: Any) -> dict[str, Any]:
    """A provider that cannot take ``flag`` back once it holds it."""
    return {**sent, **({"flag": held["flag"]} if "flag" in held else {})}


def test_a_provider_that_keeps_what_it_is_no_longer_sent_diffs_on_every_later_up() -> None:
    held = {"name": "x", "flag": True}
    first = replay.step(
        {"name": "x"}, earlier_inputs=held, held=held, options=Options(), reads_back=_keeps_flag
    )
    assert (first.change, first.diff, first.held) == ("update", ("flag",), held)
    again = replay.step(
        {"name": "x"},
        earlier_inputs=first.inputs,
        held=first.held or {},
        options=Options(),
        reads_back=_keeps_flag,
    )
    assert (again.change, again.diff) == ("update", ("flag",)), "the same diff, for ever"
    kept = replay.step(
        {"name": "x"},
        earlier_inputs=held,
        held=held,
        options=Options(ignore_changes=("flag",)),
        reads_back=_keeps_flag,
    )
    assert kept == Step("same", (), held, held), "sending what the provider holds: no call"


def test_a_change_the_provider_cannot_update_is_a_replacement() -> None:
    held = {"name": "x", "note": "old"}

    def played(options: Options, replaced_by: tuple[str, ...] = ()) -> tuple[str, tuple[str, ...]]:
        found = replay.step(
            {"name": "x", "note": "new"},
            earlier_inputs=held,
            held=held,
            options=options,
            reads_back=_keeps_flag,
            replaced_by=replaced_by,
        )
        return found.change, found.diff

    assert played(Options()) == ("update", ("note",))
    assert played(Options(replace_on_changes=("note",))) == ("replace", ("note",))
    assert played(Options(), replaced_by=("note",)) == ("replace", ("note",))


def test_without_a_read_back_rule_the_earlier_inputs_are_compared_and_held_values_kept() -> None:
    # azure-native: a property no longer sent is one update (it stays in Azure), then no diff.
    earlier = {"name": "x", "tags": {"a": "1"}}
    held = {**earlier, "endpoint": "https://x"}
    removed = replay.step({"name": "x"}, earlier_inputs=earlier, held=held, options=Options())
    assert (removed.change, removed.diff, removed.held) == ("update", ("tags",), None)
    assert replay.overlay(held, removed.inputs) == held, "Azure keeps what it is not sent"
    again = replay.step({"name": "x"}, earlier_inputs=removed.inputs, held=held, options=Options())
    assert (again.change, again.diff) == ("same", ())
