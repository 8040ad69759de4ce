"""netmanager show --graph: the drawing of a mapped topology (pure, no root, no Graphviz),
its DOT text, and the SVG and PNG Graphviz makes of it (skipped where dot is missing)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from lxml import etree

from netmanager.cli import graph
from netmanager.cli.main import main
from netmanager.inputs.loader import load
from netmanager.inputs.model import Model
from netmanager.mapping import Mapping, map_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
AEF = (EXAMPLES / "aef-grid/real.xml", EXAMPLES / "aef-grid/virtual.xml")
CLOUD = (EXAMPLES / "virtcloud/real.xml", EXAMPLES / "virtcloud/tenant-a.xml")
TWO = (EXAMPLES / "two-hosts/real.xml", EXAMPLES / "two-hosts/virtual.xml")

ROUTED = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="routed">
  <network name="left" cidr="10.40.1.0/24" isolated="false" gateway="10.40.1.1">
    <shaping bandwidth="20Mbit" latency="5ms"/>
  </network>
  <network name="right" cidr="10.40.2.0/24" isolated="false"/>
  <vm name="gw" forward="true" host="host1">
    <interface network="left" ip="10.40.1.1"/>
    <interface network="right" ip="10.40.2.1">
      <shaping bandwidth="5Mbit" latency="10ms" jitter="1ms" loss="0.1%"/>
    </interface>
  </vm>
  <vm name="l1" host="host1"><interface network="left" ip="10.40.1.11"/></vm>
  <vm name="r1" host="host2"><interface network="right" ip="10.40.2.11"/>
    <route to="10.40.1.0/24" via="10.40.2.1"/></vm>
</virtual>
"""

#: no 802.1Q: networks across hosts go over VXLAN, as on this machine
FEATURES = frozenset({"vxlan", "tbf", "htb", "ifb", "bridge"})


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))


def _mapped(real: Path, virtual: Path) -> tuple[Model, Mapping]:
    model = load(real, virtual)
    features = {h.name: FEATURES for h in model.real.hosts}
    return model, map_model(model, features=features)


def _text(html_label: str) -> str:
    return re.sub(r"<[^>]+>", " ", html_label)


def test_aef_grid_hosts_hold_their_vms_and_networks_join_their_bridges() -> None:
    model, mapping = _mapped(*AEF)
    drawing = graph.topology_drawing(model, mapping)
    assert [c.host for c in drawing.clusters] == ["host1", "host2", "host3", "host4"]
    # every VM drawn once, inside the host the mapping placed it on
    vms = drawing.nodes_of("vm")
    assert sorted(n.name for n in vms) == sorted(v.name for v in model.virtual.vms)
    for node in vms:
        assert drawing.cluster_of(node.id) == mapping.placement[node.name], node.name
    # every network spans hosts here: a node outside the hosts, a bridge in each host
    # it spans, joined by a segment line, and its segment id on the node
    for net in model.virtual.networks:
        node = drawing.node(graph.network_id(net.name))
        assert drawing.cluster_of(node.id) is None
        segment = mapping.segments[net.name]
        assert f"VXLAN VNI {segment.id}" in _text(node.label)
        assert str(net.cidr) in _text(node.label)
        hosts = mapping.network_hosts[net.name]
        bridges = {e.head for e in drawing.edges_of("segment") if e.tail == node.id}
        assert bridges == {graph.bridge_id(h, net.name) for h in hosts}
        for host in hosts:
            assert drawing.cluster_of(graph.bridge_id(host, net.name)) == host
    assert "1Mbit/s" in _text(drawing.node(graph.network_id("backbone")).label)
    # each interface: a line from its network's bridge on the VM's host to its row
    ports = {(e.head, e.head_port): e for e in drawing.edges_of("port")}
    assert len(ports) == sum(len(v.interfaces) for v in model.virtual.vms)
    for vm in model.virtual.vms:
        for index, iface in enumerate(vm.interfaces):
            edge = ports[(graph.vm_id(vm.name), f"i{index}")]
            assert edge.tail == graph.bridge_id(mapping.placement[vm.name], iface.network)
            assert ("color", drawing.colors[iface.network]) in edge.attrs
    assert len(set(drawing.colors.values())) == len(model.virtual.networks)
    # the physical environment: each host's eth0 in its box, to the switch, with capacity
    physical = drawing.edges_of("physical")
    assert {(e.tail, e.head) for e in physical} == {
        (graph.underlay_id(h, "eth0"), graph.device_id("sw1"))
        for h in ("host1", "host2", "host3", "host4")
    }
    assert {e.label for e in physical} == {"100Mbit/s · 50us"}
    assert drawing.cluster_of(graph.underlay_id("host3", "eth0")) == "host3"
    assert "8 of 8 VMs" in _text(drawing.clusters[0].label)


