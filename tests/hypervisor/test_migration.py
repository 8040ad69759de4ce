"""Live migration of libvirt domains, the orchestration: the target's domain XML, the flags
and typed parameters, the call and where a failed one leaves the domain — against a fake
connection (libvirt's test driver has no migration call), and the keeper's operation over
its socket against ``test:///default`` (which refuses it: the error says the domain is
still on the source).  The real call runs in tests/hypervisor/test_libvirt_migration.py."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from netmanager.hypervisor import migration as mig
from netmanager.hypervisor.domxml import read_domain
from netmanager.hypervisor.keeper import KeeperClient, ensure_keeper, running_keeper
from netmanager.hypervisor.migration import (
    MigrationError,
    MigrationRequest,
    TargetNic,
    Where,
)

MIGRATABLE = """<domain type='qemu'>
  <name>web1</name>
  <uuid>0b8c2a4e-8f5a-4bb3-9a0e-1f3d3c1a2b3c</uuid>
  <metadata>
    <nm:owner xmlns:nm="urn:netmanager:libvirt:1" topology="lab" vm="web"/>
  </metadata>
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:AA:00:01'/>
      <source bridge='nb-lab-a'/>
      <target dev='nv-lab-web-a'/>
      <model type='virtio'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <interface type='ethernet'>
      <mac address='52:54:00:aa:00:02'/>
      <target dev='tap7'/>
      <model type='virtio'/>
      <link state='down'/>
      <bandwidth><inbound average='1000'/></bandwidth>
    </interface>
    <serial type='file'>
      <source path='/run/netmanager/a/libvirt/web1.console'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='/run/netmanager/a/libvirt/web1.console'/>
      <target type='serial' port='0'/>
    </console>
  </devices>
