"""Isolation rules (iptables) and anti-spoofing (ebtables) in a host's dom0, atomically.

Layout, in the filter tables of a host's dom0 (docs/design.md, "Isolation"):

* iptables: ``FORWARD`` jumps first to ``NM-FORWARD``; that chain jumps to one dispatch
  chain per topology (``nmt-<hash>``), then drops whatever comes from a VM port (``nv+``)
  that no topology claimed — a port whose rules are not installed yet fails closed.
  The dispatch chain sends each VM port's traffic to its network's policy chain
  (``nm-<hash>``): replies, then the compiled rules of virtual.xml, first match wins,
  ending in a DROP.
* ebtables: ``FORWARD`` jumps to ``NM-FORWARD``, which jumps to one chain per topology
  (``nme-<hash>``) pinning each VM port's MAC and (unless the VM forwards) its IPv4
  address, for IPv4 and ARP.

Rules are rendered in the canonical form iptables-save/ebtables-save print, so that the
state read back compares line by line with the desired one.  Changes go through
``iptables-restore --noflush`` / ``ebtables-restore --noflush`` from a jinja2 template:
every chain named is replaced whole in one transaction, nothing else is touched.  No
shell is involved; input never reaches a command line.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import jinja2

from netmanager import programs
from netmanager.compile.hostconfig import HostConfig, PolicyRule, short_hash, topology_prefix
from netmanager.inputs.model import Action, Protocol

DISPATCH = "NM-FORWARD"
HOOK_COMMENT = "nm:hook"  # a colon makes iptables-save quote it, as rendered
ANY = ipaddress.IPv4Network("0.0.0.0/0")
_COMMENT_SAFE = re.compile(r"[^A-Za-z0-9 :._/>()=*-]")


class FirewallError(RuntimeError):
    """A restore tool refused a change; nothing of that change was applied."""


def topology_chain(topology: str) -> str:
    return f"nmt-{short_hash(topology)}"


def ebtables_chain(topology: str) -> str:
    return f"nme-{short_hash(topology)}"


def _comment(text: str) -> str:
    """A comment as iptables-save prints it (quoted: every comment of ours has a colon)."""
    if not text.startswith("nm:"):
        text = f"nm: {text}"
    return '-m comment --comment "' + _COMMENT_SAFE.sub("_", text)[:200] + '"'


def _rule_lines(rule: PolicyRule) -> list[str]:
    target = "ACCEPT" if rule.action is Action.ALLOW else "DROP"
    lines = []
    port_ranges: Sequence[tuple[int, int] | None] = rule.ports or [None]
    for src, dst, ports in itertools.product(rule.src, rule.dst, port_ranges):
        parts = []
        if src != ANY:
            parts.append(f"-s {src}")
        if dst != ANY:
            parts.append(f"-d {dst}")
        if rule.protocol is not Protocol.ANY:
            parts.append(f"-p {rule.protocol}")
            if ports is not None:
                first, last = ports
                span = str(first) if first == last else f"{first}:{last}"
                parts.append(f"-m {rule.protocol} --dport {span}")
        parts.append(_comment(rule.reason))
        parts.append(f"-j {target}")
        lines.append(" ".join(parts))
    return lines


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ruleset:
    """netmanager's chains of one table in one namespace: chain name -> rule lines."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hooked: bool = False  # FORWARD jumps to NM-FORWARD

    def topologies(self) -> dict[str, str]:
        """Dispatch chains NM-FORWARD jumps to: chain -> topology (from the comment, where
        the table has comments; ebtables-nft has none, so there it is the chain's name)."""
        found = {}
        for rule in self.chains.get(DISPATCH, ()):
            m = re.search(r'(?:--comment "nm:([^"]+)" )?-j (nm\S+)$', rule)
            if m:
                found[m.group(2)] = m.group(1) or m.group(2)
        return found


# ------------------------------------------------------------------------------- iptables


@dataclass
class FirewallChange:
    namespace: str
    table: str
    desired: Ruleset
    observed: Ruleset

    @property
    def changed(self) -> bool:
        return self.desired != self.observed

    def lines(self) -> list[str]:
        out = []
        for name in sorted(set(self.desired.chains) | set(self.observed.chains)):
            want, have = self.desired.chains.get(name), self.observed.chains.get(name)
            if want == have:
                continue
            if have is None:
                out.append(
                    f"+ {self.table} chain {name} in {self.namespace} ({len(want or ())} rules)"
                )
            elif want is None:
                out.append(f"- {self.table} chain {name} in {self.namespace}")
            else:
                out.append(
                    f"~ {self.table} chain {name} in {self.namespace} ({len(have)} -> {len(want)} rules)"
                )
        if self.desired.hooked != self.observed.hooked:
            out.append(
                f"{'+' if self.desired.hooked else '-'} {self.table} FORWARD hook in {self.namespace}"
            )
        return out


