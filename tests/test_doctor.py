"""netmanager doctor tries each kernel feature in a throwaway namespace."""

import json
import os
import subprocess

import pytest

from netmanager.cli.main import main

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a namespace")


def _namespaces() -> set[str]:
    out = subprocess.run(
        ["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    return {n["name"] for n in json.loads(out or "[]")}


def test_doctor_reports_every_feature_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the namespaces doctor creates, seen as it creates them: tests running at the same
    # time (other pytest-xdist workers) create and delete namespaces of their own
    from pyroute2 import netns

    created: list[str] = []
    create = netns.create

    def spy(name: str, *args: object, **kwargs: object) -> object:
        created.append(name)
        return create(name, *args, **kwargs)

    monkeypatch.setattr(netns, "create", spy)
    assert main(["doctor", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {f["name"]: f for f in doc["features"]}
    for name in ("netem", "8021q", "vxlan", "br_netfilter", "iptables", "ebtables"):
        assert name in names and names[name]["enables"]
    assert names["bridge"]["available"] and names["veth"]["available"]
    assert created, "doctor tried nothing in a namespace of its own"
    assert not set(created) & _namespaces(), "doctor left its namespace"


def test_doctor_agrees_with_the_kernel_about_netem() -> None:
    from netmanager.kernel.features import probe

    netem = {f.name: f for f in probe()}["netem"]
    # Ask the kernel directly, without netmanager: tc in a namespace of our own.
    ns = f"nmtdoc{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(
            ["ip", "-n", ns, "link", "add", "nma", "type", "veth", "peer", "name", "nmb"],
            check=True,
        )
        result = subprocess.run(
            ["tc", "-n", ns, "qdisc", "add", "dev", "nma", "root", "netem", "delay", "1ms"],
            capture_output=True,
            check=False,
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert netem.available == (result.returncode == 0)