</domain>"""

NICS = (
    TargetNic("52:54:00:aa:00:01", "nv-lab-web-a"),
    TargetNic("52:54:00:AA:00:02", "nv-lab-web-b", bridge="nb-lab-b"),
)


def _request(**kw: Any) -> MigrationRequest:
    base: dict[str, Any] = {"domain": "web1", "dest_uri": "qemu:///system", "nics": NICS}
    return MigrationRequest(**{**base, **kw})


def _interfaces(xml: str) -> list[etree._Element]:
    return list(etree.fromstring(xml.encode()).iterfind("devices/interface"))


def test_the_target_xml_gives_each_nic_its_tap_and_its_kind() -> None:
    xml = mig.destination_xml(MIGRATABLE, _request(console_log="/var/log/nm/web1.console"))
    first, second = _interfaces(xml)
    # an ethernet NIC: a tap of that name that the caller wires
    assert first.get("type") == "ethernet" and first.find("source") is None
    assert first.find("target").get("dev") == "nv-lab-web-a"  # type: ignore[union-attr]
    # what identifies the device to the guest stays: MAC, model, alias, PCI address
    assert first.find("mac").get("address") == "52:54:00:AA:00:01"  # type: ignore[union-attr]
    assert first.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert first.find("alias").get("name") == "net0"  # type: ignore[union-attr]
    assert first.find("address").get("slot") == "0x03"  # type: ignore[union-attr]
    # a bridge NIC: onto the target's bridge; its <link state> gone, its bandwidth kept
    assert second.get("type") == "bridge"
    assert second.find("source").get("bridge") == "nb-lab-b"  # type: ignore[union-attr]
    assert second.find("target").get("dev") == "nv-lab-web-b"  # type: ignore[union-attr]
    assert second.find("link") is None and second.find("bandwidth") is not None
    info = read_domain(xml)
    assert info.owner == ("lab", "web")  # the marker travels with the domain
    assert [(i.mac, i.type, i.source, i.target) for i in info.interfaces] == [
        ("52:54:00:aa:00:01", "ethernet", None, "nv-lab-web-a"),
        ("52:54:00:aa:00:02", "bridge", "nb-lab-b", "nv-lab-web-b"),
    ]
    root = etree.fromstring(xml.encode())
    assert {s.get("path") for s in root.iterfind("devices/*/source[@path]")} == {
        "/var/log/nm/web1.console"
    }
    # no console_log: the console's path as it was
    assert "/run/netmanager/a/libvirt/web1.console" in mig.destination_xml(MIGRATABLE, _request())


@pytest.mark.parametrize(
    ("nics", "message"),
    [
        (NICS[:1], "NIC 52:54:00:aa:00:02 has no place on the target"),
        ((*NICS, TargetNic("52:54:00:aa:00:09", "x")), "no NIC with MAC 52:54:00:aa:00:09"),
        ((NICS[0], NICS[0], NICS[1]), "a MAC is given twice"),
    ],
)
def test_nics_that_do_not_match_one_to_one_are_refused(
    nics: tuple[TargetNic, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        mig.destination_xml(MIGRATABLE, _request(nics=nics))


def test_flags_and_parameters() -> None:
    flags, params = mig.call_arguments(_request(), "<d/>", "<p/>")
    assert flags == (
        mig.VIR_MIGRATE_LIVE
        | mig.VIR_MIGRATE_ABORT_ON_ERROR
        | mig.VIR_MIGRATE_PERSIST_DEST
        | mig.VIR_MIGRATE_UNDEFINE_SOURCE
    )
    assert params == {"destination_xml": "<d/>", "persistent_xml": "<p/>"}
    flags, params = mig.call_arguments(
        _request(
            peer2peer=True,
            persist=False,
            data_uri="unix:///run/nm/mig.sock",
            bandwidth_mibps=64,
        ),
        "<d/>",
        "<p/>",
    )
    assert (
        flags == mig.VIR_MIGRATE_LIVE | mig.VIR_MIGRATE_ABORT_ON_ERROR | mig.VIR_MIGRATE_PEER2PEER
    )
    assert params == {
        "destination_xml": "<d/>",
        "migrate_uri": "unix:///run/nm/mig.sock",
        "bandwidth": 64,
    }


def test_the_constants_are_libvirt_s() -> None:
    libvirt = pytest.importorskip("libvirt")
    for name in (
        "VIR_MIGRATE_LIVE",
        "VIR_MIGRATE_PEER2PEER",
        "VIR_MIGRATE_PERSIST_DEST",
        "VIR_MIGRATE_UNDEFINE_SOURCE",
        "VIR_MIGRATE_ABORT_ON_ERROR",
        "VIR_DOMAIN_XML_INACTIVE",
        "VIR_DOMAIN_XML_MIGRATABLE",
    ):
        assert getattr(mig, name) == getattr(libvirt, name), name
    assert mig.PARAM_URI == libvirt.VIR_MIGRATE_PARAM_URI
    assert mig.PARAM_DEST_XML == libvirt.VIR_MIGRATE_PARAM_DEST_XML
    assert mig.PARAM_PERSIST_XML == libvirt.VIR_MIGRATE_PARAM_PERSIST_XML
    assert mig.PARAM_BANDWIDTH == libvirt.VIR_MIGRATE_PARAM_BANDWIDTH


# ------------------------------------------------------------------------ the fake


class FakeLibvirtError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code

    def get_error_code(self) -> int:
        return self.code


class FakeDomain:
    """A source domain: records the calls; ``fail`` makes the migration raise, after
    which it runs where ``after`` says."""

    def __init__(
        self, *, active: bool = True, fail: str = "", after: str = "source", dest: Any = None
    ) -> None:
        self.active = active
        self.fail = fail
        self.after = after
        self.dest = dest
        self.calls: list[tuple[Any, ...]] = []

    def name(self) -> str:
        return "web1"

    def isActive(self) -> int:
        return int(self.active)

    def isPersistent(self) -> int:
        return 1

    def state(self) -> list[int]:
        return [1 if self.active else 5, 0]

    def XMLDesc(self, flags: int = 0) -> str:
        self.calls.append(("XMLDesc", flags))
        return MIGRATABLE

    def migrateSetMaxDowntime(self, downtime: int, flags: int = 0) -> int:
        self.calls.append(("downtime", downtime))
        return 0

    def _moved(self) -> None:
        if self.fail:
            self.active = self.after == "source"
            if self.dest is not None:
                self.dest.active = self.after == "target"
            raise FakeLibvirtError(self.fail, 9)
        self.active = False
        if self.dest is not None:
            self.dest.active = True

    def migrate3(self, dconn: Any, params: dict[str, Any], flags: int = 0) -> Any:
        self.calls.append(("migrate3", dconn, params, flags))
        self._moved()
        return FakeTargetDomain(params["destination_xml"])

    def migrateToURI3(self, dconnuri: str, params: dict[str, Any], flags: int = 0) -> int:
        self.calls.append(("migrateToURI3", dconnuri, params, flags))
        self._moved()
        return 0


class FakeTargetDomain:
    def __init__(self, xml: str) -> None:
        self.xml = xml
        self.active = False

    def isActive(self) -> int:
        return int(self.active)

    def XMLDesc(self, flags: int = 0) -> str:
        return self.xml


class FakeConnection:
    def __init__(self, domain: FakeTargetDomain | None = None) -> None:
        self.domain = domain

    def lookupByName(self, name: str) -> Any:
        if self.domain is None:
            raise FakeLibvirtError(f"Domain not found: no domain with matching name '{name}'", 42)
        return self.domain


def _clock(*times: float) -> Any:
    it = iter(times)
    return lambda: next(it)


def test_a_migration_through_a_connection_to_the_target() -> None:
    dest = FakeConnection()
    dom = FakeDomain()
    result = mig.migrate(
        dom,
        _request(data_uri="unix:///run/nm/m/mig.sock", max_downtime_ms=100, bandwidth_mibps=32),
        dest=dest,
        error=FakeLibvirtError,
        clock=_clock(10.0, 12.5),
    )
    assert result.duration_s == 2.5 and result.dest_uri == "qemu:///system"
    assert [c[0] for c in dom.calls] == ["XMLDesc", "XMLDesc", "downtime", "migrate3"]
    assert dom.calls[0][1] == mig.VIR_DOMAIN_XML_MIGRATABLE
    assert dom.calls[1][1] == mig.VIR_DOMAIN_XML_MIGRATABLE | mig.VIR_DOMAIN_XML_INACTIVE
    assert dom.calls[2] == ("downtime", 100)
    _, dconn, params, flags = dom.calls[3]
    assert dconn is dest
    assert flags & mig.VIR_MIGRATE_LIVE and not flags & mig.VIR_MIGRATE_PEER2PEER
    assert flags & mig.VIR_MIGRATE_PERSIST_DEST and flags & mig.VIR_MIGRATE_UNDEFINE_SOURCE
    assert params["migrate_uri"] == "unix:///run/nm/m/mig.sock" and params["bandwidth"] == 32
    assert params["destination_xml"] == mig.destination_xml(MIGRATABLE, _request())
    assert 'state="down"' not in params["persistent_xml"]
    # the target's live XML comes back: the taps libvirt made there
    assert mig.taps(result.xml) == [
        ("52:54:00:aa:00:01", "nv-lab-web-a"),
        ("52:54:00:aa:00:02", "nv-lab-web-b"),
    ]


def test_a_peer_to_peer_migration_needs_no_connection_to_the_target() -> None:
    dom = FakeDomain()
    result = mig.migrate(
        dom,
        _request(peer2peer=True, dest_uri="qemu+ssh://hv2/system"),
        dest=None,
        error=FakeLibvirtError,
        clock=_clock(1.0, 3.0),
    )
    assert result.duration_s == 2.0 and result.xml == ""
    (_, uri, _params, flags) = dom.calls[-1]
    assert uri == "qemu+ssh://hv2/system" and flags & mig.VIR_MIGRATE_PEER2PEER
    assert "downtime" not in [c[0] for c in dom.calls]  # none asked: QEMU's own


@pytest.mark.parametrize(
    ("after", "peer2peer", "where"),
    [
        ("source", False, Where.SOURCE),
        ("target", False, Where.TARGET),
        ("neither", False, Where.NEITHER),
        ("source", True, Where.SOURCE),
        ("target", True, Where.UNKNOWN),
    ],
)
def test_a_failed_migration_says_where_the_domain_is(
    after: str, peer2peer: bool, where: Where
) -> None:
    target = FakeTargetDomain("<domain/>")
    dest = FakeConnection(target)
    dom = FakeDomain(fail="operation failed: migration out job: unexpectedly failed", after=after)
    dom.dest = target
    with pytest.raises(MigrationError) as err:
        mig.migrate(
            dom,
            _request(peer2peer=peer2peer),
            dest=None if peer2peer else dest,
            error=FakeLibvirtError,
            clock=_clock(0.0, 1.25),
        )
    assert err.value.where is where and err.value.code == 9
    assert "failed after 1.25 s: operation failed: migration out job" in str(err.value)


def test_a_target_that_does_not_know_the_domain_after_a_failure_means_neither() -> None:
    dom = FakeDomain(fail="boom", after="neither")
    with pytest.raises(MigrationError) as err:
        mig.migrate(
            dom, _request(), dest=FakeConnection(None), error=FakeLibvirtError, clock=_clock(0, 1)
        )
    assert err.value.where is Where.NEITHER and "running on neither host" in str(err.value)


def test_nothing_is_called_for_a_domain_that_cannot_go() -> None:
    # not running
    dom = FakeDomain(active=False)
    with pytest.raises(MigrationError, match="does not run") as err:
        mig.migrate(dom, _request(), dest=FakeConnection(), error=FakeLibvirtError)
    assert err.value.where is Where.SOURCE and dom.calls == []
    # NICs that do not match
    dom = FakeDomain()
    with pytest.raises(MigrationError, match="has no place on the target") as err:
        mig.migrate(dom, _request(nics=NICS[:1]), dest=FakeConnection(), error=FakeLibvirtError)
    assert err.value.where is Where.SOURCE
    assert "migrate3" not in [c[0] for c in dom.calls]
    # no connection to the target and not peer-to-peer
    with pytest.raises(MigrationError, match="no connection to qemu:///system"):
        mig.migrate(FakeDomain(), _request(), dest=None, error=FakeLibvirtError)


def test_requests_and_results_travel_as_json() -> None:
    request = _request(data_uri="unix:///x", bandwidth_mibps=8, max_downtime_ms=50)
    assert MigrationRequest.from_json(request.as_json()) == request
    result = mig.MigrationResult("web1", "qemu:///system", 2.4, "<domain/>")
    assert mig.MigrationResult.from_json(result.as_json()) == result


def test_a_domain_sharing_a_host_directory_over_9p_cannot_migrate() -> None:
    xml = MIGRATABLE.replace(
        "<devices>",
        "<devices><filesystem type='mount' accessmode='passthrough'>"
        "<source dir='/'/><target dir='hostroot'/><readonly/></filesystem>",
    )
    (why,) = mig.unmigratable(xml)
    assert "virtio-9p (mount tag 'hostroot')" in why
    assert mig.unmigratable(MIGRATABLE) == []


# ------------------------------------------------------------------------ the keeper


@pytest.fixture
def keeper(tmp_path: Path) -> Iterator[KeeperClient]:
    pytest.importorskip(
        "libvirt", reason="libvirt-python is not installed (scripts/install --libvirt)"
    )
    directory = tmp_path / f"k{uuid.uuid4().hex[:6]}"
    client = ensure_keeper("test:///default", directory, peers=["test:///default"])
    pid = running_keeper(directory)
    assert pid is not None
    try:
        yield client
    finally:
        client.quit()
        if running_keeper(directory) is not None:  # pragma: no cover - quit failed
            os.kill(pid, 15)


def test_the_keeper_migrates_through_the_peer_it_opened_first_and_says_where_on_failure(
    keeper: KeeperClient,
) -> None:
    """The test driver's ``test`` domain runs and has one NIC; the test driver has no
    migration, so the keeper's answer is a MigrationError: still on the source."""
    assert keeper.hello()["peers"] == ["test:///default"]
    domain = keeper.domain("test")
    assert domain is not None and domain.active
    nics = tuple(
        TargetNic(i.mac, f"nmt{n}") for n, i in enumerate(read_domain(domain.xml).interfaces)
    )
    request = MigrationRequest("test", "test:///default", nics)
    with pytest.raises(MigrationError) as err:
        keeper.migrate(request)
    assert err.value.where is Where.SOURCE
    assert "not supported" in err.value.reason, err.value.reason
    # peer-to-peer: the source's libvirt would open the target itself
    with pytest.raises(MigrationError) as err:
        keeper.migrate(MigrationRequest("test", "test:///default", nics, peer2peer=True))
    assert err.value.where is Where.SOURCE
    # a domain with other NICs than asked: refused before any call
    with pytest.raises(MigrationError, match="has no place on the target"):
        keeper.migrate(MigrationRequest("test", "test:///default", ()))
    assert keeper.domain("test").active  # type: ignore[union-attr]


