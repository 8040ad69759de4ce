"""libvirt domains as VMs: the domain XML read and written, interfaces matched, and the
keeper's lifecycle against libvirt's test driver (``test:///default``: in-process, no
daemon, no real taps — for the XML and the lifecycle only; the real lane runs embedded
QEMU drivers in emulated hosts, tests/hypervisor/test_libvirt_hosts.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netmanager.hypervisor import domains as dom
from netmanager.hypervisor.domxml import (
    DefinedInterface,
    DomainXMLError,
    bridge_interface,
    domain_xml,
    link_state_interface,
    owner_element,
    read_domain,
    resolve_type,
)
from netmanager.hypervisor.keeper import (
    KeeperClient,
    KeeperError,
    embed_root,
    ensure_keeper,
    running_keeper,
)
from netmanager.hypervisor.spec import DomainSpec, DomainTemplate, DomainType, Share

LIVE = """<domain type='qemu' id='3'>
  <name>web1</name>
  <uuid>0b8c2a4e-8f5a-4bb3-9a0e-1f3d3c1a2b3c</uuid>
  <metadata>
    <nm:owner xmlns:nm="urn:netmanager:libvirt:1" topology="lab" vm="web"/>
  </metadata>
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:AA:00:01'/>
      <source bridge='br-user'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:aa:00:02'/>
      <source network='default' bridge='virbr0'/>
      <target dev='vnet4'/>
      <model type='e1000'/>
    </interface>
    <interface type='ethernet'>
      <mac address='52:54:00:aa:00:03'/>
      <target dev='tap7'/>
    </interface>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
  </devices>
