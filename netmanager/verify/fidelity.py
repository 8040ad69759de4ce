"""The accuracy table of the README: TBF bandwidth measured against the declared rate.

Two emulated hosts on one switch, one shaped network with three VMs (a and b on host1,
c on host2); for each rate, apply, measure with verify's bandwidth level (iperf3, both
directions, a-b on one host and a-c across hosts over VXLAN), take it down.  Everything
runs under a namespace prefix and a state directory of its own, removed at the end::

    python -m netmanager.verify.fidelity --rates 1,10,100,1000 --underlay 1Gbit --udp

One iperf3 at a time; about 45 s per rate with TCP and UDP.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from netmanager import programs
from netmanager.verify.report import Check, Kind

REAL = """<?xml version="1.0" encoding="UTF-8"?>
<real xmlns="urn:netmanager:real:1" version="1.0">
  <snmp credentials="snmp.toml"/>
  <site name="lab"><vni-range first="7000" last="7099"/></site>
  <switch name="sw1" site="lab"/>
  <host name="host1" site="lab" hypervisor="netns" cpus="8" memory="8GB">
    <interface name="eth0" address="192.0.2.21/24" speed="{underlay}"/>
  </host>
  <host name="host2" site="lab" hypervisor="netns" cpus="8" memory="8GB">
    <interface name="eth0" address="192.0.2.22/24" speed="{underlay}"/>
  </host>
  <link a="host1:eth0" b="sw1" capacity="{underlay}"/>
  <link a="host2:eth0" b="sw1" capacity="{underlay}"/>
</real>
"""

VIRTUAL = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="fidelity">
  <network name="lan" cidr="10.77.0.0/24" encap="vxlan">
    <shaping bandwidth="{rate}"/>
  </network>
  <vm name="a" host="host1"><interface network="lan" ip="10.77.0.1"/></vm>
  <vm name="b" host="host1"><interface network="lan" ip="10.77.0.2"/></vm>
  <vm name="c" host="host2"><interface network="lan" ip="10.77.0.3"/></vm>
</virtual>
"""


@contextlib.contextmanager
def _isolated(tmp: Path) -> Iterator[str]:
    """A namespace prefix and a state directory of our own; every namespace with the
    prefix is deleted at the end, whatever happened."""
    prefix = f"nmf{uuid.uuid4().hex[:6]}"
    saved = {k: os.environ.get(k) for k in ("NETMANAGER_NS_PREFIX", "NETMANAGER_STATE_DIR")}
    os.environ["NETMANAGER_NS_PREFIX"] = prefix
    os.environ["NETMANAGER_STATE_DIR"] = str(tmp / "state")
    try:
        yield prefix
    finally:
        from netmanager.kernel import netns

        for name in netns.listed(prefix):
            subprocess.run([programs.path("ip"), "netns", "del", name], check=False)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def measure_rates(
    rates: list[str], *, underlay: str = "1Gbit", udp: bool = False, log: bool = True
) -> list[Check]:
    """Bandwidth checks for each rate (declared as in virtual.xml, e.g. '10Mbit')."""
    from netmanager.apply import topology
    from netmanager.apply.prepare import prepare
    from netmanager.verify import verify

    checks: list[Check] = []
    with tempfile.TemporaryDirectory() as directory, _isolated(Path(directory)):
        tmp = Path(directory)
        (tmp / "snmp.toml").write_text("")
        (tmp / "snmp.toml").chmod(0o600)
        real = tmp / "real.xml"
        real.write_text(REAL.format(underlay=underlay))
        for rate in rates:
            virtual = tmp / "virtual.xml"
            virtual.write_text(VIRTUAL.format(rate=rate))
            topology.apply(prepare(real, virtual), local=True)
            try:
                report = verify("fidelity", only=[Kind.BANDWIDTH], udp=udp)
            finally:
                topology.destroy("fidelity")
            for check in report.checks:
                checks.append(check)
                if log:
                    print(_row(check), file=sys.stderr, flush=True)
    return checks


def _row(check: Check) -> str:
    configured = float(check.configured or 0)
    measured = float(check.measured or 0)
    goodput = float(check.extra.get("goodput_bps", 0))
    error = f"{check.error_pct:+.2f}%" if check.error_pct is not None else "-"
    return (
        f"| {configured / 1e6:g} Mbit/s | {check.extra.get('placement', '?')} "
        f"| {check.src} → {check.dst} | {check.probe.removeprefix('iperf3 ').upper()} "
        f"| {goodput / 1e6:.4f} | {measured / 1e6:.4f} | {error} "
        f"| {_verdict(check)} |"
    )


def _verdict(check: Check) -> str:
    if not check.applicable:
        return "n/a: " + check.detail.split(":")[0]
    return "pass" if check.passed else "FAIL"


def markdown(checks: list[Check]) -> str:
    lines = [
        "| declared | VMs | direction | proto | goodput (Mbit/s) | frame rate (Mbit/s) "
        "| error | ±2% |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(c) for c in checks]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netmanager.verify.fidelity")
    parser.add_argument("--rates", default="1,10,100,1000", help="Mbit/s, comma separated")
    parser.add_argument("--underlay", default="1Gbit", help="capacity of the physical links")
    parser.add_argument("--udp", action="store_true", help="also measure with UDP")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    args = parser.parse_args(argv)
    rates = [f"{r.strip()}Mbit" for r in args.rates.split(",") if r.strip()]
    checks = measure_rates(rates, underlay=args.underlay, udp=args.udp)
    if args.json:
        print(json.dumps([c.as_json() for c in checks], indent=2))
    else:
        print(markdown(checks))
    return 0 if all(c.passed for c in checks) else 5


if __name__ == "__main__":
    sys.exit(main())
