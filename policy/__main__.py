"""The ``llmops-guardrails`` policy pack: what the Pulumi CLI runs for ``--policy-pack policy``.

Constructing the pack starts its analyzer server and never returns, so the
policies live in ``guardrails.py``, where they can be read and imported.
"""

from __future__ import annotations

from guardrails import PACK_NAME, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(name=PACK_NAME, policies=list(POLICIES))
