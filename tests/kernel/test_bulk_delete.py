"""Link deletions in one namespace go to the kernel as one group deletion.

Deleting links one by one waits for an RCU grace period each (about 15 ms here), which
made a topology's destroy take seconds per hundred ports; the backend puts a run of links
it deletes in a device group no link of the namespace is in, and deletes the group.
Checked through ``ip -j``: only netmanager's links go, a foreign link in the group the
backend would pick first stays, and no link is left in a borrowed group.
"""

from __future__ import annotations

import subprocess

import pytest

from netmanager.kernel import ApplyError, Engine, HostState, Link, LinkKind, Namespace
from netmanager.kernel import backend as kernel_backend
from netmanager.kernel import netlink as nl
from netmanager.kernel.journal import execute
from tests.kernel.helpers import jrun

pytestmark = pytest.mark.privileged


def _bridges(dom0: str, count: int) -> list[Link]:
    return [Link(dom0, f"br{i}", LinkKind.BRIDGE, alias=f"nm:t:net{i}") for i in range(count)]


def _links(namespace: str) -> dict[str, int]:
    return {
        str(link["ifname"]): int(link.get("group", 0) if link.get("group") != "default" else 0)
        for link in jrun("ip", "-n", namespace, "-j", "-d", "link", "show")
    }


def test_a_run_of_deletions_is_one_group_deletion_and_spares_foreign_links(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dom0 = f"{prefix}-d"
    with Engine() as engine:
        engine.apply(HostState.checked([Namespace(dom0), *_bridges(dom0, 12)]))
        # a link netmanager does not own, in the first group the backend would borrow
        subprocess.run(["ip", "-n", dom0, "link", "add", "foreign", "type", "bridge"], check=True)
        first = str(kernel_backend.BULK_GROUP_BASE)
        subprocess.run(["ip", "-n", dom0, "link", "set", "foreign", "group", first], check=True)
        sent: list[int] = []
        original = nl.link_delete_group

        def spy(group: int) -> nl.Request:
            sent.append(group)
            return original(group)

        monkeypatch.setattr(nl, "link_delete_group", spy)
        result = engine.apply(HostState.checked([Namespace(dom0)]), namespaces=[dom0])
    assert result.changes == 12
    assert len(sent) == 1 and sent[0] != kernel_backend.BULK_GROUP_BASE
    links = _links(dom0)
    assert set(links) == {"lo", "foreign"}
    assert links["foreign"] == kernel_backend.BULK_GROUP_BASE


def test_a_link_gone_from_a_run_fails_alone_and_the_rest_is_undone(prefix: str) -> None:
    dom0 = f"{prefix}-d"
    with Engine() as engine:
        engine.apply(HostState.checked([Namespace(dom0), *_bridges(dom0, 8)]))
        plan = engine.plan(HostState.checked([Namespace(dom0)]), namespaces=[dom0])
        # one of them disappears between the plan and its execution
        subprocess.run(["ip", "-n", dom0, "link", "del", "br3"], check=True)
        with pytest.raises(ApplyError) as failure:
            execute(plan, engine.backend)
    assert "br3" in str(failure.value)
    links = _links(dom0)
    # the other seven were deleted together, then re-created by the undo
    assert set(links) == {"lo"} | {f"br{i}" for i in range(8) if i != 3}
    assert all(group == 0 for group in links.values()), links
