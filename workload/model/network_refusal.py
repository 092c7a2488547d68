"""Azure's refusals of a private account (``llmops:network private``), said in one line.

A private stack's Azure OpenAI account answers only inside its virtual network (and the
addresses ``llmops:allowedIpRanges`` lists). From anywhere else Azure answers 403 with
one of two messages: public network access is off, or the caller's address is not among
the allowed ones. Either way the key or token is fine and retrying cannot help: what
helps is running where the account is reachable.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NETWORK_HINT", "NETWORK_REFUSALS", "network_hint"]

#: What Azure says, as it says it: public network access Disabled; the caller's address
#: not among the account's IP rules (network rules default Deny).
NETWORK_REFUSALS: Final = (
    "Public access is disabled. Please configure private endpoint.",
    "Access denied due to Virtual Network/Firewall rules.",
)

#: What to do instead: run inside the network, or let this machine's address in.
NETWORK_HINT: Final = (
    "the account is private (llmops:network private) and refuses calls from outside its "
    "virtual network: run it on the cluster with `python -m workload submit`, or add this "
    "machine's public IPv4 address to llmops:allowedIpRanges and run `pulumi up`"
)


def network_hint(status: int, message: str) -> str:
    """:data:`NETWORK_HINT` when ``status`` and ``message`` are Azure's refusal of a
    private account's network, else ""."""
    if status != 403:
        return ""
    folded = " ".join(message.split()).casefold()
    refused = any(refusal.casefold().rstrip(".") in folded for refusal in NETWORK_REFUSALS)
    return NETWORK_HINT if refused else ""
