"""A migration's pieces that need no kernel: the moves a record keeps, pinned over the
files' own (netmanager.mapping.moves), and a link moved between namespaces in the fake
kernel as the kernel moves one (netmanager.kernel.fake)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

import netmanager
from netmanager.compile.hostconfig import HostConfig
from netmanager.kernel.fake import FakeKernel
from netmanager.kernel.objects import Address, Link, LinkKind, Namespace, VethPeer, link_key
from netmanager.mapping import map_model
from netmanager.mapping.moves import Move, file_pin, holding, pinned

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_a_move_pins_the_vm_over_the_files_until_they_change_its_pin() -> None:
    model = netmanager.load(
        EXAMPLES / "two-hosts" / "real.xml", EXAMPLES / "two-hosts" / "virtual.xml"
    )
    assert file_pin(model, "vm1") == "host1"
    moves = {"vm1": Move("host2", "host1")}
    assert map_model(pinned(model, moves)).placement == {"vm1": "host2", "vm2": "host2"}
    assert map_model(pinned(model, {})).placement == {"vm1": "host1", "vm2": "host2"}
    # it holds while the files pin the VM where they did when it moved
    assert holding(model, moves) == moves
    assert holding(model, {"vm1": Move("host2", None)}) == {}  # the files pinned it since
    assert holding(model, {"vm9": Move("host2")}) == {}  # no such VM any more
    assert holding(model, {"vm1": Move("host9", "host1")}) == {}  # no such host
    assert Move.from_json(Move("host2", None).as_json()) == Move("host2", None)


def test_the_fake_kernel_moves_a_veth_end_as_the_kernel_does() -> None:
    objects = [
        Namespace("a"),
        Namespace("b"),
        Namespace("vm"),
        Link("a", "br0", LinkKind.BRIDGE, "nm:t:bridge"),
        Link("a", "vif", LinkKind.VETH, "nm:t:port", master="br0", peer=VethPeer("vm", "eth0")),
        Link("vm", "eth0", LinkKind.VETH, "nm:t:port", peer=VethPeer("a", "vif")),
        Address("vm", "eth0", ipaddress.ip_interface("10.0.0.1/24")),
        Address("a", "vif", ipaddress.ip_interface("10.9.0.1/24")),
    ]
    fake = FakeKernel(objects)
    fake.move_link("a", "vif", "b")
    assert fake.model.get(link_key("a", "vif")) is None
    moved = fake.model.get(link_key("b", "vif"))
    assert isinstance(moved, Link) and moved.master is None and not moved.up
    assert moved.peer == VethPeer("vm", "eth0")
    peer = fake.model.get(link_key("vm", "eth0"))
    assert isinstance(peer, Link) and peer.peer == VethPeer("b", "vif")
    # the VM's end keeps its address; what hung on the moved end went
    keys = {o.key for o in fake.model}
    assert ("address", "vm", "eth0", "10.0.0.1/24") in keys
    assert not any(k[:3] == ("address", "a", "vif") for k in keys)
    with pytest.raises(OSError):
        fake.move_link("a", "vif", "b")  # not there any more
    with pytest.raises(OSError):
        fake.move_link("b", "vif", "nowhere")


def _configs(moves: dict[str, Move]) -> dict[str, HostConfig]:
    from netmanager.apply.prepare import prepare

    real, virtual = EXAMPLES / "two-hosts" / "real.xml", EXAMPLES / "two-hosts" / "virtual.xml"
    return dict(prepare(real, virtual, moves=moves).configs)


def test_while_a_vm_moves_every_host_reaches_it_on_both_sides() -> None:
    """transit: each host made ready keeps the forwarding it has and gains the other
    side's, so that nothing towards the VM breaks before it moves (make before break)."""
    from netmanager.apply.migrate import transit

    spread = _configs({"vm1": Move("host1"), "vm2": Move("host2")})  # vm1 on host1
    together = _configs({"vm1": Move("host2"), "vm2": Move("host2")})  # both on host2
    assert set(together) == {"host2"}
    one = together["host2"]
    assert one.segments[0].tunnel is None
    mac1 = next(p.mac for c in spread.values() for p in c.ports if p.vm == "vm1")
    vtep1, vtep2 = spread["host2"].segments[0].fdb[0][1], spread["host1"].segments[0].fdb[0][1]
    # vm1 moves to host2: host2, ready without vm1, keeps its tunnel and vm1's entry
    # towards host1 (vm2 reaches vm1 there until it moves)
    ready = transit(one.without_vm("vm1"), spread["host2"])
    segment = ready.segments[0]
    assert segment.tunnel is not None and (mac1, vtep1) in segment.fdb
    assert {p.mtu for p in ready.ports} == {segment.mtu} == {1450}
    assert [p.vm for p in ready.ports] == ["vm2"]
    # vm1 moves back to host1: host2, the source, keeps vm1 and gains the tunnel and vm1's
    # entry towards host1 (where vm1 will be), its ports at the tunnel's MTU
    ready = transit(one, spread["host2"])
    segment = ready.segments[0]
    assert segment.tunnel is not None and segment.remotes == (vtep1,)
    assert (mac1, vtep1) in segment.fdb and sorted(p.vm for p in ready.ports) == ["vm1", "vm2"]
    assert {p.mtu for p in ready.ports} == {1450}
    assert vtep2 not in segment.remotes
    # a host with nothing on the other side, or the same on both, is as it is
    assert transit(one, None) is one
    assert transit(spread["host1"], spread["host1"]) is spread["host1"]


def test_an_adoption_travels_as_words() -> None:
    from netmanager.host.protocol import Adoption

    taken = Adoption("two-hosts", "vm1", "nm-host1", 312)
    assert taken.text() == "two-hosts vm1 nm-host1 312"
    assert Adoption.from_text(taken.text()) == taken
    assert Adoption.from_text("t vm ns") == Adoption("t", "vm", "ns", 0)
    assert Adoption("t", "vm", "ns").text() == "t vm ns"
    for bad in ("t vm", "t vm ns x", "t vm ns 60001", "t vm ns -1", "a b c d e"):
        with pytest.raises(ValueError):
            Adoption.from_text(bad)
