"""The libvirt side of a libvirt host's kernel backend: its VMs are domains.

:class:`DomainHost` is what :class:`~netmanager.host.kernelhost.KernelBackend` is given on
a libvirt host (the agent's ``--libvirt URI``): it turns a topology's configuration into
the domains it names (:func:`vm_domains`), finds each VM port's tap before anything
changes, and wires and lets go of domains through the host's keeper
(:mod:`netmanager.hypervisor.keeper`, started in the host's dom0 namespace where the
domains' taps must appear).  The kernel engine does the rest, as on every host: bridges,
tunnels, the taps' marks and shaping, the firewall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from netmanager.compile.hostconfig import HostConfig
from netmanager.hypervisor import domains as dom
from netmanager.hypervisor.cloudinit import SeedNic, seed_files
from netmanager.hypervisor.domxml import read_domain
from netmanager.hypervisor.keeper import KeeperClient, ensure_keeper
from netmanager.hypervisor.migration import MIGRATION_WAIT_S, MigrationRequest, MigrationResult

KEEPER_DIR = "libvirt"
SYSTEM_SEED_DIR = Path("/var/lib/libvirt/images/netmanager-seeds")
#: guests configured at once (each mostly waits on its guest agent)
CONFIGURE_THREADS = 8


def vm_domains(config: HostConfig) -> list[dom.VmDomain]:
    """The VMs of ``config`` that are libvirt domains, with their ports (and, for a
    domain defined from a disk image, its cloud-init seed's files)."""
    out = []
    for vm in config.vms:
        if vm.domain is None:
            continue
        mine = sorted((p for p in config.ports if p.vm == vm.vm), key=lambda p: p.index)
        ports = tuple(dom.DomainPort(p.network, p.index, p.mac, p.bridge, p.vif) for p in mine)
        seed: tuple[tuple[str, str], ...] = ()
        if vm.domain.template is not None and vm.domain.template.image:
            files = seed_files(
                vm.domain.name,
                vm.vm,
                [SeedNic(p.mac, p.ifname, str(p.ip), p.mtu) for p in mine],
                [(str(r.to), str(r.via)) for r in vm.routes],
                vm.forward,
            )
            seed = tuple(sorted(files.items()))
        out.append(dom.VmDomain(config.topology, vm.vm, vm.domain, ports, seed))
    return out


def with_taps(
    config: HostConfig,
    taps: Mapping[tuple[str, str, str], str],
    macs: Mapping[tuple[str, str, str], str] | None = None,
) -> HostConfig:
    """``config`` with each domain port named as its tap is, with the MAC of its NIC (an
    attached domain's taps are libvirt's names, its MACs its own): render, the firewall's
    anti-spoofing and the scope then meet the real devices."""
    if not config.domain_vms:
        return config
    macs = macs or {}
    ports = tuple(
        replace(
            p,
            vif=taps.get((p.topology, p.vm, p.network), p.vif),
            mac=macs.get((p.topology, p.vm, p.network), p.mac),
        )
        if p.vm in config.domain_vms
        else p
        for p in config.ports
    )
    return replace(config, ports=ports)


def guest_networks(config: HostConfig) -> list[dom.GuestNetwork]:
    """What each domain VM's guest must carry (``config`` with its taps and MACs)."""
    out = []
    for vm in config.vms:
        if vm.domain is None:
            continue
        nics = tuple(
            dom.GuestNic(p.mac, str(p.ip), p.mtu)
            for p in sorted(config.ports, key=lambda p: p.index)
            if p.vm == vm.vm
        )
        routes = tuple((str(r.to), str(r.via)) for r in vm.routes)
        out.append(
            dom.GuestNetwork(config.topology, vm.vm, vm.domain.name, nics, routes, vm.forward)
        )
    return out


class DomainHost:
    """A libvirt host's hypervisor, as its kernel backend uses it."""

    def __init__(self, uri: str, dom0: str, state_dir: Path, peers: tuple[str, ...] = ()) -> None:
        self.uri = uri
        self.dom0 = dom0
        #: the libvirts this host's domains may migrate to, opened by the keeper first
        self.peers = peers
        self.directory = state_dir / KEEPER_DIR
        self.record = dom.Record(state_dir)
        self.kvm = dom.kvm_usable()
        #: where cloud-init seeds go: libvirt's image directory where it has one (QEMU,
        #: running as libvirt-qemu, reads there), else the agent's state directory
        self.seed_dir = SYSTEM_SEED_DIR if SYSTEM_SEED_DIR.parent.is_dir() else state_dir / "seeds"
        self._keeper: KeeperClient | None = None
        #: the connection migration_job asks on
        self._jobs: KeeperClient | None = None
        #: (domain, MAC) of the NICs whose link netmanager took down
        self._down: set[tuple[str, str]] = set()

    def keeper(self) -> KeeperClient:
        if self._keeper is None:
            self._keeper = ensure_keeper(
                self.uri, self.directory, netns=self.dom0, peers=self.peers
            )
        return self._keeper

    def close(self) -> None:
        """Close the connection to the keeper (which keeps running: see its module)."""
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
        if self._jobs is not None:
            self._jobs.close()
            self._jobs = None

    def migrate(self, request: MigrationRequest) -> MigrationResult:
        """Live-migrate one of this host's domains (the keeper makes libvirt's call, on a
        connection of its own: the backend's stays free meanwhile; the keeper runs, as
        the domain does)."""
        client = KeeperClient(self.directory, timeout=MIGRATION_WAIT_S)
        try:
            return client.migrate(request)
        finally:
            client.close()

    def migration_job(self, domain: str) -> dict[str, int]:
        """A migrating domain's job (libvirt's jobStats): what it has sent so far.  Asked
        every few milliseconds while a migration starts, on one keeper connection of its
        own (the agent asks it from one thread)."""
        if self._jobs is None:
            self._jobs = KeeperClient(self.directory, timeout=10.0)
        return self._jobs.job(domain)

    def resolve(self, configs: Iterable[HostConfig]) -> dom.Resolution:
        return dom.resolve(
            [vm for c in configs for vm in vm_domains(c)],
            self.keeper(),
        )

    def join(self, configs: Iterable[HostConfig], check: dom.Check) -> tuple[int, set[str]]:
        return dom.join(
            [vm for c in configs for vm in vm_domains(c)],
            self.keeper(),
            self.record,
            kvm_usable=self.kvm,
            console_dir=self.directory,
            seed_dir=self.seed_dir,
            check=check,
        )

    def configure(
        self,
        configs: Iterable[HostConfig],
        agents: Mapping[str, bool],
        check: dom.Check,
        only: Callable[[dom.GuestNetwork], bool] = lambda _net: True,
    ) -> int:
        """Set each domain VM's addresses, routes and forwarding inside its guest, through
        its qemu-guest-agent (domains without one are left as they are), for the guests
        ``only`` chooses."""
        nets = [n for c in configs for n in guest_networks(c) if agents.get(n.domain) and only(n)]
        if not nets:
            return 0
        # the guests at once (each waits on its own agent), one keeper connection each
        # (this runs beside the backend's own calls on self.keeper())
        self.keeper()  # started here, not by the threads at once

        def one(net: dom.GuestNetwork) -> int:
            client = KeeperClient(self.directory)
            try:
                return dom.configure_guest(net, client, check=check)
            finally:
                client.close()

        with ThreadPoolExecutor(max_workers=min(len(nets), CONFIGURE_THREADS)) as pool:
            return sum(pool.map(one, nets))

    def link_states(self, configs: Iterable[HostConfig], check: dom.Check) -> int:
        """Each domain VM's NICs with the carrier its port asks for (a port taken down at
        run time: the guest sees its link go), through libvirt; the changes made."""
        from netmanager.hypervisor.domxml import link_state_interface

        keeper = self.keeper()
        done = 0
        for config in configs:
            for vm in config.vms:
                if vm.domain is None:
                    continue
                name = vm.domain.name
                wanted = {p.mac.lower(): p.up for p in config.ports if p.vm == vm.vm}
                if all(wanted.values()) and not any((name, m) in self._down for m in wanted):
                    continue  # nothing netmanager took down: nothing to read
                found = keeper.domain(name)
                if found is None or not found.active:
                    continue
                for iface in read_domain(found.xml).interfaces:
                    up = wanted.get(iface.mac)
                    if up is False:
                        self._down.add((name, iface.mac))  # taken down, now or before
                    if up is None or up == iface.link_up:
                        continue
                    check(f"link {'up' if up else 'down'} of {iface.mac} in domain {name}")
                    keeper.update(name, link_state_interface(iface, up))
                    if up:
                        self._down.discard((name, iface.mac))
                    else:
                        self._down.add((name, iface.mac))
                    done += 1
        return done

    def leave(
        self, before: Iterable[HostConfig], after: Iterable[HostConfig], check: dom.Check
    ) -> int:
        """Let go of the domains of ``before`` that ``after`` does not have as they are."""
        wanted = {vm.key: vm for c in after for vm in vm_domains(c)}
        gone = {
            vm.key: vm
            for c in before
            for vm in vm_domains(c)
            if wanted.get(vm.key) is None or wanted[vm.key].spec != vm.spec
        }
        if not gone:
            return 0
        return dom.leave(gone.values(), self.keeper(), self.record, check=check)
