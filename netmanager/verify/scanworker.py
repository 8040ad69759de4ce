"""One kernel's share of a distributed scan, run inside a guest host (standard library and
:mod:`netmanager.verify.scan` only: Python starts in about half a second under TCG, where
importing the whole of netmanager would take several).

``python3 -I .../netmanager/verify/scanworker.py DIR`` reads ``DIR/input.json``::

    {"token": hex, "namespaces": [...], "targets": [...], "capture": [...],
     "timeout_s", "arp_timeout_s", "arp_rate", "in_flight", "budget_s", "wait_s",
     "root": [...],  (optional: namespaces that are the worker's own, a domain's VM)
     "ip": [[key, namespace, src, dst, proto, port, ttl, at, retry], ...],
     "arp": [[key, namespace, ifname, mac, src, target], ...]}

and talks with the manager through files of ``DIR`` (the manager writes and reads them with
the guest's control channel: no process started in the guest while it measures): it opens
its captures and writes ``state`` = ``ready``; waits for ``go``; sends its probes (their ``at`` relative to its own clock:
round trips are measured by one kernel's clock, never compared across guests) and writes
``state`` = ``done``; keeps capturing until ``stop``; then writes ``result.json`` (see
:func:`result_json`) and exits.  Any failure is written to ``result.json`` as ``error``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netmanager.verify.scan import ArpProbe, IpProbe, Scanner, ScanResult

POLL_S = 0.005
SETTLE_S = 0.5  # after go, before the first probe
PROJECT = Path(__file__).resolve().parents[2]


def light_import(project: Path = PROJECT) -> types.ModuleType:
    """:mod:`netmanager.verify.scan` without running the packages' ``__init__`` (which
    import all of netmanager, lxml and jinja2 among them)."""
    for name in ("netmanager", "netmanager.kernel", "netmanager.verify"):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(project / name.replace(".", "/"))]
            sys.modules[name] = package
    return importlib.import_module("netmanager.verify.scan")


def probes_json(ip: list[IpProbe], arp: list[ArpProbe]) -> dict[str, Any]:
    return {
        "ip": [
            [p.key, p.namespace, str(p.src), str(p.dst), p.proto, p.port, p.ttl, p.at, p.retry]
            for p in ip
        ],
        "arp": [[a.key, a.namespace, a.ifname, a.mac, str(a.src), str(a.target)] for a in arp],
    }


def result_json(scanner: Scanner, result: ScanResult) -> dict[str, Any]:
    """What the manager merges: every probe's outcome, the frames captured, the probes of
    other kernels that arrived here, and the TCP probes' ports (to match SYNs captured
    elsewhere)."""
    return {
        "ip": {
            str(key): [
                r.answer,
                r.error,
                str(r.responder) if r.responder is not None else None,
                r.time_exceeded,
                r.rtt_ms,
                sorted(r.delivered),
            ]
            for key, r in result.ip.items()
        },
        "arp": {str(key): sorted(macs) for key, macs in result.arp.items()},
        "frames": {ns: dict(counter) for ns, counter in result.frames.items()},
        "foreign": {str(k): sorted(v) for k, v in scanner.foreign_delivered.items()},
        "syns": [[str(s), sp, str(d), dp, ns] for s, sp, d, dp, ns in scanner.foreign_syns],
        "syn_map": [
            [str(s), sp, str(d), dp, key] for (s, sp, d, dp), key in scanner.syn_map().items()
        ],
        "seconds": result.seconds,
    }


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def work(directory: Path) -> dict[str, Any]:
    scan = light_import()
    doc = json.loads((directory / "input.json").read_text())
    address = scan.Address
    ip = [
        scan.IpProbe(
            int(k), ns, address(src), address(dst), proto, int(port), int(ttl), float(at), bool(r)
        )
        for k, ns, src, dst, proto, port, ttl, at, r in doc["ip"]
    ]
    arp = [
        scan.ArpProbe(int(k), ns, ifname, mac, address(src), address(target))
        for k, ns, ifname, mac, src, target in doc["arp"]
    ]
    scanner = scan.Scanner(
        namespaces=doc["namespaces"],
        targets=[address(t) for t in doc["targets"]],
        capture=doc["capture"],
        timeout_s=float(doc["timeout_s"]),
        in_flight=int(doc["in_flight"]),
        token=bytes.fromhex(doc["token"]),
        arp_timeout_s=doc.get("arp_timeout_s"),
        arp_rate=doc.get("arp_rate"),
        root=doc.get("root", ()),
    )
    wait_s = float(doc.get("wait_s", 300.0))
    settle_s = float(doc.get("settle_s", SETTLE_S))

    def ready() -> None:
        deadline = time.monotonic() + wait_s
        _write(directory / "state", "ready\n")
        while not (directory / "go").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no go within {wait_s:.0f}s of being ready")
            time.sleep(POLL_S)
        # let the go pass through every guest (guestd's threads, the workers with
        # nothing to send finishing) before the first probe: the
        # first echoes would otherwise measure that
        time.sleep(settle_s)

    done_at: list[float] = []

    def until() -> bool:
        if not done_at:
            done_at.append(time.monotonic())
            _write(directory / "state", "done\n")
        if time.monotonic() - done_at[0] > wait_s:
            return True  # the manager is gone: do not capture for ever
        time.sleep(0.03)
        return (directory / "stop").exists()

    result = scanner.run(ip, arp, budget_s=doc.get("budget_s"), ready=ready, until=until)
    return result_json(scanner, result)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: scanworker.py DIR", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    try:
        out = work(directory)
        code = 0
    except Exception as exc:  # reported to the manager, which fails the checks
        traceback.print_exc()
        out = {"error": f"{type(exc).__name__}: {exc}"}
        code = 1
    _write(directory / "result.json", json.dumps(out))
    _write(directory / "state", "finished\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
