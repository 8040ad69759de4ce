"""Stopping guests returns only when QEMU has exited, and signals nothing but QEMU.

No guest is booted here: a sleeping Python stands in for QEMU (its guest has no control socket,
so no poweroff can be asked and the timeouts are what ends it).  The whole lifecycle with
real guests is checked by test_aef_grid_vlan.py (the PIDs are gone when destroy returns).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from netmanager.guests import image, qemu
from netmanager.guests.errors import GuestError

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def _guest(tmp_path: Path, process: subprocess.Popen[bytes] | None, pid: int) -> qemu.Guest:
    kern = image.Kernel("6.1.0-1-amd64", tmp_path / "vmlinux", tmp_path / "modules")
    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = qemu.GuestSpec(
        name="h1", kernel=kern, initramfs=tmp_path / "initramfs.cpio", run_dir=run_dir
    )
    return qemu.Guest(spec, pid, process)


def _gone(pid: int) -> bool:
    """No process (not even a zombie) has this PID."""
    return not Path(f"/proc/{pid}").exists()


def test_stop_waits_for_the_exit_and_reaps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a QEMU that ignores SIGTERM: powered off (no channel: nothing), then SIGTERM, then
    # SIGKILL, each through the pidfd; stop returns with the process reaped
    monkeypatch.setattr(qemu, "KILL_TIMEOUT_S", 0.3)
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(15, signal.SIG_IGN); "
            "print('up', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"up\n"
    guest = _guest(tmp_path, stubborn, stubborn.pid)
    (guest.run_dir / qemu.RECORD).write_text("{}")
    qemu.stop_all([guest], timeout=0.2)
    assert stubborn.returncode == -signal.SIGKILL
    assert _gone(stubborn.pid)
    assert not (guest.run_dir / qemu.RECORD).exists()


def test_stop_of_several_waits_for_each(tmp_path: Path) -> None:
    sleepers = [subprocess.Popen(SLEEPER) for _ in range(3)]
    guests = [_guest(tmp_path / str(i), p, p.pid) for i, p in enumerate(sleepers)]
    qemu.stop_all(guests, timeout=0.1)
    assert all(p.returncode == -signal.SIGTERM for p in sleepers)
    assert all(_gone(p.pid) for p in sleepers)


def test_a_pid_that_is_not_the_guests_qemu_is_never_signalled(tmp_path: Path) -> None:
    # attached from a record (no Popen): the PID is checked to be this run directory's
    # QEMU before anything is sent to it; a sleeping Python is not
    other = subprocess.Popen(SLEEPER)
    try:
        guest = _guest(tmp_path, None, other.pid)
        qemu.stop_all([guest], timeout=0.1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_qemu_that_survives_sigkill_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeper = subprocess.Popen(SLEEPER)
    try:
        guest = _guest(tmp_path, sleeper, sleeper.pid)
        sent: list[int] = []
        monkeypatch.setattr(qemu, "KILL_TIMEOUT_S", 0.05)
        monkeypatch.setattr(signal, "pidfd_send_signal", lambda fd, sig: sent.append(sig))
        with pytest.raises(GuestError) as caught:
            qemu.stop_all([guest], timeout=0.05)
        assert caught.value.errors[0].code == "E759"
        assert sent == [signal.SIGTERM, signal.SIGKILL]
        assert os.path.exists(f"/proc/{sleeper.pid}")
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_qemu_started_by_an_ended_command_is_gone_when_stop_returns(tmp_path: Path) -> None:
    # as after 'netmanager apply' has ended: QEMU's parent is init (or a subreaper), which
    # collects it some time after it exits; stop returns once that is done.  A python
    # named like QEMU, with the guest's pidfile on its command line, stands in for it.
    fake = tmp_path / "qemu-system-x86_64"
    fake.symlink_to(sys.executable)
    guest = _guest(tmp_path, None, 0)
    pidfile = guest.run_dir / qemu.PIDFILE
    read, write = os.pipe()
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:], "
            "start_new_session=True); os.write(int(os.environ['FD']), str(p.pid).encode())",
            str(fake),
            "-c",
            "import time; time.sleep(600)",
            str(pidfile),
        ],
        env={**os.environ, "FD": str(write)},
        pass_fds=[write],
    )
    launcher.wait()
    os.close(write)
    pid = int(os.read(read, 32))
    os.close(read)
    try:
        guest = _guest(tmp_path, None, pid)
        assert guest.alive()  # checked to be this guest's QEMU by its command line
        qemu.stop_all([guest], timeout=0.1)
        assert _gone(pid)
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
