"""An in-memory kernel that fails like the real one: for tests and dry runs without root.

It refuses what the kernel refuses — EEXIST for an object that exists, ENODEV for a
missing link, ENOENT for a missing namespace, ENETDOWN for a route through a link that
is down, EBUSY for an HTB class that still has children or filters, EINVAL for a VLAN
larger than its parent — and deletes what the kernel deletes along (see
:mod:`netmanager.kernel.semantics`).  It holds the objects of every owner, and observes a
:class:`~netmanager.kernel.scope.Scope` through :meth:`Scope.select`, the pure form of
the ownership rule.  The root namespace always exists.  Extra failures can be injected
per action with ``refuse``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Sequence

from netmanager.kernel.contract import NOT_RUN, Action, ActionResult, Verb
from netmanager.kernel.objects import (
    ROOT_NAMESPACE,
    HostState,
    HtbClass,
    KernelObject,
    Link,
    LinkKind,
    Namespace,
    Route,
    Sysctl,
    U32Filter,
    VethPeer,
    link_key,
    requires,
    with_changes,
)
from netmanager.kernel.scope import Scope
from netmanager.kernel.semantics import KernelModel


def _error(code: int, action: Action) -> OSError:
    return OSError(code, f"{os.strerror(code)}: {action.label()}")


class FakeKernel:
    """A backend over a :class:`KernelModel`.  ``batch`` actions form one "send": like
    the kernel, the fake goes on after a failure until the end of that batch."""

    def __init__(
        self,
        objects: Iterable[KernelObject] = (),
        *,
        refuse: Callable[[Action], int | None] | None = None,
        batch: int = 4,
    ) -> None:
        self.model = KernelModel(objects)
        self.refuse = refuse
        self.batch = batch
        self.executed: list[Action] = []

    def observe(self, scope: Scope | Iterable[str]) -> HostState:
        return Scope.coerce(scope).select(self.model)

    def absent(self, namespaces: Iterable[str]) -> set[str]:
        return {n for n in namespaces if n != ROOT_NAMESPACE and ("netns", n) not in self.model}

    def settle(self, links: Iterable[tuple[str, str]], timeout_s: float) -> list[tuple[str, str]]:
        return []  # the fake's links run as soon as they are up

    def move_link(self, namespace: str, ifname: str, to: str) -> None:
        link = self.model.get(link_key(namespace, ifname))
        if not isinstance(link, Link):
            raise OSError(errno.ENODEV, f"no link {ifname} in {namespace or 'root'}")
        if to != ROOT_NAMESPACE and ("netns", to) not in self.model:
            raise OSError(errno.ENOENT, f"no namespace {to}")
        if link_key(to, ifname) in self.model:
            raise OSError(errno.EEXIST, f"{ifname} exists in {to or 'root'}")
        for key in sorted(self.model.dependents(link.key), key=repr):
            found = self.model.get(key)
            if found is not None and key != link.peer_key:
                self.model.delete(key)  # its qdiscs, addresses, filters go
        self.model.delete_only(link.key)
        self.model.add(with_changes(link, namespace=to, master=None, up=False))
        if link.peer is not None:
            peer = self.model.get(link.peer_key)  # type: ignore[arg-type]
            if isinstance(peer, Link) and peer.peer is not None:
                self.model.replace(with_changes(peer, peer=VethPeer(to, ifname)))

    def state(self) -> HostState:
        return HostState.of(self.model)

    def close(self) -> None:
        pass

    def execute(self, actions: Sequence[Action], *, stop_on_error: bool) -> list[ActionResult]:
        results: list[ActionResult] = []
        failed = False
        for i, action in enumerate(actions):
            if failed and stop_on_error and i % self.batch == 0:
                break
            self.executed.append(action)
            result = self._one(action)
            failed = failed or not result.ok
            results.append(result)
        return results + [NOT_RUN] * (len(actions) - len(results))

    def _one(self, action: Action) -> ActionResult:
        code = self.refuse(action) if self.refuse else None
        if code:
            return ActionResult(applied=False, error=_error(code, action))
        try:
            if action.verb is Verb.CREATE:
                self._create(action)
            elif action.verb is Verb.MODIFY:
                self._modify(action)
            else:
                self._delete(action)
        except OSError as exc:
            return ActionResult(applied=False, error=exc)
        return ActionResult(applied=True)

    def _need(self, key: tuple[str | int, ...], code: int, action: Action) -> KernelObject:
        obj = self.model.get(self.model.resolve(key))
        if obj is None:
            raise _error(code, action)
        return obj

    def _create(self, action: Action) -> None:
        obj = action.obj
        m = self.model
        if isinstance(obj, Link) and not obj.creates_pair:
            # configuring the far end of a pair that its creating end made
            self._need(obj.key, errno.ENODEV, action)
            if obj.master:
                self._need(link_key(obj.namespace, obj.master), errno.ENODEV, action)
            m.replace(obj)
            return
        if obj.key in m:
            raise _error(errno.EEXIST, action)
        for dep in requires(obj):
            if dep[0] == "netns":
                self._need(dep, errno.ENOENT, action)
            elif dep[0] == "link" and not (
                isinstance(obj, Link) and obj.vxlan and dep[2] == obj.vxlan.underlay
            ):
                self._need(dep, errno.ENODEV, action)
            elif dep[0] in ("class", "qdisc-handle"):
                self._need(dep, errno.ENOENT, action)
        if isinstance(obj, Route):
            dev = self.model.get(link_key(obj.namespace, obj.dev))
            if isinstance(dev, Link) and not dev.up:
                raise _error(errno.ENETDOWN, action)
        if isinstance(obj, Link) and obj.vlan is not None:
            parent = self.model.get(link_key(obj.namespace, obj.vlan.parent))
            if isinstance(parent, Link) and obj.mtu > parent.mtu:
                raise _error(errno.EINVAL, action)
        if isinstance(obj, Link) and obj.peer is not None:
            peer_key = link_key(obj.peer.namespace, obj.peer.ifname)
            if peer_key in m:
                raise _error(errno.EEXIST, action)
            m.add(obj)
            m.add(
                Link(
                    obj.peer.namespace,
                    obj.peer.ifname,
                    LinkKind.VETH,
                    alias="",
                    mtu=obj.mtu,
                    up=False,
                    peer=type(obj.peer)(obj.namespace, obj.ifname),
                )
            )
            return
        m.add(obj)

    def _modify(self, action: Action) -> None:
        obj = action.obj
        current = self._need(obj.key, errno.ENODEV, action)
        if isinstance(obj, Link) and obj.master:
            self._need(link_key(obj.namespace, obj.master), errno.ENODEV, action)
        if isinstance(obj, Route):
            self._need(link_key(obj.namespace, obj.dev), errno.ENODEV, action)
        if isinstance(obj, Link) and isinstance(current, Link) and current.up and not obj.up:
            for key in self.model.routes_down(current):
                self.model.delete(key)
        if isinstance(obj, Link) and obj.mac is None and isinstance(current, Link):
            obj = with_changes(obj, mac=current.mac)
        self.model.replace(obj)

    def _delete(self, action: Action) -> None:
        obj = action.obj
        if isinstance(obj, Sysctl):
            self._need(obj.key, errno.ENOENT, action)
            self.model.delete(obj.key)
            return
        self._need(obj.key, errno.ENOENT if isinstance(obj, Namespace) else errno.ENODEV, action)
        if isinstance(obj, HtbClass):
            for dep in self.model.dependents(obj.key):
                if isinstance(self.model.get(dep), HtbClass | U32Filter):
                    raise _error(errno.EBUSY, action)
        self.model.delete(obj.key)
