"""The compile stage: model + mapping -> what each host builds (pure, no root)."""

import dataclasses
import json
from pathlib import Path

import netmanager
from netmanager.compile.configs import compile_infrastructure, compile_topology
from netmanager.compile.hostconfig import HostConfig
from netmanager.inputs.model import Action

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _aef() -> tuple[netmanager.Model, dict[str, HostConfig]]:
    model = netmanager.load(EXAMPLES / "aef-grid/real.xml", EXAMPLES / "aef-grid/virtual.xml")
    return model, compile_topology(model, netmanager.map(model))


def test_each_host_gets_the_networks_of_its_vms() -> None:
    _, configs = _aef()
    networks = {h: sorted(s.network for s in c.segments) for h, c in configs.items()}
    assert networks == {
        "host1": ["backbone", "site1", "site2"],
        "host2": ["site2", "site3"],
        "host3": ["backbone", "site1"],
        "host4": ["backbone", "site3"],
    }
    assert {h: len(c.vms) for h, c in configs.items()} == {
        "host1": 8,
        "host2": 8,
        "host3": 8,
        "host4": 8,
    }


def test_spanning_networks_get_tunnels_with_static_fdb() -> None:
    _, configs = _aef()
    site1 = {
        h: next(s for s in c.segments if s.network == "site1")
        for h, c in configs.items()
        if any(s.network == "site1" for s in c.segments)
    }
    assert set(site1) == {"host1", "host3"}
    on1, on3 = site1["host1"], site1["host3"]
    assert on1.tunnel and on1.tunnel == on3.tunnel and on1.bridge == on3.bridge
    assert on1.remotes == (on3.local,) and on3.remotes == (on1.local,)
    # host3 knows where the two site-1 VMs of host1 live
    macs_on_host1 = {p.mac for p in configs["host1"].ports if p.network == "site1"}
    assert {mac for mac, _ in on3.fdb} == macs_on_host1
    assert on1.mtu == 1450  # VXLAN on a 1500-byte underlay never fragments


def test_backbone_ports_are_shaped_both_ways() -> None:
    _, configs = _aef()
    ports = [p for c in configs.values() for p in c.ports if p.network == "backbone"]
    assert len(ports) == 3
    for port in ports:
        assert port.egress.rate_bps == 1_000_000 and port.ingress.rate_bps == 1_000_000
    site_ports = [p for c in configs.values() for p in c.ports if p.network != "backbone"]
    assert all(not p.shaped for p in site_ports)


def test_isolated_sites_drop_what_leaves_them() -> None:
    _, configs = _aef()
    policy = next(p for p in configs["host3"].policies if p.network == "site1")
    assert policy.rules[0].action is Action.ALLOW and str(policy.rules[0].dst[0]) == "10.1.0.0/24"
    assert policy.rules[-1].action is Action.DENY
    assert len(policy.rules) == 2


def test_names_fit_the_kernel_and_are_stable() -> None:
    _model, first = _aef()
    _, second = _aef()
    assert first == second
    for config in first.values():
        for port in config.ports:
            assert len(port.vif) <= 15 and len(port.ifb) <= 15
        for segment in config.segments:
            assert len(segment.bridge) <= 15 and (
                segment.tunnel is None or len(segment.tunnel) <= 15
            )


def test_host_config_round_trips_through_json() -> None:
    _, configs = _aef()
    for config in configs.values():
        assert HostConfig.from_json(config.as_json()) == config


def test_outbound_network_gets_a_nat_gateway_and_default_routes() -> None:
    model = netmanager.load(EXAMPLES / "virtcloud/real.xml", EXAMPLES / "virtcloud/tenant-a.xml")
    configs = compile_topology(model, netmanager.map(model))
    nats = [n for c in configs.values() for n in c.nats]
    assert len(nats) == 1 and str(nats[0].address) == "10.10.0.254/24"
    vms = [v for c in configs.values() for v in c.vms]
    assert all(
        any(str(r.to) == "0.0.0.0/0" and str(r.via) == "10.10.0.254" for r in v.routes) for v in vms
    )


def test_infrastructure_emulates_the_switch() -> None:
    model, _ = _aef()
    infra = compile_infrastructure(model.real)
    assert infra.host_namespaces == ("nmh-host1", "nmh-host2", "nmh-host3", "nmh-host4")
    assert [ns for ns, _ in infra.switch_namespaces] == ["nms-sw1"]
    assert {link.a_namespace for link in infra.links} == set(infra.host_namespaces)
    assert all(link.b_namespace == "nms-sw1" and link.a_ifname == "eth0" for link in infra.links)


