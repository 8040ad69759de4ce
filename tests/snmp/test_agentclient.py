"""The manager's encoding of a candidate, checked by the agent's own SET logic (pure)."""

from __future__ import annotations

from pathlib import Path

import netmanager
from netmanager.agentclient import candidate_from_walk, candidate_pdus, tables
from netmanager.compile import compile_topology
from netmanager.host.candidate import Candidate
from netmanager.host.rows import candidate_from_host_configs
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
