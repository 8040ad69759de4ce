"""The errors of the guest lane (E750–E759), in the project's diagnostic form."""

from __future__ import annotations

from netmanager.errors import ExitCode, Loc, NetmanagerError, single

WHERE = Loc("netmanager/guests")


class GuestError(NetmanagerError):
    """A guest could not be prepared, started, reached or stopped."""

    exit_code = ExitCode.ENVIRONMENT


def guest_error(code: str, message: str, hint: str = "", phase: str = "guest") -> GuestError:
    error = single(code, WHERE, message, hint, phase, GuestError)
    assert isinstance(error, GuestError)
    return error
