"""Hostile input against a running tlsgate-policyd (docs/security.md).

Each test sends one kind of garbage or abuse, then checks that the daemon
still answers correctly, that its memory (VmRSS) is back within bounds and
that nothing hung. One daemon serves the whole module (idle_timeout 3 s);
the low-RLIMIT_NOFILE test starts its own.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import struct
import subprocess
import threading
import time

import pytest

from hostile_daemon import (DUNNO, HOST, POLICYD, REJECT, PolicyDaemon,
                            read_reply, request_bytes, wait_closed)

pytestmark = pytest.mark.skipif(not POLICYD.exists(),
                                reason=f"{POLICYD} not built")


@pytest.fixture(scope="module")
def daemon():
    d = PolicyDaemon("hostile").start()
    yield d
    d.cleanup()


@pytest.fixture(autouse=True)
def healthy_after(request):
    """Every test leaves a daemon that answers right with bounded memory."""
    yield
    if "daemon" in request.fixturenames:
        request.getfixturevalue("daemon").check_healthy()


# ---- long lines, odd bytes -------------------------------------------------

@pytest.mark.parametrize("size", [2 * 1024, 64 * 1024, 1024 * 1024],
                         ids=["2KiB", "64KiB", "1MiB"])
def test_long_line_without_newline(daemon, size):
    mark = daemon.mark()
    with daemon.connect() as s:
        try:
            s.sendall((b"sasl_username=" + b"a" * size)[:size])
        except (BrokenPipeError, ConnectionResetError):
            pass	# closed while we were still sending: fine
        if size > 2048:
            # over PD_MAX_LINE: closed without waiting for the newline
            assert wait_closed(s, timeout=5), "daemon waited for the end of an endless line"
            daemon.wait_log(r"line longer than 2048 bytes; closing", since=mark)
        else:
            # within the limit: the daemon waits for more (no reply yet)
            s.settimeout(0.5)
            with pytest.raises(socket.timeout):
                s.recv(1)


def test_line_exactly_at_limit_is_answered(daemon):
    """The limit is PD_MAX_LINE (2048) bytes; a value that fits is read."""
    user = "x" * (2048 - len("sasl_username="))
    with daemon.connect() as s:
        s.sendall(request_bytes(user))
        reply = read_reply(s)
    assert reply.startswith(b"action=")


def test_nul_byte_closes_connection(daemon):
    mark = daemon.mark()
    with daemon.connect() as s:
        s.sendall(request_bytes(b"al\0ice@example.com"))
        assert wait_closed(s, timeout=5)
    daemon.wait_log(r"NUL byte", since=mark)


def test_control_chars_and_invalid_utf8_never_reach_the_log_raw(daemon):
    mark = daemon.mark()
    hostile = [b"\x1b[31malice\x07@example.com", b"bob\xff\xfe\xc0\x80@example.com",
               b"c\rarol@example.com", b"%s%n%x@example.com", b"\xed\xa0\x80@example.com",
               b"\x7f\x9b2J@example.com"]
    for user in hostile:
        with daemon.connect() as s:
            s.sendall(request_bytes(user))
            reply = read_reply(s)
        # @example.com requires TLS whatever the local part holds
        assert reply.startswith(REJECT), (user, reply)
    log = daemon.log_bytes(mark)
    events = [l for l in log.split(b"\n") if b"tlsgate: service=" in l]
    assert len(events) >= len(hostile)
    for line in events:
        assert all(0x20 <= b < 0x7f for b in line), f"raw byte in log line {line!r}"
    assert b"%n" not in log or b"user=%s%n%x@example.com" in log


def test_crlf_lines_answer_like_lf(daemon):
    for user, tls, want in [("alice@example.com", "", REJECT),
                            ("alice@example.com", "TLSv1.2", DUNNO)]:
        with daemon.connect() as s:
            s.sendall(request_bytes(user, tls, eol=b"\r\n"))
            assert read_reply(s).startswith(want)


def test_ten_thousand_attributes(daemon):
    mark = daemon.mark()
    attrs = b"".join(b"x%d=y\n" % i for i in range(10000))
    with daemon.connect() as s:
        try:
            s.sendall(b"request=smtpd_access_policy\n" + attrs + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert wait_closed(s, timeout=5)
    daemon.wait_log(r"more than 100 attributes", since=mark)


def test_garbage_that_is_not_a_policy_request(daemon):
    for junk in [b"GET / HTTP/1.0\r\n\r\n", b"\n\n\n", b"=\n\n",
                 b"request=something_else\n\n", bytes(range(256)) * 4]:
        with daemon.connect() as s:
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            s.settimeout(5)
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            assert not data.startswith(b"action=OK"), junk


# ---- many requests, slow and strange clients --------------------------------

def test_ten_thousand_requests_on_one_connection(daemon):
    n = 10000
    want = []
    payload = bytearray()
    for i in range(n):
        tls = "TLSv1.3" if i % 3 == 0 else ""
        payload += request_bytes("alice@example.com", tls, instance=f"r.{i}")
        want.append(DUNNO if tls else REJECT)
    got = bytearray()
    with daemon.connect(timeout=30) as s:
        # The daemon stops reading while we do not read its replies: send
        # from a thread, read here.
        sender = threading.Thread(target=s.sendall, args=(bytes(payload),))
        sender.start()
        s.settimeout(30)
        while got.count(b"\n\n") < n:
            chunk = s.recv(1 << 20)
            assert chunk, "closed after %d replies" % got.count(b"\n\n")
            got += chunk
        sender.join(30)
    replies = bytes(got).split(b"\n\n")[:-1]
    assert len(replies) == n
    for i, (r, w) in enumerate(zip(replies, want)):
        assert r.startswith(w), (i, r)


def test_one_byte_a_second_does_not_block_others(daemon):
    """A client dribbling a request (a few seconds here) delays no one, and
    gets its answer when the request is complete."""
    req = request_bytes("alice@example.com")
    with daemon.connect() as slow:
        for i in range(4):
            slow.sendall(req[i:i + 1])
            t0 = time.monotonic()
            assert daemon.ask("alice@example.com", tls="TLSv1.3").startswith(DUNNO)
            assert time.monotonic() - t0 < 1
            time.sleep(1)
        slow.sendall(req[4:])
        assert read_reply(slow).startswith(REJECT)


def test_idle_clients_are_closed(daemon):
    socks = [daemon.connect() for _ in range(50)]
    try:
        t0 = time.monotonic()
        assert daemon.ask().startswith(REJECT)	# others are served meanwhile
        for s in socks:
            assert wait_closed(s, timeout=10)
        # idle_timeout is 3 s; the sweep runs once a second
        assert time.monotonic() - t0 < 9
    finally:
        for s in socks:
            s.close()


def test_half_closed_after_request_gets_reply(daemon):
    with daemon.connect() as s:
        s.sendall(request_bytes("alice@example.com") * 3)
        s.shutdown(socket.SHUT_WR)
        data = b""
        s.settimeout(5)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.count(REJECT) == 3


def test_half_closed_mid_request(daemon):
    mark = daemon.mark()
    with daemon.connect() as s:
        s.sendall(request_bytes("alice@example.com")[:40])
        s.shutdown(socket.SHUT_WR)
        assert wait_closed(s, timeout=5)
    daemon.wait_log(r"closed in mid-request", since=mark)


def test_clients_vanish_before_the_reply(daemon):
    req = request_bytes("alice@example.com")
    for i in range(300):
        s = daemon.connect()
        s.sendall(req * (1 + i % 5))
        if i % 2:
            # RST instead of FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    # they are gone: the daemon's descriptors come back down
    deadline = time.monotonic() + 10
    while daemon.fd_count() > 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert daemon.fd_count() <= 20


def _raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard)))


def _serve_many(daemon, count: int, while_open=None) -> int:
    """Opens count connections, sends a request on each, reads every reply
    and calls while_open() before closing them. Returns how many got the
    right answer."""
    sel = selectors.DefaultSelector()
    socks = []
    try:
        for i in range(count):
            s = socket.socket()
            s.settimeout(10)
            s.connect((HOST, daemon.port))
            socks.append(s)
        for i, s in enumerate(socks):
            s.sendall(request_bytes("alice@example.com", instance=f"c.{i}"))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray())
        right = 0
        deadline = time.monotonic() + 60
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                try:
                    chunk = key.fileobj.recv(4096)
                except ConnectionResetError:
                    chunk = b""
                key.data.extend(chunk)
                if not chunk or b"\n\n" in key.data:
                    right += bytes(key.data).startswith(REJECT)
                    sel.unregister(key.fileobj)
        if while_open is not None:
            while_open()
        return right
    finally:
        for s in socks:
            s.close()
        sel.close()


def _collect(socks, deadline: float) -> int:
    """Reads replies on all sockets at once for up to `deadline` seconds;
    returns how many were right."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
    right = 0
    end = time.monotonic() + deadline
    while sel.get_map() and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            try:
                chunk = key.fileobj.recv(4096)
            except ConnectionResetError:
                chunk = b""
            key.data.extend(chunk)
            if not chunk or b"\n\n" in key.data:
                right += bytes(key.data).startswith(REJECT)
                sel.unregister(key.fileobj)
    sel.close()
    return right


