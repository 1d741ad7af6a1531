"""probe_fakes - small misbehaving servers for the `tlsgate probe` tests:
silent listeners, plaintext-only protocol servers, servers that stall or
cheat after STARTTLS, servers that send garbage. Loopback only (127.0.0.1),
ports from mailstack.free_port(); every connection runs in a daemon thread
and everything ends with stop() (or the `with` block).
"""

from __future__ import annotations

import socket
import threading
from typing import Callable, Optional

import mailstack

Handler = Callable[[socket.socket, threading.Event], None]


class FakeServer:
    def __init__(self, handler: Handler):
        self.port = mailstack.free_port()
        self._handler = handler
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((mailstack.SERVER_ADDR, self.port))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._conns: list[socket.socket] = []
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(0.2)
            self._handler(conn, self._stop)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self) -> "FakeServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _recv_until_closed(conn: socket.socket, stop: threading.Event,
                       on_line: Optional[Callable[[bytes], bool]] = None) -> None:
    """Read lines until the client closes or stop is set; on_line returns
    False to end the session."""
    buf = b""
    while not stop.is_set():
        try:
            data = conn.recv(4096)
        except socket.timeout:
            continue
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if on_line is not None and on_line(line.rstrip(b"\r")) is False:
                return


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accepts and says nothing, ever."""
    _recv_until_closed(conn, stop)


def scripted(greeting: bytes, replies: dict[bytes, bytes]) -> Handler:
    """Sends greeting, then answers each line starting with a key of
    replies (case-insensitive) with its value; other lines get no answer
    (which is how a server stalls)."""
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(greeting)

        def on_line(line: bytes) -> bool:
            for key, reply in replies.items():
                if line.upper().startswith(key.upper()):
                    conn.sendall(reply)
                    return True
            return True
        _recv_until_closed(conn, stop, on_line)
    return handler


# Plaintext-only servers: they list capabilities but no STARTTLS/STLS.
PLAINTEXT_ONLY = {
    "imap": scripted(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] plain only\r\n",
                     {b"P1 CAPABILITY": b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nP1 OK\r\n"}),
    "pop3": scripted(b"+OK plain only\r\n",
                     {b"CAPA": b"+OK\r\nUSER\r\nTOP\r\n.\r\n"}),
    "smtp": scripted(b"220 plain.test ESMTP\r\n",
                     {b"EHLO": b"250-plain.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"}),
    "sieve": scripted(b'"IMPLEMENTATION" "fake"\r\n"SASL" "PLAIN"\r\nOK "ready"\r\n', {}),
}

# STARTTLS accepted, then nothing: the TLS handshake stalls.
STALL_AFTER_STARTTLS = scripted(
    b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n",
    {b"P2 STARTTLS": b"P2 OK begin TLS\r\n"})

# The STARTTLS reply comes with extra plaintext (command injection bait).
DATA_AFTER_STARTTLS = scripted(
    b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n",
    {b"P2 STARTTLS": b"P2 OK begin TLS\r\n* OK injected\r\n"})

GARBAGE_GREETING = scripted(b"\x00\xff\x1b[2J\x80garbage \"quoted\" \\ \r\n", {})

LONG_GREETING = scripted(b"* OK " + b"x" * 5000 + b"\r\n", {})


def trickle(conn: socket.socket, stop: threading.Event) -> None:
    """IMAP greeting, then an endless CAPABILITY reply: one untagged line
    every 0.1 s, each well within any per-line timeout."""
    conn.sendall(b"* OK hi\r\n")
    data = b""
    while b"\n" not in data and not stop.is_set():
        try:
            data += conn.recv(100)
        except socket.timeout:
            continue
    while not stop.is_set():
        conn.sendall(b"* NOISE still thinking\r\n")
        stop.wait(0.1)
