"""Why a topology cannot be mapped: the E6xx diagnostics of the mapping stage.

=====  ====================================================================================
code   meaning (the diagnostic points at)
=====  ====================================================================================
E601   VMs do not fit on the hosts: cpus, memory for VMs (memory minus reserved-memory) or
       max-vms (the VM when no host could ever take it, else the network whose VMs are left)
E602   no physical path, or not enough free bandwidth on it, for a network spread over hosts
       or for a pair (the network or the pair)
E603   a declared latency is below the latency of the physical path (the element that
       declares the latency)
E604   no segment id left: VLAN ids or VNIs allowed by every site the network spans are all
       taken (the network)
E605   the VMs pinned to a host do not fit on it (the host)
E606   the network's encapsulation is not available on a host it spans: ``encap="vlan"``
       needs the kernel feature ``8021q``, ``encap="vxlan"`` needs ``vxlan`` (the network)
W601   two physical links join the same two nodes; only the first is used (the link)
=====  ====================================================================================

Each error ends with ``never`` (it does not fit even with no other topology applied) or
``not now`` (it would fit on the empty infrastructure: other topologies hold what is
missing), the distinction Emulab's ``assign`` makes.  The mapper finds out by mapping again
without the other topologies when an error occurs.
"""

from __future__ import annotations

from dataclasses import dataclass

from netmanager.errors import Diagnostic, Loc, Severity

E_CAPACITY = "E601"
E_BANDWIDTH = "E602"
E_LATENCY = "E603"
E_SEGMENTS = "E604"
E_PINNED = "E605"
E_ENCAP = "E606"
W_PARALLEL = "W601"

PLACEMENT_CODES = frozenset({E_CAPACITY, E_PINNED})

NEVER = "never: it does not fit even with no other topology applied"
NOT_NOW = "not now: it would fit if no other topology were applied"


@dataclass(frozen=True)
class Problem:
    """An error before it is known whether it is permanent; ``subject`` identifies it across
    the two runs of the mapper (with and without other topologies)."""

    code: str
    loc: Loc
    subject: str
    message: str
    hint: str = ""

    def diagnostic(self, permanent: bool | None) -> Diagnostic:
        message = self.message
        if permanent is not None:
            message += f" ({NEVER if permanent else NOT_NOW})"
        return Diagnostic(Severity.ERROR, self.code, message, self.loc, self.hint)


def names(items: list[str], limit: int = 6) -> str:
    """'a, b, c' or 'a, b, c, ... and 4 more'."""
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... and {len(items) - limit} more"
