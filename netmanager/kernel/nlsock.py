"""One NETLINK_ROUTE socket in one namespace: many requests per send(), every ACK checked.

The kernel handles the requests of one send() in order, in the sender's context, and
answers each with an ACK (or an error) because every request carries NLM_F_ACK.
NETLINK_CAP_ACK keeps those answers small (the request is not echoed) and NETLINK_EXT_ACK
adds the kernel's explanation of a refusal.  Requests are sent in chunks small enough
that all their ACKs fit in the receive buffer, so none is dropped.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from netmanager.kernel.netlink import (
    NETLINK_CAP_ACK,
    NETLINK_EXT_ACK,
    NETLINK_GET_STRICT_CHK,
    NLM_F_DUMP_INTR,
    NLMSG_DONE,
    NLMSG_ERROR,
    SOL_NETLINK,
    Message,
    NetlinkError,
    Request,
    decode_error,
    frame,
    messages,
)

NETLINK_ROUTE = 0
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
BUFFER_BYTES = 8 << 20
CHUNK_REQUESTS = 1024
CHUNK_BYTES = 1 << 20
RECV_BYTES = 1 << 16
TIMEOUT_S = 30.0
DUMP_RETRIES = 5


def _force_buffer(sock: socket.socket, force: int, plain: int, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, plain, size)


class RtnlSocket:
    """A route netlink socket bound to the namespace the thread was in when it was made."""

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        try:
            _force_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF, BUFFER_BYTES)
            _force_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF, BUFFER_BYTES)
            for option in (NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK):
                sock.setsockopt(SOL_NETLINK, option, 1)
            sock.bind((0, 0))
            # the kernel's own time-outs, not Python's: a socket with a Python time-out
            # polls before every send and receive, a system call more each (an observe
            # of a thousand namespaces makes some ten thousand); a receive that times
            # out raises OSError (EAGAIN) all the same
            limit = struct.pack("ll", int(TIMEOUT_S), 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._seq = 0
        self._buf = bytearray(RECV_BYTES)

    def close(self) -> None:
        self._sock.close()

    @property
    def socket(self) -> socket.socket:
        """The netlink socket itself (for ioctls in its namespace: see EthtoolSocket)."""
        return self._sock

    def _recv(self) -> bytes:
        size = self._sock.recv_into(self._buf)
        return bytes(memoryview(self._buf)[:size])

    def transact(
        self, requests: Sequence[Request], *, stop_on_error: bool = False
    ) -> list[tuple[int, str]]:
        """Send ``requests`` in order; (errno, kernel note) for each, errno 0 meaning done.

        Every request of a chunk is answered, also after one of them failed: the kernel
        goes on with the rest of a send(), so the caller learns exactly which ones took
        effect.  With ``stop_on_error`` no further chunk is sent after a failure, and the
        list is shorter than ``requests``.
        """
        results: list[tuple[int, str]] = []
        start = 0
        while start < len(requests):
            stop, size = start, 0
            while stop < len(requests) and stop - start < CHUNK_REQUESTS:
                size += len(requests[stop].body) + 16
                if size > CHUNK_BYTES and stop > start:
                    break
                stop += 1
            answers = self._exchange(requests[start:stop])
            results.extend(answers)
            if stop_on_error and any(code for code, _ in answers):
                break
            start = stop
        return results

    def _exchange(self, chunk: Sequence[Request]) -> list[tuple[int, str]]:
        first = self._seq + 1
        self._seq += len(chunk)
        payload = b"".join(frame(request, first + i) for i, request in enumerate(chunk))
        self._sock.send(payload)
        answers: list[tuple[int, str] | None] = [None] * len(chunk)
        pending = len(chunk)
        while pending:
            for msg in messages(self._recv()):
                slot = msg.seq - first
                if msg.type == NLMSG_ERROR and 0 <= slot < len(chunk) and answers[slot] is None:
                    answers[slot] = decode_error(msg)
                    pending -= 1
        return [answer for answer in answers if answer is not None]

    def query(self, requests: Sequence[Request]) -> list[Message | tuple[int, str]]:
        """Send requests that each get one reply (no NLM_F_ACK); the reply message, or
        (errno, note) if the kernel refused."""
        first = self._seq + 1
        self._seq += len(requests)
        if not requests:
            return []
        self._sock.send(b"".join(frame(r, first + i) for i, r in enumerate(requests)))
        answers: list[Message | tuple[int, str] | None] = [None] * len(requests)
        pending = len(requests)
        while pending:
            for msg in messages(self._recv()):
                slot = msg.seq - first
                if 0 <= slot < len(requests) and answers[slot] is None:
                    answers[slot] = decode_error(msg) if msg.type == NLMSG_ERROR else msg
                    pending -= 1
        return [answer for answer in answers if answer is not None]

    def dump(self, request: Request) -> list[Message]:
        """All messages of a dump; retried when the kernel flags it as interrupted."""
        for _ in range(DUMP_RETRIES):
            self._seq += 1
            seq = self._seq
            self._sock.send(frame(request, seq))
            out: list[Message] = []
            interrupted = False
            done = False
            while not done:
                for msg in messages(self._recv()):
                    if msg.seq != seq:
                        continue
                    if msg.flags & NLM_F_DUMP_INTR:
                        interrupted = True
                    if msg.type == NLMSG_DONE:
                        done = True
                        break
                    if msg.type == NLMSG_ERROR:
                        code, note = decode_error(msg)
                        if code:
                            raise NetlinkError(code, note, "dump")
                        done = True
                        break
                    out.append(msg)
            if not interrupted:
                return out
        raise NetlinkError(4, "dump kept changing under us", "dump")
