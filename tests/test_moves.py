"""A migration's pieces that need no kernel: the moves a record keeps, pinned over the
files' own (netmanager.mapping.moves), and a link moved between namespaces in the fake
kernel as the kernel moves one (netmanager.kernel.fake)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

import netmanager
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
