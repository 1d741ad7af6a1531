"""A throwaway tlsgate-policyd for the hostile-input and fault tests.

PolicyDaemon writes a configuration and a policy directory under a fresh
directory in /tmp (mode 0755, so that the daemon, which drops to `nobody`
when started as root, can read it), starts build/tlsgate-policyd in the
foreground on a free loopback port with its log in a file, and offers:

  ask(user, tls=..., ...)      one request on a new connection -> action line
  request_bytes(...)           the bytes of one policy request
  check_healthy()              answers right for a reject and a TLS case,
                               process alive, VmRSS within bounds
  rss_kb()                     VmRSS of the daemon from /proc
  log_text(since) / mark()     the daemon's stderr log
  reload() / kill() / restart()

The binary is $TLSGATE_BUILD/tlsgate-policyd (default: build/ at the top
of the repository), so that `make test-sanitize` runs these tests against
the ASan/UBSan build.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent.parent
BUILD = Path(os.environ.get("TLSGATE_BUILD", REPO / "build"))
POLICYD = BUILD / "tlsgate-policyd"
TLSGATE = BUILD / "tlsgate"
SANITIZED = bool(os.environ.get("TLSGATE_SANITIZE"))
HOST = "127.0.0.1"

# The policy every daemon starts with: plaintext is refused for
# @example.com, legacy@example.com may use plaintext from 192.0.2.10.
POLICY_A = (
    "require @example.com\n"
    "exempt legacy@example.com 192.0.2.10\n"
    "audit *\n"
)
REJECT = b"action=530 5.7.0 "
DUNNO = b"action=DUNNO"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def request_bytes(user: str = "alice@example.com", tls: str = "",
                  client: str = "192.0.2.7", instance: str = "1.1",
                  eol: bytes = b"\n", extra: bytes = b"") -> bytes:
    lines = [
        b"request=smtpd_access_policy",
        b"protocol_state=RCPT",
        b"protocol_name=ESMTP",
        b"client_address=" + client.encode(),
        b"instance=" + instance.encode(),
        b"sasl_method=PLAIN",
        b"sasl_username=" + (user.encode("utf-8", "surrogateescape")
                             if isinstance(user, str) else user),
        b"encryption_protocol=" + tls.encode(),
    ]
    return eol.join(lines) + eol + extra + eol


def read_reply(sock: socket.socket, timeout: float = 10) -> bytes:
    """Reads one reply (through its empty line); b"" if the peer closed."""
    sock.settimeout(timeout)
    data = b""
    while b"\n\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


def wait_closed(sock: socket.socket, timeout: float = 10) -> bool:
    """True when the daemon closes the connection (EOF or reset) within
    timeout, without having sent anything."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    assert data == b"", f"unexpected reply {data[:200]!r}"
    return True


class PolicyDaemon:
    def __init__(self, name: str = "hostile", policy: str = POLICY_A,
                 extra_config: str = "", idle_timeout: int = 3,
                 max_connections: int = 3000):
        self.dir = Path(tempfile.mkdtemp(prefix=f"tg-{name}-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.policy_dir = self.dir / "policy.d"
        self.policy_dir.mkdir(mode=0o755)
        self.write_policy("a.conf", policy)
        self.port = free_port()
        self.config = self.dir / "tlsgate.conf"
        self.config.write_text(
            f"policy = {self.policy_dir}\n"
            f"listen = inet:{HOST}:{self.port}\n"
            "user = nobody\n"
            f"idle_timeout = {idle_timeout}\n"
            f"max_connections = {max_connections}\n"
            # every test client is one peer (127.0.0.2): the capacity tests
            # need all of max_connections from it
            f"max_connections_per_peer = {max_connections}\n" + extra_config)
        os.chmod(self.config, 0o644)
        self.logfile = self.dir / "policyd.log"
        self.proc: Optional[subprocess.Popen] = None
        self.rss_base = 0
        # raised by a test that made the daemon hold many connections at
        # once: an allocator may keep freed memory for the next such peak
        self.rss_allow_kb = 0

    # ---- files --------------------------------------------------------
    def write_policy(self, name: str, text, mode: int = 0o644) -> Path:
        """Writes a policy file atomically (temp file + rename)."""
        path = self.policy_dir / name
        tmp = self.dir / (name + ".tmp")
        data = text.encode() if isinstance(text, str) else text
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        return path

    # ---- process ------------------------------------------------------
    def start(self, preexec=None) -> "PolicyDaemon":
        log = open(self.logfile, "ab")
        env = dict(os.environ)
        # A small quarantine keeps an ASan build's RSS a measure of ours.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            env.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1"),
            "quarantine_size_mb=8"]))
        self.proc = subprocess.Popen(
            [str(POLICYD), "-c", str(self.config), "-f"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            preexec_fn=preexec)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tlsgate-policyd exited {self.proc.returncode}:\n"
                                   + self.log_text())
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("tlsgate-policyd did not listen:\n" + self.log_text())
        self.check_answers()
        self.rss_base = self.rss_kb()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reload(self) -> None:
        os.kill(self.pid, signal.SIGHUP)

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        """SIGTERM; the daemon must stop within its grace time, cleanly
        (exit 0: no sanitizer report)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("tlsgate-policyd did not stop on SIGTERM")
            assert rc == 0, f"tlsgate-policyd exited {rc}:\n{self.log_text()[-3000:]}"

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            if self.alive():
                self.proc.kill()
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- observing ----------------------------------------------------
    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def mark(self) -> int:
        return self.logfile.stat().st_size if self.logfile.exists() else 0

    def log_text(self, since: int = 0) -> str:
        with open(self.logfile, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def log_bytes(self, since: int = 0) -> bytes:
        with open(self.logfile, "rb") as f:
            f.seek(since)
            return f.read()

    def wait_log(self, regex: str, since: int = 0, timeout: float = 10) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(regex, self.log_text(since))
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matching {regex!r}; log:\n"
                                     + self.log_text(since)[-3000:])
            time.sleep(0.05)

    # ---- asking ---------------------------------------------------------
    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection((HOST, self.port), timeout=timeout)

    def ask(self, user: str = "alice@example.com", tls: str = "", **kw) -> bytes:
        with self.connect() as s:
            s.sendall(request_bytes(user, tls, **kw))
            reply = read_reply(s)
        assert reply.endswith(b"\n\n") and reply.count(b"\n\n") == 1, reply
        return reply

    def check_answers(self) -> None:
        """The decisions of POLICY_A, each on a new connection, answered in
        time."""
        start = time.monotonic()
        assert self.ask("alice@example.com").startswith(REJECT)
        assert self.ask("alice@example.com", tls="TLSv1.3") == DUNNO + b"\n\n"
        assert self.ask("legacy@example.com", client="192.0.2.10") == DUNNO + b"\n\n"
        assert time.monotonic() - start < 5, "answers took over 5 s"

    def check_healthy(self, rss_slack_kb: int = 0) -> None:
        """Still alive, still right, memory back within bounds."""
        assert self.alive(), "tlsgate-policyd died:\n" + self.log_text()[-3000:]
        self.check_answers()
        slack = rss_slack_kb or (48 * 1024 if SANITIZED else 16 * 1024)
        limit = self.rss_base + max(slack, self.rss_allow_kb)
        rss = self.rss_kb()
        assert rss <= limit, f"VmRSS {rss} kB over {limit} kB (start {self.rss_base} kB)"
