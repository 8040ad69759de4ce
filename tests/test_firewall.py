"""Firewall chains: rendered in canonical form, replaced atomically, removed without a trace.

Checked through iptables-save / ebtables-save run directly, never through netmanager.
"""

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import netmanager
from netmanager.compile.configs import compile_topology
from netmanager.host.firewall import DISPATCH, Firewall, desired_rulesets, iptables_chains, render

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a namespace"),
]


EMPTY_FILTER = (
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    "COMMIT",
)


def _save(ns: str, tool: str) -> str:
    """The tool's output without comments; an empty filter table with the default policies
    (which the nft backend leaves behind once it has been used) reads as no table."""
    out = subprocess.run(
        ["ip", "netns", "exec", ns, tool], capture_output=True, text=True, check=True
    ).stdout
    lines = tuple(line for line in out.splitlines() if not line.startswith("#"))
    empty_ebtables = tuple(line.replace(" [0:0]", "") for line in EMPTY_FILTER[:-1])
    return "" if lines in (EMPTY_FILTER, empty_ebtables) else "\n".join(lines)


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"nmtfw{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _configs(
    virtual: str, real: str = "virtcloud/real.xml"
) -> dict[str, netmanager.compile.hostconfig.HostConfig]:
    model = netmanager.load(EXAMPLES / real, EXAMPLES / virtual)
    return compile_topology(model, netmanager.map(model))


def test_rendered_rules_read_back_identically(namespace: str) -> None:
    config = _configs("aef-grid/virtual.xml", "aef-grid/real.xml")["host1"]
    firewall = Firewall(namespace)
    observed = firewall.observe()
    ipt, ebt = desired_rulesets(observed, config.topology, config)
    firewall.replace("iptables", ipt, observed[0])
    firewall.replace("ebtables", ebt, observed[1])
    again = firewall.observe()
    assert again[0] == ipt and again[1] == ebt
    saved = _save(namespace, "iptables-save")
    assert f'-A FORWARD -m comment --comment "nm:hook" -j {DISPATCH}' in saved
    assert "-j DROP" in saved and "--physdev-in nv+" in saved
    for chain, rules in iptables_chains(config).items():
        for rule in rules:
            assert f"-A {chain} {rule}" in saved


def test_two_topologies_coexist_and_each_leaves_cleanly(namespace: str) -> None:
    before_ipt, before_ebt = _save(namespace, "iptables-save"), _save(namespace, "ebtables-save")
    firewall = Firewall(namespace)
    configs = {t: next(iter(_configs(f"virtcloud/tenant-{t}.xml").values())) for t in "ab"}
    for config in configs.values():
        observed = firewall.observe()
        ipt, ebt = desired_rulesets(observed, config.topology, config)
        firewall.replace("iptables", ipt, observed[0])
        firewall.replace("ebtables", ebt, observed[1])
    ipt, _ = firewall.observe()
    assert set(ipt.topologies().values()) == {"tenant-a", "tenant-b"}
    # tenant-a leaves: tenant-b's chains are untouched
    b_rules = {n: r for n, r in ipt.chains.items() if n in iptables_chains(configs["b"])}
    observed = firewall.observe()
    ipt_a_gone, ebt_a_gone = desired_rulesets(observed, "tenant-a", None)
    firewall.replace("iptables", ipt_a_gone, observed[0])
    firewall.replace("ebtables", ebt_a_gone, observed[1])
    ipt, _ = firewall.observe()
    assert set(ipt.topologies().values()) == {"tenant-b"}
    assert {n: r for n, r in ipt.chains.items() if n in b_rules} == b_rules
    observed = firewall.observe()
    ipt_none, ebt_none = desired_rulesets(observed, "tenant-b", None)
    firewall.replace("iptables", ipt_none, observed[0])
    firewall.replace("ebtables", ebt_none, observed[1])
    assert _save(namespace, "iptables-save") == before_ipt
    assert _save(namespace, "ebtables-save") == before_ebt


def test_a_refused_restore_changes_nothing(namespace: str) -> None:
    firewall = Firewall(namespace)
    before = _save(namespace, "iptables-save")
    bad = render("iptables", {"nm-bad": ("-s 10.0.0.0/8 -j ACCEPT", "-m nosuchmatch -j DROP")})
    with pytest.raises(netmanager.host.firewall.FirewallError):
        firewall.restore("iptables", bad)
    assert _save(namespace, "iptables-save") == before
