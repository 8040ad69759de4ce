"""The state level for one host, observed by the kernel that carries it.

``python -m netmanager.verify.stateworker`` reads one host's HostConfig as JSON on its
standard input and prints what differs, as JSON.  :mod:`netmanager.verify.distributed`
runs it inside a guest host (whose VM namespaces and rules exist only in the guest's
kernel), with the agent's own engine: the kernel objects of the topology are planned
against what the kernel holds (as the agent would stage them) and netmanager's firewall
chains are read back rule by rule.  Printed::

    {"kernel": [[op, namespace, label, line], ...],      # changes apply would make
     "firewall": [[table, chain, [wanted...], [have...]], ...],   # chains that differ
     "unhooked": [table, ...],       # FORWARD does not jump to netmanager's dispatch
     "rules": n,                     # firewall rules as planned
     "before_hook": [rule, ...],     # deciding rules before netmanager's hook
     "bridge_nf": "1" | "0" | null,
     "netem_on": [[namespace, ifname], ...]}

:func:`observe` does the same in this process for a host of this machine.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from netmanager.compile.desired import render_host
from netmanager.compile.hostconfig import HostConfig, topology_prefix
from netmanager.host.firewall import (
    DISPATCH,
    HOOK_COMMENT,
    Firewall,
    _run,
    desired_rulesets,
    ebtables_chain,
    topology_chain,
)
from netmanager.kernel import Engine, HostState, Namespace, Netem, Qdisc, Scope

BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"


def _scope(config: HostConfig) -> Scope:
    """The topology's objects on the host, as its agent scopes them."""
    shared = {config.dom0}
    owned = {v.namespace for v in config.vms} | {p.vm_namespace for p in config.ports}
    owned |= {n.namespace for n in config.nats}
    shared |= {n.external_namespace for n in config.nats if n.external_namespace}
    return Scope.of(config.topology, owned - shared, shared)


def _owned_chain(topology: str, chain: str) -> bool:
    return chain in (
        topology_chain(topology),
        ebtables_chain(topology),
        DISPATCH,
    ) or chain.startswith(topology_prefix(topology))


def _read(dom0: str, path: str) -> str | None:
    try:
        if not dom0:
            return Path(path).read_text().strip()
        return _run(dom0, ["cat", path]).strip()
    except Exception:
        return None


def observe(config: HostConfig) -> dict[str, Any]:
    topology, dom0 = config.topology, config.dom0
    scope = _scope(config)
    desired = HostState.checked(
        [
            o
            for o in render_host(config)
            if not (isinstance(o, Namespace) and o.name in scope.shared)
        ],
        scope,
    )
    with Engine() as engine:
        plan = engine.plan(desired, scope=scope)
    kernel = [
        [str(c.op.value), c.obj.namespace, c.obj.label(), c.line()]
        for c in plan.changes
        if not c.implied
    ]
    netem_on = sorted(
        [o.namespace, o.ifname]
        for o in plan.observed
        if isinstance(o, Qdisc) and isinstance(o.params, Netem)
    )
    observed = Firewall(dom0).observe()
    wanted = desired_rulesets(observed, topology, config)
    firewall = []
    unhooked = []
    rules = 0
    for table, want_set, have_set in (
        ("iptables", wanted[0], observed[0]),
        ("ebtables", wanted[1], observed[1]),
    ):
        for name in sorted(set(want_set.chains) | set(have_set.chains)):
            if not _owned_chain(topology, name):
                continue
            want = list(want_set.chains.get(name, ()))
            have = list(have_set.chains.get(name, ()))
            rules += len(want)
            if want != have:
                firewall.append([table, name, want, have])
        if want_set.hooked and not have_set.hooked:
            unhooked.append(table)
    save = _run(dom0, ["iptables-save", "-t", "filter"])
    before: list[str] = []
    hooked = False
    for line in save.splitlines():
        if not line.startswith("-A FORWARD "):
            continue
        rule = line[len("-A FORWARD ") :]
        if rule.endswith(f"-j {DISPATCH}") and HOOK_COMMENT in rule:
            hooked = True
            break
        before.append(rule)
    deciding = [r for r in before if re.search(r"-j (ACCEPT|DROP|REJECT)\b", r)] if hooked else []
    return {
        "kernel": kernel,
        "firewall": firewall,
        "unhooked": unhooked,
        "rules": rules,
        "before_hook": deciding,
        "bridge_nf": _read(dom0, BRIDGE_NF),
        "netem_on": netem_on,
    }


def main() -> int:
    config = HostConfig.from_json(json.loads(sys.stdin.read()))
    print(json.dumps(observe(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
