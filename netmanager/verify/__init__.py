"""``netmanager verify``: measure an applied topology against its virtual.xml.

Levels like Emulab's linktest — reachability, isolation (ICMP, TCP, UDP and ARP, with a
capture in every VM), paths (traceroute hops against the declared gateways), latency and
loss (echo series against the declared values, both directions), bandwidth (iperf3 TCP
and UDP, both directions, against the declared rate) and state (shaping and rules read
back from the kernel against the plan) — and a report with a terminal table, JSON, CSV and
figures::

    from netmanager.verify import verify
    report = verify(("real.xml", "virtual.xml"), level=6, sample=5)
    if not report.passed:
        for check in report.failures:
            print(check.kind, check.src, check.dst, check.detail)

Modules: :mod:`~netmanager.verify.expect` (what must happen, pure),
:mod:`~netmanager.verify.scan` (in-process probes and captures inside namespaces),
:mod:`~netmanager.verify.iperf` (throughput), :mod:`~netmanager.verify.connectivity`,
:mod:`~netmanager.verify.throughput` and :mod:`~netmanager.verify.state` (the levels),
:mod:`~netmanager.verify.report` and :mod:`~netmanager.verify.plots` (the output),
:mod:`~netmanager.verify.run` (the orchestration), :mod:`~netmanager.verify.fidelity`
(the accuracy table of the README), :mod:`~netmanager.verify.outage` and its worker
:mod:`~netmanager.verify.outageworker` (a migration's outage, measured as Themis did: a
UDP stream and a 100 Hz echo through it, downtime, loss, throughput over time).
"""

from typing import TYPE_CHECKING

from netmanager.lazy import exports

if TYPE_CHECKING:
    from netmanager.verify.report import LEVELS, Check, Kind, Report
    from netmanager.verify.run import Options, verify

# Imported on first use: the workers that run inside guests (scanworker, stateworker) are
# modules of this package and need none of the orchestration.
_LAZY = {
    "LEVELS": "netmanager.verify.report",
    "Check": "netmanager.verify.report",
    "Kind": "netmanager.verify.report",
    "Report": "netmanager.verify.report",
    "Options": "netmanager.verify.run",
    "verify": "netmanager.verify.run",
}

__getattr__ = exports(__name__, _LAZY)

__all__ = ["LEVELS", "Check", "Kind", "Options", "Report", "verify"]
