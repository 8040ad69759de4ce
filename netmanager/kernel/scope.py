"""Which kernel objects belong to whom: the scope of one owner's observe, plan, apply, destroy.

Several owners (topologies, and the infrastructure owner ``-``) share a host: VM ports,
bridges and VXLANs of many topologies sit in one dom0 namespace, which on a real host is
the root namespace.  A :class:`Scope` says what one owner may see and change:

* ``namespaces`` the owner fully owns: it creates and deletes them, and owns their
  loopback, IPv6 switch and sysctls;
* ``shared`` namespaces, never created nor deleted through this scope (a missing one is
  an error when the owner wants to put objects there);
* in both, the links whose alias starts with ``nm:<owner>:`` (:attr:`Scope.marker`) — and
  the far end of a veth pair of theirs that has no alias yet — and what hangs on those
  links: addresses, routes through them, qdiscs, classes, filters, FDB entries.  In a
  fully owned namespace, netmanager's routes through links nobody marked (``lo``) are the
  owner's too.

A scope can also name ``links`` (:meth:`Scope.of_links`): then it sees and changes those
links only (the owner's, or marked by no one yet) and what hangs on them, in namespaces it
shares — the scope of a change to one link's qdiscs or one VM's ports, observed and
planned without the rest of the host.  A tap (:attr:`LinkKind.TAP`) that nobody marked yet
belongs to the scope that fully owns its namespace, or that names it — in ``links``, or in
``adopts`` (the taps of a libvirt host's domains, in the dom0 it shares): it is adopted.

``owner=None`` is the scope of the engine's first version: every netmanager marker counts,
every namespace is fully owned.  :meth:`Scope.select` is the rule as a pure function (the
in-memory fake kernel observes through it); the netlink backend applies the same rule to
what it dumps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netmanager.kernel.objects import (
    MARKER,
    ROOT_NAMESPACE,
    HostState,
    KernelObject,
    Link,
    LinkKind,
    Namespace,
    Route,
    Sysctl,
    link_key,
    where,
)


@dataclass(frozen=True)
class Scope:
    """What one owner sees and changes (see the module docstring)."""

    owner: str | None = None
    namespaces: frozenset[str] = field(default_factory=frozenset)
    shared: frozenset[str] = field(default_factory=frozenset)
    #: None: every link of the owner in those namespaces; else only these (namespace, ifname)
    links: frozenset[tuple[str, str]] | None = None
    #: taps the owner adopts by name in namespaces it shares (a libvirt domain's taps in
    #: a host's dom0): claimed as its own links are, marked by it or by no one
    adopts: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        owner: str | None,
        namespaces: Iterable[str] = (),
        shared: Iterable[str] = (),
        adopts: Iterable[tuple[str, str]] = (),
    ) -> Scope:
        """A scope from any iterables of namespace names (and of the taps it adopts)."""
        return cls(owner, frozenset(namespaces), frozenset(shared), adopts=frozenset(adopts))

    @classmethod
    def of_links(cls, owner: str, links: Iterable[tuple[str, str]]) -> Scope:
        """The scope of some links of ``owner`` and what hangs on them; their namespaces
        are shared (never created or deleted)."""
        chosen = frozenset(links)
        return cls(owner, frozenset(), frozenset(ns for ns, _ in chosen), chosen)

    @classmethod
    def coerce(cls, value: Scope | Iterable[str]) -> Scope:
        """A scope as given, or the first version's scope of some namespace names."""
        return value if isinstance(value, Scope) else cls(None, frozenset(value))

    @property
    def marker(self) -> str:
        """The alias prefix of the owner's links: ``nm:<owner>:`` (``nm:`` for any owner)."""
        return MARKER if self.owner is None else f"{MARKER}{self.owner}:"

    @property
    def all(self) -> frozenset[str]:
        """Every namespace the scope looks into."""
        return self.namespaces | self.shared

    def including(self, namespaces: Iterable[str]) -> Scope:
        """This scope, also owning ``namespaces`` (those it does not share)."""
        more = frozenset(namespaces) - self.shared
        if more <= self.namespaces or self.links is not None:
            return self
        return Scope(self.owner, self.namespaces | more, self.shared, adopts=self.adopts)

    def owns(self, alias: str) -> bool:
        return alias.startswith(self.marker)

    def claims(self, namespace: str, ifname: str, alias: str, *, tap: bool) -> bool:
        """Whether a link found in one of this scope's namespaces is the scope's: one it
        names (marked by its owner or by no one), or, without names, one with its owner's
        marker, or an unmarked tap in a namespace it fully owns (adopted).  (The unmarked
        far end of an owned veth is decided by the caller, from the pair.)"""
        if self.links is not None:
            return (namespace, ifname) in self.links and (
                self.owns(alias) or not alias.startswith(MARKER)
            )
        if self.owns(alias):
            return True
        if not tap or alias.startswith(MARKER):
            return False
        return namespace in self.namespaces or (namespace, ifname) in self.adopts

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.owner is not None and (not self.owner or ":" in self.owner):
            out.append(f"owner '{self.owner}' must be a non-empty name without ':'")
        if self.links is not None and self.namespaces:
            out.append("a scope of links owns no namespace (it shares theirs)")
        if ROOT_NAMESPACE in self.namespaces:
            out.append("the root namespace can only be shared, never owned (created or deleted)")
        both = sorted(self.namespaces & self.shared)
        if both:
            out.append("namespaces both owned and shared: " + ", ".join(where(n) for n in both))
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "owner": self.owner,
            "namespaces": sorted(self.namespaces),
            "shared": sorted(self.shared),
        }
        if self.links is not None:
            out["links"] = [list(k) for k in sorted(self.links)]
        if self.adopts:
            out["adopts"] = [list(k) for k in sorted(self.adopts)]
        return out

    def select(self, objects: Iterable[KernelObject]) -> HostState:
        """The objects of this scope among ``objects`` (every object of a kernel, of all
        owners; namespaces outside the scope are ignored)."""
        inside = [o for o in objects if o.namespace in self.all]
        links = {o.key: o for o in inside if isinstance(o, Link)}
        owned = {
            k
            for k, link in links.items()
            if self.claims(link.namespace, link.ifname, link.alias, tap=link.kind is LinkKind.TAP)
        }
        for key in list(owned) if self.links is None else ():
            link = links[key]
            peer = links.get(link.peer_key) if link.peer_key is not None else None
            if (
                peer is not None
                and peer.kind is LinkKind.VETH
                and not peer.alias.startswith(MARKER)
            ):
                owned.add(peer.key)

        def foreign(namespace: str, ifname: str) -> bool:
            link = links.get(link_key(namespace, ifname))
            return link is not None and link.key not in owned and link.alias.startswith(MARKER)

        out: list[KernelObject] = []
        for obj in inside:
            if isinstance(obj, Namespace | Sysctl):
                keep = obj.namespace in self.namespaces
            elif isinstance(obj, Link):
                keep = obj.key in owned
            elif isinstance(obj, Route):
                keep = link_key(obj.namespace, obj.dev) in owned or (
                    obj.namespace in self.namespaces and not foreign(obj.namespace, obj.dev)
                )
            else:  # addresses, FDB entries, qdiscs, classes, filters: by their link
                keep = link_key(obj.namespace, obj.ifname) in owned
            if keep:
                out.append(obj)
        return HostState(frozenset(out))