def test_nat_pairs_and_the_physical_routers() -> None:
    model, mapping = _mapped(*CLOUD)
    drawing = graph.topology_drawing(model, mapping)
    # the outbound network's NAT gateway sits on its host, an arrow out to the world
    (nat,) = drawing.nodes_of("nat")
    assert nat.name == "cluster" and "10.10.0.254" in _text(nat.label)
    assert drawing.cluster_of(nat.id) == mapping.placement["head"]
    (out,) = drawing.edges_of("outbound")
    assert (out.tail, out.head) == (nat.id, graph.OUTSIDE_ID) and ("dir", "forward") in out.attrs
    (to_nat,) = drawing.edges_of("nat")
    assert (to_nat.tail, to_nat.head) == (graph.network_id("cluster"), nat.id)
    assert "NAT, outbound only" in _text(drawing.node(graph.network_id("cluster")).label)
    # a network on one host sits in that host's box, its VMs plugged straight into it
    assert drawing.cluster_of(graph.network_id("storage")) == "brno1"
    assert not drawing.nodes_of("bridge")
    # the <link> pair: between the storage rows of head and node1, with its rate
    (pair,) = drawing.edges_of("pair")
    assert (pair.tail, pair.head) == (graph.vm_id("head"), graph.vm_id("node1"))
    assert (pair.tail_port, pair.head_port) == ("i1:e", "i1:e")
    assert pair.label == "100Mbit/s (storage)"
    # switches and the router, the links between them with latency
    assert {n.name for n in drawing.nodes_of("switch")} == {"sw-brno", "sw-praha"}
    assert {n.name for n in drawing.nodes_of("router")} == {"wan"}
    labels = {(e.tail, e.head): e.label for e in drawing.edges_of("physical")}
    assert labels[(graph.device_id("sw-praha"), graph.device_id("wan"))] == "10Gbit/s · 2ms"
    # hosts without VMs are drawn all the same
    assert "0 VMs" in _text(next(c for c in drawing.clusters if c.host == "praha1").label)


def test_gateways_routes_and_interface_shaping(tmp_path: Path) -> None:
    virtual = tmp_path / "routed.xml"
    virtual.write_text(ROUTED)
    model, mapping = _mapped(TWO[0], virtual)
    drawing = graph.topology_drawing(model, mapping)
    gw = _text(drawing.node(graph.vm_id("gw")).label)
    assert "forwards" in gw
    assert "gateway for left (default)" in gw and "gateway for 10.40.1.0/24" in gw
    assert "5Mbit/s · 10ms ±1ms · 0.1% loss" in gw  # the interface's own, over nothing
    assert "→ 10.40.1.0/24 via 10.40.2.1 (gw)" in _text(drawing.node(graph.vm_id("r1")).label)
    left = _text(drawing.node(graph.network_id("left")).label)
    assert "gateway 10.40.1.1 (gw)" in left and "20Mbit/s · 5ms" in left
    assert "routed (not isolated)" in left
    # the gateway's lines are the thick ones
    widths = {(e.head, e.head_port): dict(e.attrs)["penwidth"] for e in drawing.edges_of("port")}
    assert widths[(graph.vm_id("gw"), "i0")] > widths[(graph.vm_id("l1"), "i0")]


def test_dot_text_declares_every_node_it_links() -> None:
    model, mapping = _mapped(*CLOUD)
    text = graph.topology_dot(model, mapping)
    assert text.startswith("graph netmanager {") and text.rstrip().endswith("}")
    declared = set(re.findall(r'^\s*("(?:[^"\\]|\\.)*") \[', text, re.M))
    linked = re.findall(r'^\s*("(?:[^"\\]|\\.)*")(?::\S+)? -- ("(?:[^"\\]|\\.)*")', text, re.M)
    assert linked
    for tail, head in linked:
        assert tail in declared and head in declared, (tail, head)
    assert text.count("subgraph") == len(model.real.hosts)
    assert '"vm:node1":"i1":e' in text
    # names are quoted, whatever they hold
    assert graph._id('a"b\\c') == '"a\\"b\\\\c"'


def test_unknown_extension_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", *map(str, TWO), "--graph", "out.pdf"]) == 2
    assert ".svg, .png, .dot" in capsys.readouterr().err


def test_dot_file_needs_no_graphviz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(graph, "dot_command", lambda: None)
    out = tmp_path / "two.dot"
    assert main(["show", *map(str, TWO), "--graph", str(out)]) == 0
    assert out.read_text().startswith("graph netmanager {")
    assert "2 VMs on 2 hosts" in capsys.readouterr().out
    assert main(["show", *map(str, TWO), "--graph", "-"]) == 0
    assert capsys.readouterr().out == out.read_text()
    # an SVG without dot: a clear error and how to get it (exit 6)
    assert main(["show", *map(str, TWO), "--graph", str(tmp_path / "two.svg"), "--json"]) == 6
    error = capsys.readouterr().out
    assert "E760" in error and "scripts/install" in error
    assert not (tmp_path / "two.svg").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot (scripts/install)")
def test_aef_grid_svg_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    svg, png = tmp_path / "aef.svg", tmp_path / "aef.png"
    assert main(["show", *map(str, AEF), "--graph", str(svg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "graph": str(svg),
        "format": "svg",
        "hosts": 4,
        "vms": 32,
        "networks": 4,
    }
    assert main(["show", *map(str, AEF), "--graph", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    # every host, VM and network is written in the picture
    tree = etree.parse(str(svg))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    words = {
        word
        for text in tree.xpath("//svg:text/text()", namespaces=ns)
        for word in str(text).split()
    }
    model = load(*AEF)
    names = [h.name for h in model.real.hosts] + [v.name for v in model.virtual.vms]
    names += [n.name for n in model.virtual.networks]
    assert [n for n in names if n not in words] == []
    assert "10101" in words and "1Mbit/s" in words