</domain>"""


def test_a_live_domain_xml_reads_as_its_interfaces_owner_and_agent_channel() -> None:
    info = read_domain(LIVE)
    assert info.name == "web1" and info.uuid.startswith("0b8c2a4e")
    assert info.owner == ("lab", "web") and info.guest_agent
    assert [(i.mac, i.type, i.source, i.target, i.model) for i in info.interfaces] == [
        ("52:54:00:aa:00:01", "bridge", "br-user", "vnet3", "virtio"),
        ("52:54:00:aa:00:02", "network", "default", "vnet4", "e1000"),
        ("52:54:00:aa:00:03", "ethernet", None, "tap7", None),
    ]
    assert info.interfaces[0].bridge == "br-user" and info.interfaces[1].bridge is None
    assert info.interface_by_mac("52:54:00:AA:00:02") is info.interfaces[1]


@pytest.mark.parametrize(
    "text",
    [
        "<domain><name>x</name>",  # truncated
        "<network><name>x</name></network>",
        "<domain><uuid>1</uuid></domain>",
        '<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/shadow">]><domain><name>&e;</name></domain>',
    ],
)
def test_unreadable_or_hostile_domain_xml_is_an_error(text: str) -> None:
    with pytest.raises(DomainXMLError):
        info = read_domain(text)
        assert "root:" not in info.name  # an entity must never be expanded


def test_a_nic_moved_to_a_bridge_keeps_its_device_identity() -> None:
    iface = read_domain(LIVE).interfaces[1]
    moved = read_domain(
        f"<domain><name>d</name><devices>{bridge_interface(iface, 'nb123')}</devices></domain>"
    ).interfaces[0]
    # libvirt matches the device by MAC and refuses another model or tap name
    assert (moved.type, moved.source, moved.mac, moved.model, moved.target) == (
        "bridge",
        "nb123",
        iface.mac,
        "e1000",
        "vnet4",
    )
    assert "virbr0" not in moved.xml and "network=" not in moved.xml


def test_a_nic_s_link_goes_down_and_up_as_the_same_device() -> None:
    iface = read_domain(LIVE).interfaces[0]
    assert iface.link_up
    down = read_domain(
        f"<domain><name>d</name><devices>{link_state_interface(iface, False)}</devices></domain>"
    ).interfaces[0]
    assert not down.link_up and (down.mac, down.source, down.target) == (
        iface.mac,
        iface.source,
        iface.target,
    )
    up = read_domain(
        f"<domain><name>d</name><devices>{link_state_interface(down, True)}</devices></domain>"
    ).interfaces[0]
    assert up.link_up and up.xml.count("<link ") == 1


def test_a_defined_domain_is_marked_and_named_as_netmanager_names_its_ports() -> None:
    spec = DomainSpec(
        "lab-web",
        DomainTemplate(
            kernel="/k/vmlinux",
            initrd="/k/initrd",
            cmdline="console=ttyS0 nm.ga=1",
            shares=(Share("/", "hostroot"),),
        ),
        memory_mib=192,
        cpus=2,
    )
    ports = [
        DefinedInterface("02:00:00:00:00:01", "nbaaa", "nvaaa"),
        DefinedInterface("02:00:00:00:00:02", "nbbbb", "nvbbb"),
    ]
    xml = domain_xml(spec, ports, topology="lab", vm="web", domain_type="qemu")
    info = read_domain(xml)
    assert info.name == "lab-web" and info.owner == ("lab", "web") and info.guest_agent
    assert [(i.mac, i.bridge, i.target) for i in info.interfaces] == [
        ("02:00:00:00:00:01", "nbaaa", "nvaaa"),
        ("02:00:00:00:00:02", "nbbbb", "nvbbb"),
    ]
    for needle in ("<kernel>/k/vmlinux</kernel>", '<memory unit="MiB">192</memory>'):
        assert needle in xml
    assert "<vcpu>2</vcpu>" in xml and 'dir="hostroot"' in xml and "<readonly/>" in xml
    with pytest.raises(ValueError, match="libvirt keeps"):
        domain_xml(
            spec,
            [DefinedInterface("02:00:00:00:00:01", "nb", "vnet0")],
            topology="lab",
            vm="web",
            domain_type="qemu",
        )
    with pytest.raises(ValueError, match="attached"):
        domain_xml(DomainSpec("x"), ports, topology="lab", vm="web", domain_type="qemu")
    assert 'topology="lab"' in owner_element("lab", "web")


def test_the_domain_type_is_qemu_where_kvm_cannot_run_a_stock_guest() -> None:
    assert resolve_type(DomainType.AUTO, kvm_usable=False) == "qemu"
    assert resolve_type("auto", kvm_usable=True) == "kvm"
    assert resolve_type(DomainType.QEMU, kvm_usable=True) == "qemu"


def test_the_template_and_spec_survive_json() -> None:
    spec = DomainSpec(
        "d",
        DomainTemplate(
            image="/img.qcow2", shares=(Share("/srv", "s"),), domain_type=DomainType.KVM
        ),
        memory_mib=512,
        macs=("", "02:00:00:00:00:09"),
    )
    assert DomainSpec.from_json(spec.as_json()) == spec
    assert DomainSpec.from_json(DomainSpec("a").as_json()) == DomainSpec("a")


def _vm(macs: tuple[str, ...] = (), n: int = 2, defined: bool = False) -> dom.VmDomain:
    template = DomainTemplate(kernel="/k") if defined else None
    return dom.VmDomain(
        "lab",
        "web",
        DomainSpec("web1", template, macs=macs),
        tuple(
            dom.DomainPort(f"net{i}", i, f"02:00:00:00:00:0{i}", f"nb{i}", f"nv{i}")
            for i in range(n)
        ),
    )


def test_interfaces_match_by_mac_where_given_and_in_order_otherwise() -> None:
    info = read_domain(
        LIVE.replace("<interface type='ethernet'>", "<interface type='ethernet' x='1'>")
    )
    three = _vm(n=3)
    pairs, why = dom.match_interfaces(three, info)
    assert why is None and [i.mac for _, i in pairs] == [i.mac for i in info.interfaces]
    # the second VM interface names the first NIC: the others follow in order
    pairs, why = dom.match_interfaces(_vm(macs=("", "52:54:00:AA:00:01", ""), n=3), info)
    assert why is None
    assert [(p.network, i.mac) for p, i in pairs] == [
        ("net0", "52:54:00:aa:00:02"),
        ("net1", "52:54:00:aa:00:01"),
        ("net2", "52:54:00:aa:00:03"),
    ]
    _, why = dom.match_interfaces(_vm(n=2), info)
    assert why == "domain 'web1' has 3 network interface(s), the VM has 2"
    _, why = dom.match_interfaces(_vm(macs=("02:00:00:00:00:99", "", ""), n=3), info)
    assert why is not None and "no interface with MAC 02:00:00:00:00:99" in why


def test_an_embedded_uri_names_its_root() -> None:
    assert embed_root("qemu:///embed?root=/var/lib/x") == Path("/var/lib/x")
    assert embed_root("qemu:///system") is None and embed_root("qemu:///embed") is None


# ------------------------------------------------------------------ against test:///default


@pytest.fixture
def keeper(tmp_path: Path) -> Iterator[KeeperClient]:
    pytest.importorskip(
        "libvirt", reason="libvirt-python is not installed (scripts/install --libvirt)"
    )
    directory = tmp_path / f"k{uuid.uuid4().hex[:6]}"
    client = ensure_keeper("test:///default", directory)
    pid = running_keeper(directory)
    assert pid is not None
    try:
        yield client
    finally:
        client.quit()
        if running_keeper(directory) is not None:  # pragma: no cover - quit failed
            os.kill(pid, 15)


def test_the_keeper_serves_libvirt_and_outlives_its_clients(
    keeper: KeeperClient, tmp_path: Path
) -> None:
    hello = keeper.hello()
    assert hello["uri"] == "test:///default" and hello["type"] == "TEST"
    assert [d.name for d in keeper.domains()] == ["test"]  # the test driver's own
    assert keeper.domain("no-such-domain") is None
    # a second client (an agent restarted) finds the same connection and its state
    keeper.define(
        domain_xml(
            DomainSpec("kept", DomainTemplate(kernel="/k")),
            [],
            topology="t",
            vm="v",
            domain_type="qemu",
        )
    )
    again = KeeperClient(keeper.directory)
    try:
        found = again.domain("kept")
        assert found is not None and read_domain(found.xml).owner == ("t", "v")
    finally:
        again.close()
    # the keeper of another URI in the same place is refused, not reused
    with pytest.raises(KeeperError, match="serves test:///default"):
        ensure_keeper("qemu:///system", keeper.directory)
    # bad requests get errors, not a crash
    with pytest.raises(KeeperError, match="unknown operation"):
        keeper.request("shutdown_host")
    with pytest.raises(KeeperError, match="bad arguments"):
        keeper.request("get", nom="x")
    with pytest.raises(KeeperError, match=r"Domain not found|no domain"):
        keeper.start("missing")
    assert keeper.hello()["pid"] == hello["pid"]


def test_defined_domains_are_defined_started_and_undefined_only_when_netmanager_s(
    keeper: KeeperClient, tmp_path: Path
) -> None:
    record = dom.Record(tmp_path)
    vm = _vm(n=2, defined=True)
    res = dom.resolve([vm], keeper)
    assert not res.problems
    assert res.taps == {("lab", "web", "net0"): "nv0", ("lab", "web", "net1"): "nv1"}
    assert res.changes == [("define", "domain web1 (VM web)"), ("start", "domain web1 (VM web)")]
    assert dom.join([vm], keeper, record) == (2, {"web1"})
    found = keeper.domain("web1")
    assert found is not None and found.active
    info = read_domain(found.xml)
    assert info.owner == ("lab", "web")
    assert [(i.mac, i.bridge, i.target) for i in info.interfaces] == [
        ("02:00:00:00:00:00", "nb0", "nv0"),
        ("02:00:00:00:00:01", "nb1", "nv1"),
    ]
    assert dom.join([vm], keeper, record) == (0, set())  # again: nothing to do
    assert dom.resolve([vm], keeper).changes == []
    # another VM (or topology) may not take over a domain netmanager defined for this one
    other = dom.VmDomain("lab2", "web", vm.spec, vm.ports)
    problems = dom.resolve([other], keeper).problems
    assert [p.message for p in problems] == [
        "a domain named 'web1' exists and netmanager defined it for VM 'web' of topology 'lab'"
    ]
    with pytest.raises(dom.DomainProblem, match="VM 'web' of topology 'lab2'"):
        dom.join([other], keeper, record)
    # let go: only the domain netmanager defined for that VM is undefined
    assert dom.leave([other], keeper, record) == 0
    assert keeper.domain("web1") is not None
    assert dom.leave([vm], keeper, record) == 1
    assert keeper.domain("web1") is None
    assert dom.leave([vm], keeper, record) == 0  # gone already: passed over


def test_an_attached_domain_must_exist_run_and_have_the_vm_s_interfaces(
    keeper: KeeperClient, tmp_path: Path
) -> None:
    # the test driver's own domain "test": running, one NIC on network "default"
    one = dom.VmDomain("lab", "db", DomainSpec("test"), _vm(n=1).ports)
    res = dom.resolve([one], keeper)
    assert not res.problems
    assert res.taps == {("lab", "db", "net0"): "testnet0"}
    assert res.unplugged == {("lab", "db", "net0")}
    assert res.changes == [("plug", "domain test NIC aa:bb:cc:dd:ee:ff (testnet0) into nb0")]
    missing = dom.VmDomain("lab", "db", DomainSpec("nothere"), _vm(n=1).ports)
    two = dom.VmDomain("lab", "db", DomainSpec("test"), _vm(n=2).ports)
    problems = dom.resolve([missing, two], keeper).problems
    assert [(p.vm, p.message) for p in problems] == [
        ("db", "no domain named 'nothere' on this host"),
        ("db", "domain 'test' has 1 network interface(s), the VM has 2"),
    ]
    keeper.destroy("test")
    try:
        problems = dom.resolve([one], keeper).problems
        assert [p.message for p in problems] == [
            "domain 'test' is shut off: netmanager wires running domains"
        ]
        assert problems[0].hint == "start it first (virsh start test)"
    finally:
        keeper.start("test")
    # the test driver cannot move a NIC (virDomainUpdateDeviceFlags): the record keeps
    # the interface as it was before the move is tried, so a retry or a leave knows it
    record = dom.Record(tmp_path)
    with pytest.raises(KeeperError, match="not supported"):
        dom.join([one], keeper, record)
    assert record.original("test", "aa:bb:cc:dd:ee:ff") is not None
    assert dom.Record(tmp_path).domains() == {"test": ("lab", "db")}


# ------------------------------------------------------------------ cloud-init seeds


def test_a_cloud_init_seed_names_each_nic_by_mac_with_its_address_mtu_and_routes() -> None:
    import json

    from netmanager.hypervisor.cloudinit import SeedNic, seed_files

    nics = [
        SeedNic("02:00:00:00:00:0A", "eth0", "10.0.0.5/24", 1450),
        SeedNic("02:00:00:00:00:0b", "eth1", "10.1.0.5/24", 1500),
    ]
    files = seed_files("lab-db", "db", nics, [("0.0.0.0/0", "10.0.0.1")], forward=True)
    assert sorted(files) == ["meta-data", "network-config", "user-data"]
    network = json.loads(files["network-config"])["network"]
    assert network["version"] == 2
    eth0, eth1 = network["ethernets"]["eth0"], network["ethernets"]["eth1"]
    assert eth0["match"] == {"macaddress": "02:00:00:00:00:0a"} and eth0["set-name"] == "eth0"
    assert (eth0["addresses"], eth0["mtu"], eth0["dhcp4"]) == (["10.0.0.5/24"], 1450, False)
    assert eth0["routes"] == [{"to": "default", "via": "10.0.0.1"}] and "routes" not in eth1
    meta = json.loads(files["meta-data"])
    assert meta["local-hostname"] == "db" and meta["instance-id"].startswith("lab-db-")
    assert files["user-data"].startswith("#cloud-config\n")
    user = json.loads(files["user-data"].split("\n", 1)[1])
    assert user["runcmd"] == [["sysctl", "-w", "net.ipv4.ip_forward=1"]]
    # the same network, the same instance; another network, another (cloud-init applies it)
    assert seed_files("lab-db", "db", nics)["meta-data"] != files["meta-data"]
    assert seed_files("lab-db", "db", nics, [("0.0.0.0/0", "10.0.0.1")], True) == files


def test_the_seed_volume_is_iso9660_labelled_cidata_with_the_files(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from netmanager.hypervisor.cloudinit import SeedNic, seed_files, write_seed

    if shutil.which("genisoimage") is None or shutil.which("isoinfo") is None:
        pytest.skip("genisoimage is not installed (scripts/install --libvirt)")
    files = seed_files("d", "vm", [SeedNic("02:00:00:00:00:01", "eth0", "10.0.0.1/24", 1500)])
    iso = write_seed(files, tmp_path / "seeds" / "d.seed.iso")
    info = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True)
    assert "Volume id: cidata" in info.stdout
    for name, text in files.items():
        got = subprocess.run(
            ["isoinfo", "-i", str(iso), "-R", "-x", f"/{name}"], capture_output=True, text=True
        )
        assert got.stdout == text
    assert sorted(p.name for p in iso.parent.iterdir()) == ["d.seed.iso"]  # nothing left


def test_a_domain_defined_from_an_image_gets_its_seed_as_a_cdrom(
    keeper: KeeperClient, tmp_path: Path
) -> None:
    import shutil

    from netmanager.hypervisor.cloudinit import SeedNic, seed_files

    if shutil.which("genisoimage") is None:
        pytest.skip("genisoimage is not installed (scripts/install --libvirt)")
    nic = SeedNic("02:00:00:00:00:00", "eth0", "10.0.0.1/24", 1500)
    seed = tuple(sorted(seed_files("img1", "web", [nic]).items()))
    vm = dom.VmDomain(
        "lab",
        "web",
        DomainSpec("img1", DomainTemplate(image="/var/lib/images/web.qcow2")),
        (dom.DomainPort("net0", 0, nic.mac, "nb0", "nv0"),),
        seed,
    )
    done, touched = dom.join([vm], keeper, dom.Record(tmp_path), seed_dir=tmp_path / "seeds")
    assert (done, touched) == (2, {"img1"})
    found = keeper.domain("img1")
    assert found is not None
    iso = tmp_path / "seeds" / "img1.seed.iso"
    assert iso.is_file()
    assert f"<source file='{iso}'/>" in found.xml and "device='cdrom'" in found.xml
    assert "<source file='/var/lib/images/web.qcow2'/>" in found.xml
    assert dom.leave([vm], keeper, dom.Record(tmp_path)) == 1
