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

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from netmanager.compile.hostconfig import HostConfig
from netmanager.hypervisor import domains as dom
from netmanager.hypervisor.keeper import KeeperClient, ensure_keeper

KEEPER_DIR = "libvirt"


def vm_domains(config: HostConfig) -> list[dom.VmDomain]:
    """The VMs of ``config`` that are libvirt domains, with their ports."""
    out = []
    for vm in config.vms:
        if vm.domain is None:
            continue
        ports = tuple(
            dom.DomainPort(p.network, p.index, p.mac, p.bridge, p.vif)
            for p in config.ports
            if p.vm == vm.vm
        )
        out.append(dom.VmDomain(config.topology, vm.vm, vm.domain, ports))
    return out


def with_taps(config: HostConfig, taps: Mapping[tuple[str, str, str], str]) -> HostConfig:
    """``config`` with each domain port named as its tap is (an attached domain's taps are
    libvirt's names): render, the firewall and the scope then meet the real devices."""
    if not config.domain_vms:
        return config
    ports = tuple(
        replace(p, vif=taps.get((p.topology, p.vm, p.network), p.vif))
        if p.vm in config.domain_vms
        else p
        for p in config.ports
    )
    return replace(config, ports=ports)


class DomainHost:
    """A libvirt host's hypervisor, as its kernel backend uses it."""

    def __init__(self, uri: str, dom0: str, state_dir: Path) -> None:
        self.uri = uri
        self.dom0 = dom0
        self.directory = state_dir / KEEPER_DIR
        self.record = dom.Record(state_dir)
        self.kvm = dom.kvm_usable()
        self._keeper: KeeperClient | None = None

    def keeper(self) -> KeeperClient:
        if self._keeper is None:
            self._keeper = ensure_keeper(self.uri, self.directory, netns=self.dom0)
        return self._keeper

    def close(self) -> None:
        """Close the connection to the keeper (which keeps running: see its module)."""
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None

    def resolve(self, configs: Iterable[HostConfig]) -> dom.Resolution:
        return dom.resolve(
            [vm for c in configs for vm in vm_domains(c)],
            self.keeper(),
        )

    def join(self, configs: Iterable[HostConfig], check: dom.Check) -> int:
        return dom.join(
            [vm for c in configs for vm in vm_domains(c)],
            self.keeper(),
            self.record,
            kvm_usable=self.kvm,
            console_dir=self.directory,
            check=check,
        )

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