# What one open connection may cost: its input buffer (8 KiB), output
# buffer (4 replies) and request reader (8 kept values of 2 KiB), 43 KiB,
# rounded up for the allocator.
PER_CONNECTION_KB = 64


def test_two_thousand_concurrent_connections(daemon):
    _raise_nofile(4096 + 64)
    peaks = []
    for _ in range(2):
        assert _serve_many(daemon, 2000,
                           while_open=lambda: peaks.append(daemon.rss_kb())) == 2000
    deadline = time.monotonic() + 10
    while daemon.fd_count() > 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert daemon.fd_count() <= 20
    # memory grows with open connections, within the per-connection
    # bound, and a second round does not add to it (nothing kept)
    assert peaks[0] - daemon.rss_base <= 2000 * PER_CONNECTION_KB, peaks
    assert peaks[1] <= peaks[0] + 8 * 1024, peaks
    # an allocator may keep the freed memory for the next peak (ASan's
    # does): bounded by that peak
    daemon.rss_allow_kb = max(peaks) - daemon.rss_base
    print(f"VmRSS: start {daemon.rss_base} kB, 2000 connections open {peaks} kB, "
          f"after {daemon.rss_kb()} kB")


def test_low_rlimit_nofile_flooded():
    """The daemon with 64 descriptors, flooded with 200 connections: it
    refuses what it cannot take, says so, and serves again afterwards."""
    _raise_nofile(1024)
    d = PolicyDaemon("nofile", max_connections=1000).start()
    try:
        # Lowered on the running daemon, after it dropped root, so that it
        # cannot raise the limit back; set by its own user (nobody), which
        # needs no CAP_SYS_RESOURCE.
        subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        "prlimit", f"--pid={d.pid}", "--nofile=64:64"], check=True)
        mark = d.mark()
        socks = []
        for _ in range(200):
            try:
                socks.append(socket.create_connection((HOST, d.port), timeout=5))
            except OSError:
                break
        for s in socks:
            try:
                s.sendall(request_bytes())
            except OSError:
                pass
        answered = _collect(socks, deadline=3)
        assert answered > 0
        d.wait_log(r"Too many open files", since=mark)
        assert d.fd_count() <= 64
        # After the flood: the queue of connections the flood left in the
        # listen backlog drains (at about 60 a second: after EMFILE the
        # daemon pauses accepting for a second), then it serves again.
        deadline = time.monotonic() + 30
        while True:
            try:
                if d.ask().startswith(REJECT):
                    break
            except (socket.timeout, ConnectionResetError):
                pass
            assert time.monotonic() < deadline, "no answer within 30 s after the flood"
        d.check_healthy()
        assert _serve_many(d, 40) == 40
    finally:
        d.cleanup()