def iptables_chains(config: HostConfig) -> dict[str, tuple[str, ...]]:
    """The chains a topology owns on one host (dispatch and one per network)."""
    chains: dict[str, tuple[str, ...]] = {}
    policy_chain = {p.network: p.chain for p in config.policies}
    chains[topology_chain(config.topology)] = tuple(
        f"-m physdev --physdev-in {port.vif} --physdev-is-bridged "
        f"{_comment(f'nm:{config.topology}:{port.vm}:{port.network}')} -j {policy_chain[port.network]}"
        for port in config.ports
    )
    for policy in config.policies:
        rules = ["-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
        for rule in policy.rules:
            rules.extend(_rule_lines(rule))
        chains[policy.chain] = tuple(rules)
    return chains


def dispatch_rules(topologies: dict[str, str]) -> tuple[str, ...]:
    """NM-FORWARD: a jump per topology (chain -> topology), then fail closed on VM ports."""
    jumps = [
        f'-m comment --comment "nm:{topology}" -j {chain}'
        for chain, topology in sorted(topologies.items(), key=lambda kv: kv[1])
    ]
    return (*jumps, "-m physdev --physdev-in nv+ --physdev-is-bridged -j DROP")


HOOK_RULE = f'-m comment --comment "{HOOK_COMMENT}" -j {DISPATCH}'


# ------------------------------------------------------------------------------- ebtables


def ebtables_rules(config: HostConfig) -> tuple[str, ...]:
    rules = []
    for port in config.ports:
        rules.append(f"-s ! {port.mac} -i {port.vif} -j DROP")
        if not port.forward:
            rules.append(f"-p IPv4 -i {port.vif} --ip-src ! {port.ip.ip} -j DROP")
        rules.append(f"-p ARP -i {port.vif} --arp-ip-src ! {port.ip.ip} -j DROP")
    return tuple(rules)


def ebtables_dispatch(topologies: dict[str, str]) -> tuple[str, ...]:
    return tuple(f"-j {chain}" for chain in sorted(topologies))


# ----------------------------------------------------------------------------- rendering


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("netmanager", "templates"),
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render(
    table: str,
    chains: dict[str, tuple[str, ...]],
    ops: Iterable[str] = (),
    purpose: str = "",
    ip_table: str = "filter",
) -> str:
    """Restore input for ``table`` ("iptables" or "ebtables"); ``ip_table`` picks the
    iptables table (filter, nat)."""
    template = _templates().get_template(f"{table}.restore.j2")
    return template.render(
        chains=[Chain(name, rules) for name, rules in chains.items()],
        ops=list(ops),
        purpose=purpose,
        table=ip_table,
    )


# ------------------------------------------------------------------------- reading back


def parse_save(
    text: str,
    prefixes: tuple[str, ...] = ("nm", "NM-"),
    table: str = "filter",
    hook: tuple[str, str] = ("FORWARD", DISPATCH),
) -> Ruleset:
    """netmanager's chains of one table, and whether ``hook`` (builtin chain, our chain)
    is in place, out of iptables-save/ebtables-save output."""
    chains: dict[str, list[str]] = {}
    hooked = False
    in_filter = False
    for line in text.splitlines():
        if line.startswith("*"):
            in_filter = line == f"*{table}"
            continue
        if not in_filter:
            continue
        if line.startswith(":"):
            name = line[1:].split()[0]
            if name.startswith(prefixes):
                chains.setdefault(name, [])
            continue
        m = re.match(r"-A (\S+) (.*)$", line)
        if not m:
            continue
        chain, rule = m.group(1), m.group(2)
        if chain == hook[0] and rule.endswith(f"-j {hook[1]}"):
            hooked = True
        elif chain in chains:
            chains[chain].append(rule)
    return Ruleset({k: tuple(v) for k, v in chains.items()}, hooked)


# ----------------------------------------------------------------------------- execution


def _command(namespace: str, argv: list[str]) -> list[str]:
    tool = programs.which(argv[0])
    if tool is None:
        raise FirewallError(programs.not_installed(argv[0]))
    if not namespace:
        return [tool, *argv[1:]]
    nsenter = programs.path("nsenter")
    return [nsenter, f"--net=/run/netns/{namespace}", tool, *argv[1:]]


def _run(namespace: str, argv: list[str], stdin: str | None = None) -> str:
    result = subprocess.run(
        _command(namespace, argv),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        where = f" in namespace {namespace}" if namespace else ""
        raise FirewallError(
            f"{argv[0]}{where} failed: {result.stderr.strip() or result.returncode}"
        )
    return result.stdout


class Firewall:
    """Reads and replaces netmanager's chains in one namespace ("" is the root namespace)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def observe(self) -> tuple[Ruleset, Ruleset]:
        """(iptables, ebtables) rulesets netmanager owns here."""
        ipt = parse_save(_run(self.namespace, ["iptables-save", "-t", "filter"]))
        ebt = parse_save(_run(self.namespace, ["ebtables-save"]))
        return ipt, ebt

    def restore(self, table: str, text: str) -> None:
        tool = "iptables-restore" if table == "iptables" else "ebtables-restore"
        argv = [tool, "--noflush"] + (["-w"] if table == "iptables" else [])
        _run(self.namespace, argv, stdin=text)

    def replace(self, table: str, desired: Ruleset, observed: Ruleset) -> None:
        """Make netmanager's chains of ``table`` equal ``desired``, in at most two steps:
        one atomic restore that fills every desired chain and the hook, then (only when
        chains disappear) one that deletes the chains no longer referenced."""
        ops = []
        if desired.hooked and not observed.hooked:
            ops.append(
                f"-I FORWARD 1 {HOOK_RULE}"
                if table == "iptables"
                else f"-I FORWARD 1 -j {DISPATCH}"
            )
        if not desired.hooked and observed.hooked:
            ops.append(
                f"-D FORWARD {HOOK_RULE}" if table == "iptables" else f"-D FORWARD -j {DISPATCH}"
            )
        changed = {
            n: r
            for n, r in desired.chains.items()
            if observed.chains.get(n) != r or n not in observed.chains
        }
        gone = [n for n in observed.chains if n not in desired.chains]
        # chains that go away are emptied first (they may still be referenced elsewhere)
        emptied = {n: () for n in gone}
        if changed or emptied or ops:
            self.restore(
                table, render(table, {**changed, **emptied}, ops, purpose="replace chains")
            )
        if gone:
            removal = [f"-X {n}" for n in gone]
            self.restore(table, render(table, {}, removal, purpose="delete chains"))


# ------------------------------------------------------------------------ desired state


def _owned_by(topology: str, chain: str) -> bool:
    return chain in (topology_chain(topology), ebtables_chain(topology)) or chain.startswith(
        topology_prefix(topology)
    )


def desired_rulesets(
    observed: tuple[Ruleset, Ruleset], topology: str, config: HostConfig | None
) -> tuple[Ruleset, Ruleset]:
    """netmanager's chains on a host once ``topology`` has ``config`` (None: is gone),
    the other topologies' chains as observed."""
    ipt, ebt = observed
    result = []
    for table, current in (("iptables", ipt), ("ebtables", ebt)):
        chains = {
            name: rules
            for name, rules in current.chains.items()
            if name != DISPATCH and not _owned_by(topology, name)
        }
        others = {c: t for c, t in current.topologies().items() if not _owned_by(topology, c)}
        if config is not None:
            if table == "iptables":
                own = iptables_chains(config)
                chains.update(own)
                others[topology_chain(topology)] = topology
            else:
                chains[ebtables_chain(topology)] = ebtables_rules(config)
                others[ebtables_chain(topology)] = topology
        if others:
            dispatch = dispatch_rules(others) if table == "iptables" else ebtables_dispatch(others)
            chains[DISPATCH] = dispatch
        result.append(Ruleset(chains, hooked=bool(others)))
    return result[0], result[1]


# ------------------------------------------------------------------------- NAT gateways

# An outbound-only gateway (eth0 inside, eth1 towards the outside world): masquerade what
# leaves, let in only replies, and nothing at all addressed to the gateway from outside.
GATEWAY_CHAINS: dict[str, dict[str, tuple[str, ...]]] = {
    "nat": {"NM-NAT": ("-o eth1 -j MASQUERADE",)},
    "filter": {
        "NM-GW": (
            "-i eth0 -o eth1 -j ACCEPT",
            "-i eth1 -o eth0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-j DROP",
        ),
        "NM-GW-IN": (
            "-i eth1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-i eth1 -j DROP",
        ),
    },
}
GATEWAY_HOOKS: dict[str, tuple[tuple[str, str], ...]] = {
    "nat": (("POSTROUTING", "NM-NAT"),),
    "filter": (("FORWARD", "NM-GW"), ("INPUT", "NM-GW-IN")),
}


def ensure_gateway(namespace: str) -> bool:
    """Put a NAT gateway's rules in place (in its own namespace); True when changed."""
    saved = _run(namespace, ["iptables-save"])
    changed = False
    for ip_table, chains in GATEWAY_CHAINS.items():
        ops = []
        current: dict[str, tuple[str, ...]] = {}
        for builtin, chain in GATEWAY_HOOKS[ip_table]:
            ruleset = parse_save(saved, ("NM-",), ip_table, (builtin, chain))
            current.update(ruleset.chains)
            if not ruleset.hooked:
                ops.append(f'-I {builtin} 1 -m comment --comment "nm:hook" -j {chain}')
        if current == chains and not ops:
            continue
        text = render("iptables", chains, ops, purpose="NAT gateway", ip_table=ip_table)
        _run(namespace, ["iptables-restore", "--noflush", "-w"], stdin=text)
        changed = True
    return changed
