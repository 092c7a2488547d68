"""A second ``up`` as the engine and the providers play it: what is sent, what differs, what the
provider then holds.

Given a resource of an earlier run, one step of a later run:

1. The resource options the program set apply first: ``ignore_changes`` puts the earlier
   inputs back at each path (Pulumi's ``PropertyPath.Reset``: a path the earlier inputs lack
   is removed), and those are the inputs the stack records.
2. The diff. A type whose provider reads its whole state back (the Terraform-based ones,
   :attr:`~.resource_types.ResourceType.reads_back`) compares what is sent with what it
   read back: a property it holds and the program no longer sends is a diff unless the
   provider fills it in itself (``computed``). Other types compare with the earlier inputs.
3. The step: ``same`` (no call), ``replace`` (a changed property the provider cannot
   update, or one the program named in ``replace_on_changes``), or ``update``. After an
   update a reading-back type holds what its ``reads_back`` rule says, which may not be
   what was sent: then the next ``up`` shows the diff again, as the real one would. Other
   types hold the sent inputs laid over what they held (azure-native leaves a property it
   is no longer sent as it is, pulumi-azure-native#2507).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["Change", "Options", "Step", "diff", "ignore", "overlay", "step"]

Change = Literal["create", "same", "update", "replace"]
"""What ``up`` does to a resource: create it, leave it, update it in place, or replace it."""

_INDEX: Final = re.compile(r"\[\d+\]")


@dataclass(frozen=True)
class Options:
    """The resource options a replay honours, as the program sent them."""

    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False


@dataclass(frozen=True)
class Step:
    """One resource's step in a later run."""

    change: Change
    diff: tuple[str, ...]
    """The property paths that differ (``aiGateway.inferenceTableConfig``, ``a.b[0].c``)."""
    inputs: dict[str, Any]
    """The inputs the stack records (``ignore_changes`` applied)."""
    held: dict[str, Any] | None
    """What a reading-back provider holds afterwards. None for a replacement (a new resource
    answers) and for a type that keeps what it is not sent (:func:`overlay`, which the
    engine applies to the values as the program sent them, secrets and all)."""


def ignore(
    sent: Mapping[str, Any], earlier: Mapping[str, Any], paths: tuple[str, ...]
) -> dict[str, Any]:
    """``sent`` with each ``a.b.c`` path reset to its value in ``earlier``, or removed where
    ``earlier`` has none (Pulumi's ``PropertyPath.Reset``; no intermediate object is made)."""
    result: dict[str, Any] = _copy(sent)
    for path in paths:
        keys = path.split(".")
        new: Any = result
        old: Any = earlier
        for key in keys[:-1]:
            new = new.get(key) if isinstance(new, dict) else None
            old = old.get(key) if isinstance(old, Mapping) else None
        if not isinstance(new, dict):
            continue
        leaf = keys[-1]
        if isinstance(old, Mapping) and leaf in old:
            new[leaf] = _copy(old[leaf])
        else:
            new.pop(leaf, None)
    return result


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def diff(sent: Any, held: Any, computed: frozenset[str] = frozenset(), path: str = "") -> list[str]:
    """The paths where ``sent`` and ``held`` differ; a property ``held`` has and ``sent`` lacks
    counts unless its path (list indexes left out) is in ``computed``."""
    if isinstance(sent, Mapping) and isinstance(held, Mapping):
        found: list[str] = []
        for key in [*sent, *(k for k in held if k not in sent)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in sent:
                if _INDEX.sub("", where) not in computed:
                    found.append(where)
            elif key not in held:
                found.append(where)
            else:
                found += diff(sent[key], held[key], computed, where)
        return found
    if isinstance(sent, list) and isinstance(held, list) and len(sent) == len(held):
        found = []
        for index, (one, other) in enumerate(zip(sent, held, strict=True)):
            found += diff(one, other, computed, f"{path}[{index}]")
        return found
    return [] if sent == held else [path]


def overlay(held: Any, sent: Any) -> Any:
    """What is held after an update that keeps what it is no longer sent: the sent inputs over
    what was held, objects merged key by key."""
    if isinstance(held, Mapping) and isinstance(sent, Mapping):
        merged = dict(held)
        for key, value in sent.items():
            merged[key] = overlay(held.get(key), value)
        return merged
    if _same_named_items(held, sent):
        # Sub-resources declared inside their parent (a virtual network's subnets): Azure
        # answers the update with each one as it holds it, its id and state included.
        return [overlay(h, s) for h, s in zip(held, sent, strict=True)]
    return sent


def _same_named_items(held: Any, sent: Any) -> bool:
    """Whether two lists hold the same named objects, in the same order."""
    if not isinstance(held, list) or not isinstance(sent, list) or len(held) != len(sent):
        return False
    return all(
        isinstance(h, Mapping)
        and isinstance(s, Mapping)
        and "name" in s
        and h.get("name") == s["name"]
        for h, s in zip(held, sent, strict=True)
    )


ReadBack = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]
"""``reads_back(held, sent) -> held``: what a provider holds (and reads back) after an update."""


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    bare = _INDEX.sub("", path)
    return any(bare == p or bare.startswith(f"{p}.") for p in prefixes)


def step(
    sent: Mapping[str, Any],
    *,
    earlier_inputs: Mapping[str, Any],
    held: Mapping[str, Any],
    options: Options,
    reads_back: ReadBack | None = None,
    computed: frozenset[str] = frozenset(),
    replaced_by: tuple[str, ...] = (),
) -> Step:
    """One resource's step, from what the program sent and what the stack and provider hold.

    ``held`` is what the provider held after the earlier run (its outputs); ``reads_back``,
    ``computed`` and ``replaced_by`` describe its type (:class:`~.resource_types.ResourceType`).
    """
    inputs = ignore(sent, earlier_inputs, options.ignore_changes)
    found = tuple(
        diff(inputs, held, computed) if reads_back else diff(inputs, earlier_inputs, computed)
    )
    if any(_under(path, (*replaced_by, *options.replace_on_changes)) for path in found):
        return Step("replace", found, inputs, None)
    if reads_back is None:
        return Step("update" if found else "same", found, inputs, None)
    # No diff, no call: the provider holds what it held.
    return (
        Step("update", found, inputs, reads_back(held, inputs))
        if found
        else Step("same", (), inputs, dict(held))
    )