def test_guest_hosts_size_their_token_buckets_for_late_wakeups() -> None:
    """A QEMU guest's CPU is emulated: its qdiscs wake up late, and a 4 ms bucket let a
    10 Mbit/s TBF pass 2.5 % under its rate there; its host configuration says so, it
    travels with the configuration, and render sizes the buckets from it."""
    from netmanager.compile.desired import render_host
    from netmanager.kernel.objects import Qdisc, Tbf
    from netmanager.kernel.shaping import DEFAULT_WAKEUP_US, EMULATED_CPU_WAKEUP_US

    example = EXAMPLES / "two-hosts-guests"
    model = netmanager.load(example / "real.xml", example / "virtual.xml")
    guests = compile_topology(model, netmanager.map(model))
    _, emulated = _aef()
    assert {c.emulated_cpu for c in guests.values()} == {True}
    assert {c.emulated_cpu for c in emulated.values()} == {False}

    def bursts(config: HostConfig) -> set[int]:
        return {
            o.params.burst_bytes
            for o in render_host(config)
            if isinstance(o, Qdisc) and isinstance(o.params, Tbf)
        }

    # 10 Mbit/s: 20 ms of tokens in a guest, 4 ms (HZ=250) elsewhere
    assert bursts(guests["host1"]) == {10_000_000 // 8 * EMULATED_CPU_WAKEUP_US // 1_000_000}
    assert bursts(guests["host1"]) == {25_000}
    plain = dataclasses.replace(guests["host1"], emulated_cpu=False)
    assert bursts(plain) == {10_000_000 // 8 * DEFAULT_WAKEUP_US // 1_000_000} == {5_000}
    again = HostConfig.from_json(json.loads(json.dumps(guests["host1"].as_json())))
    assert again == guests["host1"]
    older = {k: v for k, v in guests["host1"].as_json().items() if k != "emulated_cpu"}
    assert HostConfig.from_json(older).emulated_cpu is False  # a document written before


def test_a_libvirt_host_s_vms_are_domains_and_its_root_namespace_links_have_ipv6_off(
    tmp_path: Path,
) -> None:
    """A VM on a libvirt host compiles to its domain (attached: no template; the MACs
    virtual.xml gives, for matching), its port renders as the domain's tap (adopted, no
    VM namespace); where the host's dom0 is its root namespace (a real host), every link
    netmanager creates or adopts there has IPv6 off, link by link."""
    from netmanager.compile.desired import render_host
    from netmanager.kernel.objects import Link, LinkKind, Namespace

    example = EXAMPLES / "two-hosts"
    real = (
        (example / "real.xml")
        .read_text()
        .replace(
            'name="host1" site="lab" hypervisor="netns"',
            'name="host1" site="lab" hypervisor="qemu+ssh://hv1/system"',
        )
    )
    real = real.replace(
        '<interface name="eth0" address="192.0.2.11/24" speed="1Gbit"/>',
        '<interface name="eth0" address="192.0.2.11/24" speed="1Gbit"/>\n'
        '    <agent address="192.0.2.11" port="16161"/>',
        1,
    )
    virtual = (
        (example / "virtual.xml")
        .read_text()
        .replace('<vm name="vm1" host="host1">', '<vm name="vm1" host="host1" domain="vm1-dom">')
    )
    tmp = tmp_path
    tmp.joinpath("real.xml").write_text(real)
    tmp.joinpath("virtual.xml").write_text(virtual)
    tmp.joinpath("snmp.toml").write_bytes((example / "snmp.toml").read_bytes())
    model = netmanager.load(tmp / "real.xml", tmp / "virtual.xml")
    configs = compile_topology(model, netmanager.map(model))
    host1, host2 = configs["host1"], configs["host2"]
    (vm1,) = host1.vms
    assert vm1.domain is not None and vm1.domain.name == "vm1-dom" and not vm1.domain.defined
    assert host1.dom0 == "" and host1.domain_vms == {"vm1"} and host2.domain_vms == set()
    objects = render_host(host1)
    (port,) = host1.ports
    tap = next(o for o in objects if isinstance(o, Link) and o.ifname == port.vif)
    assert tap.kind is LinkKind.TAP and tap.master == port.bridge
    assert not any(isinstance(o, Namespace) for o in objects)
    links = [o for o in objects if isinstance(o, Link)]
    assert links and all(link.ipv6 is False for link in links)
    assert all(o.ipv6 is None for o in render_host(host2) if isinstance(o, Link))
    assert HostConfig.from_json(json.loads(json.dumps(host1.as_json()))) == host1
