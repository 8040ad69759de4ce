"""VMs moved by ``netmanager migrate``: kept as pins over the files' own (pure).

A migration moves a VM to a host the mapping would not choose by itself; the topology's
record keeps each move (the host, and the pin the files gave the VM then), and every
later mapping pins the VM there, so that ``plan`` after a migration shows no change.  A
move holds until the files themselves change that VM's pin (the file's new value wins,
as with runtime overrides), the VM or the host is gone, or the VM is migrated again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from netmanager.inputs.model import Model, PinnedVM


@dataclass(frozen=True)
class Move:
    """A VM recorded on ``host``; ``base``: the host the files pinned it to when it
    moved (None: not pinned)."""

    host: str
    base: str | None = None

    def as_json(self) -> list[str | None]:
        return [self.host, self.base]

    @classmethod
    def from_json(cls, doc: list[str | None]) -> Move:
        host, base = doc
        return cls(str(host), None if base is None else str(base))


def file_pin(model: Model, vm: str) -> str | None:
    """The host the files pin ``vm`` to, if any."""
    found = model.real.pinned_host(vm, model.topology)
    return found.name if found is not None else None


def holding(model: Model, moves: Mapping[str, Move]) -> dict[str, Move]:
    """The moves that still hold for the files as they are now."""
    return {
        vm: move
        for vm, move in moves.items()
        if vm in model.virtual.vm_by_name
        and move.host in model.real.host_by_name
        and file_pin(model, vm) == move.base
    }


def pinned(model: Model, moves: Mapping[str, Move]) -> Model:
    """The model with each moved VM pinned to its host instead of where the files pin it."""
    if not moves:
        return model
    topology = model.topology
    hosts = []
    for host in model.real.hosts:
        kept = tuple(
            p for p in host.pinned if not (p.name in moves and p.topology in (None, topology))
        )
        extra = tuple(
            PinnedVM(vm, topology) for vm, move in sorted(moves.items()) if move.host == host.name
        )
        hosts.append(replace(host, pinned=kept + extra))
    return replace(model, real=replace(model.real, hosts=tuple(hosts)))