# ------------------------------------------------------------------------ which pairs


def _host(name: str, uri: str | None, migration_uri: str | None = None) -> Any:
    from netmanager.inputs.model import Host, HypervisorKind

    kind = HypervisorKind.NETNS if uri is None else HypervisorKind.LIBVIRT
    return Host(name, "lab", kind, uri, migration_uri=migration_uri)


def _spec(*, shares: bool = False, defined: bool = True) -> Any:
    from netmanager.hypervisor.spec import DomainSpec, DomainTemplate, Share

    template = DomainTemplate(kernel="/k", shares=(Share("/", "hostroot"),) if shares else ())
    return DomainSpec("web1", template if defined else None)


@pytest.mark.parametrize(
    ("source", "target", "spec", "says"),
    [
        ("embed", "system", {}, None),
        ("embed", "embed", {}, "libvirt 9.0 cannot migrate into an embedded driver"),
        ("system", "embed", {}, "libvirt 9.0 cannot migrate into an embedded driver"),
        # real hosts: the target's migration-uri is how the source's libvirt reaches it
        ("system", "system", {}, "host 'b' has no migration-uri in real.xml"),
        ("system", "system+uri", {}, None),
        ("system", "ssh", {}, None),  # its own URI names the host: reached so
        ("system", "ssh+uri", {"defined": False}, "is the user's (attached)"),
        ("embed", "ssh", {}, "migrates to qemu:///system only (this machine's daemon), not"),
        ("embed", "ssh+uri", {}, "migrates to qemu:///system only"),
        ("embed", None, {}, "a libvirt host and host 'b' a netns host"),
        (None, "system", {}, "host 'a' is a netns host"),
        ("embed", "system", {"defined": False}, "is the user's (attached)"),
        ("embed", "system", {"shares": True}, "virtio-9p (mount tag 'hostroot'"),
    ],
)
def test_which_libvirt_pairs_migrate_here(
    source: str | None, target: str | None, spec: dict[str, bool], says: str | None
) -> None:
    from netmanager.apply.migrate import libvirt_pair

    uris = {
        "embed": "qemu:///embed",
        "system": "qemu:///system",
        "ssh": "qemu+ssh://hv2/system",
        None: None,
    }

    def host(name: str, kind: str | None) -> Any:
        uri, _, reached = (kind or "").partition("+")
        return _host(name, uris[uri or None], "qemu+tls://b.lab/system" if reached else None)

    why = libvirt_pair(host("a", source), host("b", target), _spec(**spec))
    if says is None:
        assert why is None
    else:
        assert why is not None and says in why[0], why


