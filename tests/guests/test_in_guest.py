"""The tests that skip on a kernel without NetEm and 802.1Q, run inside a guest that has
them: a stock Debian kernel under QEMU (TCG), its root the host's ``/`` read-only over 9p,
so the guest runs this very checkout with this very interpreter.

One guest boots for the module (no NIC: everything happens in namespaces inside it).  The
inner pytest writes nothing into the checkout (no cache provider, no bytecode, its temporary
directories and JUnit report on the guest's tmpfs); the report is read back and every test
named in :data:`MUST_PASS` must have passed there, not skipped.  QEMU is stopped by its PID
whatever happens; the namespaces inside the guest go with it.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from netmanager.guests import qemu
from tests.guests.conftest import GuestImage, running

pytestmark = pytest.mark.privileged

PROJECT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the host's interpreter (a virtualenv's too), seen through 9p
WORK = "/tmp/inguest"  # on the guest's tmpfs
GUEST_TMPFS = ("/tmp", "/run", "/var/tmp", "/var/lib/netmanager")  # hide the host's there

# What runs inside; the first three skip on this machine's kernel ("no sch_netem", "no
# 802.1Q"), the two modules after them skip on it entirely.
INNER = (
    "tests/kernel/test_kernel_apply.py::test_netem_needs_a_kernel_with_netem",
    "tests/kernel/test_kernel_features.py::test_netem_below_the_egress_tbf",
    "tests/kernel/test_kernel_features.py::test_a_vlan_on_a_parent_link",
    "tests/kernel/test_kernel_netem_vlan.py",
    "tests/test_apply_netem_vlan.py",
    "tests/test_doctor.py",
)
MUST_PASS = {
    ("tests.kernel.test_kernel_apply", "test_netem_needs_a_kernel_with_netem"),
    ("tests.kernel.test_kernel_features", "test_netem_below_the_egress_tbf"),
    ("tests.kernel.test_kernel_features", "test_a_vlan_on_a_parent_link"),
    ("tests.kernel.test_kernel_netem_vlan", "test_netem_alone_then_below_a_tbf_then_gone"),
    ("tests.kernel.test_kernel_netem_vlan", "test_netem_parameters_are_read_back_exactly[loss]"),
    (
        "tests.kernel.test_kernel_netem_vlan",
        "test_netem_parameters_are_read_back_exactly[latency64]",
    ),
    ("tests.kernel.test_kernel_netem_vlan", "test_netem_below_htb_classes"),
    ("tests.kernel.test_kernel_netem_vlan", "test_a_bridge_per_vlan_across_two_hosts"),
    (
        "tests.kernel.test_kernel_netem_vlan",
        "test_netem_on_a_port_of_a_vlan_bridge_delays_what_crosses",
    ),
    ("tests.test_apply_netem_vlan", "test_a_vlan_network_with_latency_is_applied_and_destroyed"),
    ("tests.test_doctor", "test_doctor_agrees_with_the_kernel_about_netem"),
}
DOCTOR_MUST_FIND = ("netem", "8021q", "vxlan", "bridge_vlan_filtering", "iptables", "ebtables")


def _hidden_in_guest(path: Path) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in GUEST_TMPFS)


def _env() -> dict[str, str]:
    return {
        "PYTHONPATH": str(PROJECT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": WORK,
        "NETMANAGER_STATE_DIR": f"{WORK}/state",
    }


@pytest.fixture(scope="module")
def guest(
    tmp_path_factory: pytest.TempPathFactory, guest_image: GuestImage
) -> Iterator[qemu.Guest]:
    # the guest shows the project again over its tmpfs (a clone in /tmp): not the rest
    for path in (Path(sys.prefix).resolve(), Path(PYTHON).resolve()):
        if _hidden_in_guest(path) and not path.is_relative_to(PROJECT):
            pytest.skip(f"{path} is under a directory the guest covers with a tmpfs")
    spec = qemu.GuestSpec(
        name="inguest",
        kernel=guest_image.kernel,
        initramfs=guest_image.initramfs,
        run_dir=tmp_path_factory.mktemp("inguest"),
        memory_mib=384,
        project_dir=PROJECT,
    )
    with running(spec) as booted:
        booted.run(["mkdir", "-p", WORK], check=True)
        yield booted


def test_doctor_finds_netem_and_vlans_inside(guest: qemu.Guest) -> None:
    result = guest.run([PYTHON, "-m", "netmanager", "doctor", "--json"], env=_env(), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    features = {f["name"]: f for f in json.loads(result.stdout)["features"]}
    missing = {
        name: features.get(name, {}).get("detail", "not reported")
        for name in DOCTOR_MUST_FIND
        if not features.get(name, {}).get("available")
    }
    assert missing == {}


def test_what_skips_here_passes_inside(guest: qemu.Guest) -> None:
    report = f"{WORK}/junit.xml"
    argv = [
        PYTHON,
        "-m",
        "pytest",
        "-q",
        "-rA",
        "-p",
        "no:cacheprovider",
        "-n0",  # no parallel workers: the guest has one CPU
        f"--rootdir={PROJECT}",
        "-c",
        str(PROJECT / "pyproject.toml"),
        f"--basetemp={WORK}/pytest",
        f"--junitxml={report}",
        *(f"{PROJECT}/{selection}" for selection in INNER),
    ]
    result = guest.run(argv, env=_env(), timeout=420)
    output = f"inner pytest exited {result.returncode}:\n{result.stdout[-6000:]}{result.stderr}"
    assert result.returncode == 0, output
    xml = guest.run(["cat", report], check=True).stdout
    outcomes = {}
    for case in ET.fromstring(xml).iter("testcase"):
        bad = [child.tag for child in case if child.tag in ("skipped", "failure", "error")]
        outcomes[(case.get("classname"), case.get("name"))] = bad[0] if bad else "passed"
    assert {k: v for k, v in outcomes.items() if v != "passed"} == {}, output
    assert MUST_PASS - set(outcomes) == set(), sorted(outcomes)
