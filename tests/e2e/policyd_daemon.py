"""policyd_daemon - run a real build/tlsgate-policyd for the e2e tests.

    d = Policyd(tmp / "pd", POLICY_TEXT).start()     # -f, stderr -> d.logfile
    d.port                                            # inet:127.0.0.1:PORT
    d.events(since=mark)                              # parsed event lines
    d.write_policy(TEXT); d.signal(signal.SIGHUP)
    d.stop()

The daemon starts as root and drops to `nobody`, as in production; its
directory is made traversable so that `nobody` can read the policy.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import mailstack

REPO = Path(__file__).resolve().parent.parent.parent
# TLSGATE_POLICYD: another build of the daemon (e.g. with sanitizers).
POLICYD = Path(os.environ.get("TLSGATE_POLICYD",
                              Path(os.environ.get("TLSGATE_BUILD", REPO / "build")) / "tlsgate-policyd"))

_running: list["Policyd"] = []

_EVENT_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_event(line: str) -> Optional[dict]:
    """The fields of a `tlsgate: ` event line (values unescaped), or None."""
    i = line.find("tlsgate: service=")
    if i < 0:
        return None
    out = {}
    for key, value in _EVENT_FIELD.findall(line[i + len("tlsgate: "):]):
        if value.startswith('"'):
            value = re.sub(r'\\x([0-9a-fA-F]{2})|\\(["\\])',
                           lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2),
                           value[1:-1])
        out[key] = value
    return out


class Policyd:
    def __init__(self, directory, policy: str, *, port: Optional[int] = None,
                 conf_extra: str = "", user: str = "nobody"):
        self.dir = Path(directory).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        mailstack.make_traversable(self.dir)
        self.policy_dir = self.dir / "policy.d"
        self.policy_dir.mkdir(exist_ok=True)
        os.chmod(self.policy_dir, 0o755)
        self.policy_file = self.policy_dir / "main.conf"
        self.port = port or mailstack.free_port()
        self.logpath = self.dir / "policyd.log"
        self.conf = self.dir / "tlsgate.conf"
        self.conf.write_text(
            f"policy = {self.policy_dir}\n"
            f"user = {user}\n"
            f"listen = inet:{mailstack.SERVER_ADDR}:{self.port}\n"
            f'message = "TLS required: use port 465 or STARTTLS"\n'
            f"{conf_extra}")
        self.write_policy(policy)
        self.proc: Optional[subprocess.Popen] = None

    # ---- policy -------------------------------------------------------------
    def write_policy(self, text: str) -> None:
        """Replaces the policy file atomically (a new inode: seen by the poll)."""
        tmp = self.policy_dir / ".main.conf.tmp"
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.policy_file)

    # ---- process ------------------------------------------------------------
    def start(self, timeout: float = 10) -> "Policyd":
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([str(POLICYD), "-c", str(self.conf), "-f"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        _running.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise mailstack.HarnessError(
                    f"tlsgate-policyd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection((mailstack.SERVER_ADDR, self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise mailstack.HarnessError(f"tlsgate-policyd did not listen:\n{self.log()}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        if self in _running:
            _running.remove(self)
        return rc

    # ---- log ----------------------------------------------------------------
    def log(self, since: int = 0) -> str:
        try:
            with open(self.logpath, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark(self) -> int:
        try:
            return self.logpath.stat().st_size
        except FileNotFoundError:
            return 0

    def wait_log(self, regex: str, since: int = 0, timeout: float = 10) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(regex, self.log(since), re.M)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"policyd log lacks /{regex}/:\n{self.log(since)}")
            time.sleep(0.02)

    def events(self, since: int = 0) -> list[dict]:
        return [e for e in map(parse_event, self.log(since).splitlines()) if e]

    def wait_events(self, count: int, since: int = 0, timeout: float = 10,
                    **match) -> list[dict]:
        """Waits until `count` events with the given field values are logged."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events(since)
                     if all(e.get(k) == v for k, v in match.items())]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"wanted {count} events {match}, log:\n{self.log(since)}")
            time.sleep(0.02)

    # ---- protocol -----------------------------------------------------------
    def ask(self, attrs: dict, timeout: float = 5) -> str:
        """One request over a fresh connection; returns the action."""
        body = "".join(f"{k}={v}\n" for k, v in attrs.items()) + "\n"
        with socket.create_connection((mailstack.SERVER_ADDR, self.port), timeout) as s:
            s.sendall(body.encode())
            data = b""
            while not data.endswith(b"\n\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.decode()


def _stop_all() -> None:
    for d in list(_running):
        try:
            d.stop(timeout=3)
        except Exception:
            pass


atexit.register(_stop_all)