# ------------------------------------------------------------------------ the agent's


def test_the_agent_checks_a_migration_request_and_follows_the_migration() -> None:
    """nmTxnMigrate (snmp_agents.migration): a request that does not parse, a second one
    while one runs, one during a commit: refused, nothing started; one accepted answers at
    once, nmTxnMigrateState says running (a GET of it waits for the end), then migrated
    with its duration, or failed with where the domain is."""
    import asyncio
    import threading

    from pysnmp.proto import rfc1902

    from netmanager.host.protocol import BackendError
    from netmanager.hypervisor.migration import MigrationError, MigrationResult, Where
    from netmanager.snmp.tables import SetError
    from snmp_agents.migration import Migrations

    release = threading.Event()
    asked: list[MigrationRequest] = []
    outcome: list[object] = []

    def migrate(request: MigrationRequest) -> MigrationResult:
        asked.append(request)
        release.wait(5)
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return MigrationResult(request.domain, request.dest_uri, 2.5)

    committing = [False]
    changed: list[str] = []
    sent = threading.Event()  # the job has processed memory

    def job(domain: str) -> dict[str, int]:
        return {"type": 2, "memory_processed": 4096 if sent.is_set() else 0}

    async def scenario() -> None:
        m = Migrations(migrate, lambda: committing[0], lambda: changed.append("changed"), job)
        request = _request(domain="web1", dest_uri="qemu+tls://hv2/system")
        raw = json.dumps(request.as_json()).encode()

        def refused(value: object, *more: object) -> tuple[str, int]:
            binds = [(0, m.oid, value), *((i + 1, m.oid, v) for i, v in enumerate(more))]
            with pytest.raises(SetError) as caught:
                m.handle_set(binds)
            return caught.value.status, caught.value.position

        assert refused(rfc1902.Integer32(1)) == ("wrongType", 0)
        assert refused(rfc1902.OctetString(b"{not json")) == ("wrongValue", 0)
        assert refused(rfc1902.OctetString(b'{"domain": "web1"}')) == ("wrongValue", 0)
        assert refused(rfc1902.OctetString(b'{"domain": "", "dest_uri": "x"}')) == (
            "wrongValue",
            0,
        )
        assert refused(rfc1902.OctetString(b"x" * 3000)) == ("wrongLength", 0)
        assert refused(rfc1902.OctetString(raw), rfc1902.OctetString(raw)) == (
            "inconsistentValue",
            0,
        )
        committing[0] = True
        assert refused(rfc1902.OctetString(raw)) == ("resourceUnavailable", 0)
        committing[0] = False
        assert asked == [] and json.loads(m.state_text()) == {"state": "idle"}

        for result, state in (
            (None, {"state": "migrated", "duration_s": 2.5}),
            (
                MigrationError("the target refused it", Where.SOURCE),
                {"state": "failed", "where": "source", "error": "the target refused it"},
            ),
            (
                BackendError("this host runs no VM that is domain 'web1'"),
                {"state": "failed", "where": "source"},
            ),
            (
                MigrationError("the stream broke", Where.NEITHER),
                {"state": "failed", "where": "neither"},
            ),
        ):
            outcome[:] = [result]
            release.clear()
            sent.clear()
            m.handle_set([(0, m.oid, rfc1902.OctetString(raw))])
            assert json.loads(m.state_text())["state"] == "running"
            assert m.written == raw
            # one at a time
            assert refused(rfc1902.OctetString(raw)) == ("resourceUnavailable", 0)
            # a GET waits for the next change: the job sends (the target has the domain)
            waiting = m.waiting()
            assert waiting is not None and not waiting.done()
            await asyncio.sleep(0.1)
            assert not waiting.done() and "transferring" not in json.loads(m.state_text())
            sent.set()
            await asyncio.wait_for(asyncio.shield(waiting), 5)
            got = json.loads(m.state_text())
            assert (got["state"], got["transferring"]) == ("running", True)
            waiting = m.waiting()
            assert waiting is not None and not waiting.done()
            release.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(waiting), 5)
            await asyncio.sleep(0)  # the done callback
            got = json.loads(m.state_text())
            assert {k: got[k] for k in state} == state, got
            assert got["domain"] == "web1" and m.waiting() is None
        assert [a.dest_uri for a in asked] == ["qemu+tls://hv2/system"] * 4
        m.close()

        # a job that cannot be asked (a keeper of an older netmanager): the target is
        # told at once, and waits for the taps itself
        def no_job(domain: str) -> dict[str, int]:
            raise RuntimeError("unknown operation 'job'")

        m = Migrations(migrate, job=no_job)
        outcome[:] = [None]
        release.clear()
        m.handle_set([(0, m.oid, rfc1902.OctetString(raw))])
        waiting = m.waiting()
        assert waiting is not None
        await asyncio.wait_for(asyncio.shield(waiting), 5)
        assert json.loads(m.state_text())["transferring"] is True
        release.set()
        await asyncio.wait_for(asyncio.shield(m._task), 5)  # type: ignore[arg-type]
        m.close()

    asyncio.run(scenario())
    assert changed  # the section is published again as the state changes


