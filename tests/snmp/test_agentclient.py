"""The manager's encoding of a candidate, checked by the agent's own SET logic (pure)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import netmanager
from netmanager.agentctl.client import candidate_from_walk, candidate_pdus, tables
from netmanager.compile.configs import compile_topology
from netmanager.host.candidate import Candidate
from netmanager.host.rows import (
    candidate_from_host_configs,
    complete,
    host_configs_from_candidate,
    topology_of,
)
from snmp_agents.configstore import ConfigStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _candidate(real: Path, virtual: Path, host: str) -> Candidate:
    model = netmanager.load(real, virtual)
    configs = compile_topology(model, netmanager.map(model))
    return candidate_from_host_configs([configs[host]])


def _load(store: ConfigStore, want: Candidate, have: Candidate) -> int:
    pdus = candidate_pdus(want, have)
    for pdu in pdus:
        store.apply(store.plan([(i, oid, value) for i, (oid, value) in enumerate(pdu)]))
    return len(pdus)


def _walk(store: ConfigStore) -> list[tuple[tuple[int, ...], object]]:
    section = store.section()
    return [(oid, fn(arg)) for oid, (fn, arg) in zip(section.oids, section.entries, strict=True)]


def test_a_candidate_travels_and_reads_back_whole() -> None:
    want = _candidate(EXAMPLES / "aef-grid/real.xml", EXAMPLES / "aef-grid/virtual.xml", "host1")
    store = ConfigStore()
    assert _load(store, want, Candidate()) > 1  # several rows a PDU, several PDUs
    assert store.candidate() == want
    assert candidate_from_walk(_walk(store)) == want
    # nothing differs: nothing is sent
    assert candidate_pdus(want, want) == []


def test_a_changed_row_is_destroyed_and_created_in_separate_pdus(tmp_path: Path) -> None:
    real = EXAMPLES / "two-hosts/real.xml"
    virtual = EXAMPLES / "two-hosts/virtual.xml"
    faster = tmp_path / "virtual.xml"
    faster.write_text(virtual.read_text().replace('bandwidth="10Mbit"', 'bandwidth="20Mbit"'))
    old, new = _candidate(real, virtual, "host1"), _candidate(real, faster, "host1")
    assert old != new
    store = ConfigStore()
    _load(store, old, Candidate())
    pdus = candidate_pdus(new, old)
    status_columns = {t.status.oid for t in tables()}
    statuses = [
        {int(v) for oid, v in pdu if any(oid[: len(c)] == c for c in status_columns)}
        for pdu in pdus
    ]
    assert {6} in statuses and {4} in statuses  # destroys, then createAndGo, never mixed
    for pdu in pdus:
        store.apply(store.plan([(i, oid, value) for i, (oid, value) in enumerate(pdu)]))
    assert store.candidate() == new
    # and back to nothing: every row destroyed
    _load(store, Candidate(), new)
    assert store.candidate() == Candidate()


def test_the_manager_sends_documents_and_the_agent_adds_the_rows_they_imply(
    tmp_path: Path,
) -> None:
    """A load sends the documents (and destroys), not the structured rows they imply:
    the agent completes its candidate when it stages.  A changed topology's stale rows are
    destroyed; a row set by hand that the documents do not imply stays (stage refuses it)."""
    real = EXAMPLES / "aef-grid/real.xml"
    virtual = EXAMPLES / "aef-grid/virtual.xml"
    want = _candidate(real, virtual, "host1")
    store = ConfigStore()
    pdus = candidate_pdus(want, Candidate(), implied=False)
    every = candidate_pdus(want, Candidate())
    assert sum(map(len, pdus)) < sum(map(len, every)) / 3  # var-binds sent
    for pdu in pdus:
        store.apply(store.plan([(i, oid, value) for i, (oid, value) in enumerate(pdu)]))
    sent = store.candidate()
    assert sent.documents == want.documents and not sent.ports and not sent.networks
    assert complete(sent) == want
    assert complete(want) is want  # nothing missing: the same candidate
    # a changed topology: the rows that changed are destroyed, their successors implied
    faster = tmp_path / "virtual.xml"
    faster.write_text(virtual.read_text().replace('bandwidth="1Mbit"', 'bandwidth="2Mbit"'))
    new = _candidate(real, faster, "host1")
    assert new.shapings != want.shapings
    store.load_candidate(want)
    for pdu in candidate_pdus(new, want, implied=False):
        store.apply(store.plan([(i, oid, value) for i, (oid, value) in enumerate(pdu)]))
    assert complete(store.candidate()) == new
    # rows that disagree with the documents are kept, and refused by the check
    stray = replace(want.ports[0], mac="02:00:00:00:00:99")
    odd = replace(want, ports=(stray, *want.ports[1:]))
    completed = complete(odd)
    assert stray in completed.ports and want.ports[0] in completed.ports
    with pytest.raises(ValueError, match="ports rows do not match"):
        host_configs_from_candidate(completed)
    # topology_of reads every structured table's qualified names
    assert {topology_of(r) for r in (*want.networks, *want.peers, *want.ports)} == {"aef-grid"}
