"""proxies - what the proxy deployment tests add to mailstack: a second
Dovecot on another loopback address (the backend behind a Dovecot proxy)
and HAProxy in front of Dovecot.

BackendDovecot: a mailstack Dovecot listening on `addr` (127.0.0.5) on the
same port numbers as the proxy in front of it, every listener plaintext, so
that the proxy passes each login to the port it came in on
(`proxy=y host=127.0.0.5 port=%a`). The proxy (127.0.0.1) reaches it over
loopback in plaintext, as inside a provider's network.

HAProxy: `haproxy -db` in front of one Dovecot. Per protocol two frontends
on 127.0.0.1: a plain TCP one (STARTTLS passes through to Dovecot) and one
that terminates TLS; both send PROXY protocol v2 to Dovecot listeners with
`haproxy = yes`, the TLS one with the SSL TLV (`send-proxy-v2-ssl`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Optional

import mailstack as ms

BACKEND_ADDR = "127.0.0.5"


@contextlib.contextmanager
def _ports_seen_on(addr: str):
    """Dovecot.start() waits for its ports on 127.0.0.1; a backend's are
    on another address."""
    original = ms.listening_ports
    ms.listening_ports = lambda a=addr: original(a)
    try:
        yield
    finally:
        ms.listening_ports = original


class BackendDovecot(ms.Dovecot):
    """A Dovecot on `addr` with the port numbers `ports` (the proxy's)."""

    def __init__(self, directory, cert, *, addr: str = BACKEND_ADDR,
                 ports: dict[str, int], **kw):
        super().__init__(directory, cert, **kw)
        self.addr = addr
        self.ports = dict(ports)

    def config_text(self) -> str:
        text = super().config_text()
        text = re.sub(r"^(\s*(?:listen|address) = )" + re.escape(ms.SERVER_ADDR) + "$",
                      lambda m: m.group(1) + self.addr, text, flags=re.M)
        # listeners plaintext: the proxy speaks plaintext to every port
        # (`ssl = no` spelled out: Dovecot's own imaps/pop3s listeners
        # of the same names have ssl = yes)
        return re.sub(r"^([ \t]+)ssl = yes$", r"\1ssl = no", text, flags=re.M)

    def start(self, timeout: float = 20) -> "BackendDovecot":
        with _ports_seen_on(self.addr):
            return super().start(timeout)


def add_backend(stack: ms.Stack, front: ms.Dovecot, **dovecot_kw) -> BackendDovecot:
    """Makes `stack`'s Dovecot (not started, no Postfix) a BackendDovecot
    behind `front`: the stack's stop() stops it."""
    old = stack.dovecot
    stack.dovecot = BackendDovecot(old.dir, old.cert, ports=front.ports, **dovecot_kw)
    return stack.dovecot


def proxy_fields(forward_tls: bool = False) -> str:
    """The passdb fields that make a Dovecot proxy pass the login on."""
    fields = f"proxy=y host={BACKEND_ADDR} port=%a"
    if forward_tls:
        fields += " forward_tls=%c"   # 2.3: %c is "TLS" for a TLS connection
    return fields


def imap_to(addr: str, port: int, source: str, **kw) -> ms.ImapClient:
    return ms.ImapClient(host=addr, port=port, source_address=source, **kw)


# ---- HAProxy ----------------------------------------------------------------

HAPROXY_PORTS = ("imap", "imaps", "pop3", "pop3s")


def haproxy_listeners(ports: dict[str, int]) -> str:
    """Dovecot config: listeners with `haproxy = yes` on 127.0.0.1 at
    ports["imap-haproxy"], ["pop3-haproxy"]."""
    return f"""haproxy_trusted_networks = {ms.SERVER_ADDR}
service imap-login {{
  inet_listener imap-haproxy {{
    address = {ms.SERVER_ADDR}
    port = {ports['imap-haproxy']}
    haproxy = yes
  }}
}}
service pop3-login {{
  inet_listener pop3-haproxy {{
    address = {ms.SERVER_ADDR}
    port = {ports['pop3-haproxy']}
    haproxy = yes
  }}
}}
"""


class HAProxy:
    """HAProxy on 127.0.0.1 in front of Dovecot's haproxy listeners.

    ports: imap (plain TCP: STARTTLS or plaintext pass through), imaps
    (TLS terminated here, cert `cert`), pop3, pop3s; each goes to the
    Dovecot listener of `backend_ports` with PROXY v2, the TLS ones with
    the SSL TLV."""

    def __init__(self, directory, cert, backend_ports: dict[str, int]):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = cert
        self.backend_ports = backend_ports
        self.ports = {p: ms.free_port() for p in HAPROXY_PORTS}
        self.conf = self.dir / "haproxy.cfg"
        self.pem = self.dir / "server.pem"
        self.logfile = self.dir / "haproxy.log"
        self.proc: Optional[subprocess.Popen] = None

    def config_text(self) -> str:
        a = ms.SERVER_ADDR
        b = self.backend_ports
        out = ["global", "  maxconn 100", "defaults", "  mode tcp",
               "  timeout connect 5s", "  timeout client 30s", "  timeout server 30s", ""]
        for proto in ("imap", "pop3"):
            dest = f"{a}:{b[proto + '-haproxy']}"
            out += [f"listen {proto}", f"  bind {a}:{self.ports[proto]}",
                    f"  server dovecot {dest} send-proxy-v2", "",
                    f"listen {proto}s", f"  bind {a}:{self.ports[proto + 's']} ssl crt {self.pem}",
                    f"  server dovecot {dest} send-proxy-v2-ssl", ""]
        return "\n".join(out)

    def start(self, timeout: float = 10) -> "HAProxy":
        self.pem.write_bytes(Path(self.cert.chain).read_bytes() + Path(self.cert.key).read_bytes())
        os.chmod(self.pem, 0o600)
        self.conf.write_text(self.config_text())
        ms.run(["haproxy", "-c", "-f", str(self.conf)], timeout=30)
        self._log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, preexec_fn=ms._set_pdeathsig)
        want = set(self.ports.values())
        ms.wait_for(lambda: self.proc.poll() is not None or want <= ms.listening_ports(),
                    timeout, what="haproxy listeners")
        if self.proc.poll() is not None:
            raise ms.HarnessError("haproxy exited: " + self.logfile.read_text(errors="replace"))
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        self._log.close()