REAL_HOSTS = """<?xml version="1.0" encoding="UTF-8"?>
<real xmlns="urn:netmanager:real:1" version="1.0">
  <site name="lab"><vni-range first="6400" last="6499"/></site>
  <switch name="sw1" site="lab"/>
  <host name="hv1" site="lab" hypervisor="qemu+ssh://hv1.lab/system" cpus="8" memory="8GB"
        capabilities="vxlan">
    <interface name="eno1" address="192.0.2.61/24"/>
    <agent address="192.0.2.61" port="161"/>
  </host>
  <host name="hv2" site="lab" hypervisor="qemu+ssh://hv2.lab/system" cpus="8" memory="8GB"
        capabilities="vxlan" migration-uri="qemu+tls://hv2.mig.lab/system"
        migration-p2p="true">
    <interface name="eno1" address="192.0.2.62/24"/>
    <agent address="192.0.2.62" port="161"/>
  </host>
  <link a="hv1:eno1" b="sw1" capacity="10Gbit"/>
  <link a="hv2:eno1" b="sw1" capacity="10Gbit"/>
</real>
"""
VIRTUAL_HOSTS = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="realmig">
  <network name="a" cidr="10.61.0.0/24"/>
  <network name="b" cidr="10.62.0.0/24"/>
  <vm name="web" host="hv1" memory="512MB" domain="web-dom">
    <template image="/var/lib/libvirt/images/web.qcow2"/>
    <interface network="a" ip="10.61.0.5" mac="52:54:00:61:00:05"/>
    <interface network="b" ip="10.62.0.5" mac="52:54:00:62:00:05"/>
  </vm>
  <vm name="db" host="hv2" memory="512MB" domain="db-dom">
    <template image="/var/lib/libvirt/images/db.qcow2"/>
    <interface network="b" ip="10.62.0.6"/>
  </vm>
