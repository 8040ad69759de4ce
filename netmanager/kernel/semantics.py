"""What goes away with what: the kernel's cascades, modelled over a set of kernel objects.

Deleting a namespace takes everything in it, and the other end of every veth that
crosses out of it; deleting a link takes its addresses, routes, qdiscs and FDB entries,
its veth peer and the VXLANs and VLANs built on it, and releases the ports of a bridge;
deleting the last IPv4 (or IPv6) address of a link flushes the routes through it;
deleting a qdisc takes its classes, filters and child qdiscs (a TBF its NetEm child).
Deleting the target of a mirred redirect leaves the redirect in place, redirecting to
nothing: its target becomes ``"#0"``, as it reads back from the kernel.

The planner uses :class:`KernelModel` to know which deletions the kernel does by itself
(they become implied changes, undone but never sent), and the in-memory fake backend uses
it to behave like the kernel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from netmanager.kernel.objects import (
    Address,
    KernelObject,
    Key,
    Link,
    MirredRedirect,
    Qdisc,
    Route,
    Tbf,
    link_key,
    requires,
    tbf_class,
    with_changes,
)

DANGLING = "#0"
"""The target of a redirect whose target link is gone (ifindex 0)."""


def aliases(obj: KernelObject) -> list[Key]:
    """Other keys under which ``obj`` is required: a qdisc is also known by its handle, and
    a TBF also as its one class (the parent of its child qdisc)."""
    if isinstance(obj, Qdisc):
        out: list[Key] = [("qdisc-handle", obj.namespace, obj.ifname, obj.handle)]
        if isinstance(obj.params, Tbf):
            out.append(("class", obj.namespace, obj.ifname, tbf_class(obj.handle)))
        return out
    return []


class KernelModel:
    """A mutable set of kernel objects that knows which objects depend on which."""

    def __init__(self, objects: Iterable[KernelObject] = ()) -> None:
        self.objects: dict[Key, KernelObject] = {}
        self._refs: dict[Key, set[Key]] = {}
        self._alias: dict[Key, Key] = {}
        for obj in objects:
            self.add(obj)

    def __contains__(self, key: object) -> bool:
        return key in self.objects

    def __iter__(self) -> Iterator[KernelObject]:
        return iter(self.objects.values())

    def get(self, key: Key) -> KernelObject | None:
        return self.objects.get(key)

    def add(self, obj: KernelObject) -> None:
        self.objects[obj.key] = obj
        for dep in requires(obj):
            self._refs.setdefault(dep, set()).add(obj.key)
        for alias in aliases(obj):
            self._alias[alias] = obj.key

    def _forget(self, obj: KernelObject) -> None:
        del self.objects[obj.key]
        for dep in requires(obj):
            refs = self._refs.get(dep)
            if refs is not None:
                refs.discard(obj.key)
        for alias in aliases(obj):
            self._alias.pop(alias, None)

    def replace(self, obj: KernelObject) -> KernelObject | None:
        """Put ``obj`` in place of the object with its key; returns the previous one."""
        old = self.objects.get(obj.key)
        if old is not None:
            self._forget(old)
        self.add(obj)
        return old

    def delete_only(self, key: Key) -> None:
        """Take ``key`` out alone (it is put back changed: a link moved elsewhere)."""
        obj = self.objects.get(key)
        if obj is not None:
            self._forget(obj)

    def dependents(self, key: Key) -> set[Key]:
        """Keys of the objects that require ``key`` (directly)."""
        found = set(self._refs.get(key, ()))
        obj = self.objects.get(key)
        if obj is not None:
            for alias in aliases(obj):
                found |= self._refs.get(alias, set())
        return found

    def resolve(self, key: Key) -> Key:
        return self._alias.get(key, key)

    def delete(
        self, key: Key
    ) -> tuple[list[KernelObject], list[tuple[KernelObject, KernelObject]]]:
        """Delete ``key`` and what the kernel deletes with it.

        Returns the removed objects (``key``'s first) and the objects changed on the way as
        (before, after) pairs: the ports a deleted bridge releases, the redirects left
        dangling by the deletion of their target.
        """
        removed: list[KernelObject] = []
        changed: list[tuple[KernelObject, KernelObject]] = []
        stack = [key]
        while stack:
            current = self.objects.get(stack.pop())
            if current is None:
                continue
            for dep_key in sorted(self.dependents(current.key), key=repr):
                dep = self.objects.get(dep_key)
                if dep is None:
                    continue
                if (
                    isinstance(current, Link)
                    and isinstance(dep, Link)
                    and dep.master == current.ifname
                    and dep.namespace == current.namespace
                    and dep_key != current.peer_key
                ):
                    released = with_changes(dep, master=None)
                    self.replace(released)
                    changed.append((dep, released))
                elif (
                    isinstance(current, Link)
                    and isinstance(dep, MirredRedirect)
                    and dep.target == current.ifname
                    and dep.namespace == current.namespace
                    and dep.ifname != current.ifname
                ):
                    dangling = with_changes(dep, target=DANGLING)
                    self.replace(dangling)
                    changed.append((dep, dangling))
                else:
                    stack.append(dep_key)
            if isinstance(current, Link) and current.peer_key is not None:
                stack.append(current.peer_key)
            if isinstance(current, Address):
                stack.extend(self._flushed_routes(current))
            self._forget(current)
            removed.append(current)
        return removed, changed

    def _flushed_routes(self, address: Address) -> list[Key]:
        """Routes through the link that lose their last address of this family with it."""
        link = link_key(address.namespace, address.ifname)
        others = [
            k
            for k in self._refs.get(link, ())
            if k != address.key
            and isinstance(obj := self.objects.get(k), Address)
            and obj.address.version == address.address.version
        ]
        if others:
            return []
        return [
            k
            for k in self._refs.get(link, ())
            if isinstance(obj := self.objects.get(k), Route)
            and obj.dst.version == address.address.version
        ]

    def routes_down(self, link: Link) -> list[Key]:
        """Routes the kernel flushes when ``link`` is set administratively down."""
        return [k for k in self._refs.get(link.key, ()) if isinstance(self.objects.get(k), Route)]