</virtual>
"""


@pytest.mark.parametrize("way", ["there", "back"])
def test_what_a_real_host_s_agent_is_asked_to_migrate(
    way: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between real libvirt hosts (no kernel, no libvirt: what the manager sends): to
    hv2, its migration-uri, peer-to-peer as real.xml says; back to hv1, its own
    hypervisor URI (it names the host) and not peer-to-peer; each NIC by its MAC with the
    tap the target's configuration names; no stream socket (libvirt's own address)."""
    from types import SimpleNamespace

    from netmanager.apply.migrate import _domain_request, libvirt_pair
    from netmanager.apply.prepare import prepare
    from netmanager.mapping.moves import Move

    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))
    real, virtual = tmp_path / "real.xml", tmp_path / "virtual.xml"
    real.write_text(REAL_HOSTS)
    virtual.write_text(VIRTUAL_HOSTS)
    source, to = ("hv1", "hv2") if way == "there" else ("hv2", "hv1")
    before = prepare(real, virtual, moves={"web": Move(source, "hv1")})
    after = prepare(real, virtual, moves={"web": Move(to, "hv1")})
    hosts = before.model.real.host_by_name
    spec = next(v.domain for v in before.configs[source].vms if v.vm == "web")
    assert libvirt_pair(hosts[source], hosts[to], spec) is None
    record = SimpleNamespace(hosts=before.configs)
    request = _domain_request(record, after, "web", source, to, None, None)  # type: ignore[arg-type]
    taps = {p.mac: p.vif for p in after.configs[to].ports if p.vm == "web"}
    assert request.domain == "web-dom"
    assert {n.mac: n.tap for n in request.nics} == taps
    assert sorted(taps) == ["52:54:00:61:00:05", "52:54:00:62:00:05"]
    assert all(not n.bridge for n in request.nics)  # ethernet NICs: the target wires them
    assert request.data_uri == ""
    if way == "there":
        assert (request.dest_uri, request.peer2peer) == ("qemu+tls://hv2.mig.lab/system", True)
    else:
        assert (request.dest_uri, request.peer2peer) == ("qemu+ssh://hv1.lab/system", False)


# ------------------------------------------------------------------------ the manager's


class _Source:
    """The source host's transport: its agent's migration ends as told."""

    def __init__(self, outcome: BaseException | None, started: bool = True) -> None:
        import threading

        self.outcome = outcome
        self.started = started
        self.asked: list[MigrationRequest] = []
        #: the target began to adopt (the migration ends only after: as libvirt's does)
        self.adopting = threading.Event()

    async def migrate_domain(self, request: MigrationRequest, started: Any) -> Any:
        import asyncio

        from netmanager.hypervisor.migration import MigrationResult

        self.asked.append(request)
        if self.started:
            started()
            await asyncio.get_running_loop().run_in_executor(None, self.adopting.wait, 5)
        if self.outcome is not None:
            raise self.outcome
        return MigrationResult(request.domain, request.dest_uri, 1.5)


@pytest.mark.parametrize(
    ("outcome", "adopted", "code", "steps", "says"),
    [
        (None, True, None, ["prepare", "adopt", "follow"], ""),
        (
            ("the target refused it", "source", False),
            False,
            "E785",
            ["prepare", "restore"],
            "runs on 'hv1' with its network as before",
        ),
        (
            ("the target refused it", "source", True),
            False,
            "E785",
            ["prepare", "adopt", "restore"],
            "runs on 'hv1' with its network as before",
        ),
        (
            ("the stream broke", "neither", True),
            False,
            "E787",
            ["prepare", "adopt"],
            "running on neither host",
        ),
        (None, False, "E787", ["prepare", "adopt", "save"], "could not take its taps in"),
        # libvirt failed after its switch-over, the target wired the domain: it stands
        (("undefine failed", "target", True), True, None, ["prepare", "adopt", "follow"], ""),
    ],
)
def test_how_the_manager_follows_a_libvirt_migration(
    outcome: tuple[str, str, bool] | None,
    adopted: bool,
    code: str | None,
    steps: list[str],
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """apply/migrate._run_libvirt without hosts: the source's agent migrates, the target
    adopts the taps once the migration runs; a failure where the domain stays on the
    source returns every host to what it was (E785); one that leaves it elsewhere, or a
    target that cannot take the taps in, is E787 (the machine is not as it was)."""
    from types import SimpleNamespace

    from netmanager.apply import migrate as m
    from netmanager.apply.prepare import prepare
    from netmanager.errors import ApplyFailed, NetmanagerError, single
    from netmanager.hypervisor.migration import MigrationError, Where
    from netmanager.mapping.moves import Move

    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))
    real, virtual = tmp_path / "real.xml", tmp_path / "virtual.xml"
    real.write_text(REAL_HOSTS)
    virtual.write_text(VIRTUAL_HOSTS)
    before = prepare(real, virtual, moves={"web": Move("hv1", "hv1")})
    after = prepare(real, virtual, moves={"web": Move("hv2", "hv1")})
    record = SimpleNamespace(
        topology="realmig", hosts=before.configs, transport="agents", runtime={}
    )
    done: list[str] = []
    monkeypatch.setattr(
        m, "_prepare", lambda *a: done.append("prepare") or m._Prepared(before.configs, 4)
    )
    monkeypatch.setattr(m, "_restore", lambda *a: done.append("restore"))
    monkeypatch.setattr(m, "_save", lambda *a: done.append("save"))
    monkeypatch.setattr(m, "_follow", lambda *a: done.append("follow"))
    monkeypatch.setattr(m, "records", dict)
    monkeypatch.setattr(m, "host_candidates", lambda *a: {})
    monkeypatch.setattr("netmanager.apply.runtime.vm_changes", lambda *a: [])
    adopting: list[object] = []

    async def transaction(topology: str, transports: Any, candidates: Any, **kw: Any) -> Any:
        adopting.append(kw["adopt"]["hv2"])
        done.append("adopt")
        source.adopting.set()
        if not adopted:
            raise single("E710", m.Loc("hv2"), "no link nv-x", "", "apply", ApplyFailed)
        return SimpleNamespace(changes={"hv2": 3})

    monkeypatch.setattr(m, "transaction", transaction)
    started = outcome is None or outcome[2]
    failure = None if outcome is None else MigrationError(outcome[0], Where(outcome[1]))
    source = _Source(failure, started)
    transports: dict[str, Any] = {"hv1": source, "hv2": object()}
    run = lambda: m._run_libvirt(  # noqa: E731
        record,  # type: ignore[arg-type]
        after,
        transports,
        "web",
        "hv1",
        "hv2",
        0.0,
        lambda *a, **k: None,
        None,
    )
    if code is None:
        outcome_ = run()
        assert outcome_.libvirt_s is not None and outcome_.changes["wire"] == 3
    else:
        with pytest.raises(NetmanagerError) as caught:
            run()
        d = caught.value.diagnostics[0]
        assert d.code == code, d
        assert says in d.message + d.hint, d
        assert caught.value.left_changes is (code == "E787")
    assert done == steps
    (request,) = source.asked
    assert (request.domain, request.dest_uri) == ("web-dom", "qemu+tls://hv2.mig.lab/system")
    assert all(a.source == "." and a.vm == "web" for a in adopting)  # type: ignore[attr-defined]


class _Agent:
    """What AgentTransport.migrate_domain sees of an agent: its SET answer and the
    values of nmTxnMigrateState in turn (then nmTxnMigrate and nmTxnLastError)."""

    host = "hv1"

    def __init__(
        self, states: list[object], refuse: bool = False, written: bytes = b"", old: bool = False
    ) -> None:
        self.states = list(states)
        self.refuse = refuse
        self.written = written
        self.old = old  # an agent without the migration objects
        self.sets: list[bytes] = []

    async def __aenter__(self) -> _Agent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def set(self, varbinds: list[tuple[tuple[int, ...], Any]]) -> None:
        from netmanager.agentctl.client import AgentError

        ((_, value),) = varbinds
        self.sets.append(bytes(value.asOctets()))
        if self.refuse:
            raise AgentError(self.host, "SET failed: resourceUnavailable")

    async def get(self, *oids: tuple[int, ...]) -> list[Any]:
        return [self._value(oid) for oid in oids]

    def _value(self, oid: tuple[int, ...]) -> Any:
        from pysnmp.proto import rfc1902
        from pysnmp.proto.rfc1905 import NoSuchObject

        from netmanager.snmp import mib

        if self.old and oid != (*mib.oid_of("nmTxnLastError"), 0):
            return NoSuchObject("")
        if oid == (*mib.oid_of("nmTxnMigrateState"), 0):
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return rfc1902.OctetString(json.dumps(state).encode())
        if oid == (*mib.oid_of("nmTxnMigrate"), 0):
            return rfc1902.OctetString(self.written)
        return rfc1902.OctetString(b"a migration runs already")


def test_the_manager_follows_an_agent_s_migration_and_says_where_on_failure() -> None:
    """AgentTransport.migrate_domain against an agent's answers: told once the agent
    says transferring, the result once migrated; a refused SET is a failure on the
    source with the agent's reason (also from an agent of an older netmanager); a SET
    sent again after a lost answer finds its own migration running; a failure says where
    the domain is; an agent that lost track of it is 'unknown'."""
    import asyncio

    from netmanager.apply.agent_transport import AgentTransport
    from netmanager.hypervisor.migration import MigrationError, Where

    request = _request(domain="web1", dest_uri="qemu+tls://hv2/system")
    ours = json.dumps(request.as_json(), sort_keys=True).encode()
    run = {"state": "running", "domain": "web1"}
    sending = {**run, "transferring": True}
    done = {"state": "migrated", "domain": "web1", "duration_s": 2.25}

    def migrate(agent: _Agent) -> tuple[Any, int]:
        told: list[int] = []
        transport = AgentTransport(agent, None)  # type: ignore[arg-type]
        try:
            result = asyncio.run(transport.migrate_domain(request, lambda: told.append(1)))
        except MigrationError as exc:
            return exc, len(told)
        return result, len(told)

    agent = _Agent([run, run, sending, sending, done])
    result, told = migrate(agent)
    assert (result.domain, result.duration_s, told) == ("web1", 2.25, 1)
    assert agent.sets == [ours]

    failed, told = migrate(_Agent([{"state": "idle"}], refuse=True))
    assert isinstance(failed, MigrationError) and failed.where is Where.SOURCE and not told
    assert "did not start the migration: a migration runs already" in failed.reason

    failed, _ = migrate(_Agent([], refuse=True, old=True))
    assert isinstance(failed, MigrationError) and failed.where is Where.SOURCE

    result, told = migrate(_Agent([sending, sending, done], refuse=True, written=ours))
    assert result.duration_s == 2.25 and told == 1

    where = {"state": "failed", "domain": "web1", "where": "neither", "error": "it broke"}
    failed, told = migrate(_Agent([sending, where]))
    assert isinstance(failed, MigrationError) and failed.where is Where.NEITHER and told == 1
    assert failed.reason == "it broke"

    failed, _ = migrate(_Agent([run, {"state": "idle"}]))
    assert isinstance(failed, MigrationError) and failed.where is Where.UNKNOWN
    assert "lost track" in failed.reason
