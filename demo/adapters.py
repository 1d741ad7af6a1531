"""adapters - how the demo wires tlsgate into its throwaway servers: the
tlsgate.conf it writes, the Dovecot passdb chain (docs/dovecot.md) and
tlsgate-policyd run in the foreground (docs/postfix.md).

Kept apart from the scenario so that the snippets the demo uses are easy to
compare with the documentation an admin copies from.
"""

from __future__ import annotations

import atexit
import ctypes
import signal
import subprocess
import threading
import time
from pathlib import Path

import dovecot24
import mailstack as ms

# The configured message; the demo checks that refused clients see it.
MESSAGE = "TLS required (tlsgate demo): use IMAPS, POP3S, SMTPS or STARTTLS"


# Where the Debian packages (and `make install PREFIX=/usr`) put the parts;
# `--installed` runs the demo with these instead of the build tree's.
INSTALLED = {
    "the tlsgate command": Path("/usr/bin/tlsgate"),
    "tlsgate-policyd": Path("/usr/sbin/tlsgate-policyd"),
    "the Dovecot passdb module": Path("/usr/lib/dovecot/modules/auth/libauthdb_tlsgate.so"),
}


def artifacts(build: Path | None) -> dict[str, Path]:
    """What the demo needs, by what it is; build None: the installed files."""
    if build is None:
        return dict(INSTALLED)
    return {
        "the tlsgate command": build / "tlsgate",
        "tlsgate-policyd": build / "tlsgate-policyd",
        "the Dovecot passdb module": dovecot_module(build),
    }


def dovecot_module(build: Path) -> Path:
    """The module built for the Dovecot the demo runs ($TLSGATE_DOVECOT or
    Debian's; dovecot-plugin/build.mk names the folders)."""
    inst = dovecot24.selected()
    sub = "dovecot-plugin" if inst == dovecot24.SYSTEM else f"dovecot-{inst.version}"
    return build / sub / "libauthdb_tlsgate.so"


def auth_modules(build: Path | None) -> list[Path]:
    """The modules Dovecot gets besides its own: none when tlsgate's is
    installed in Dovecot's module directory, where Dovecot loads it from."""
    return [] if build is None else [dovecot_module(build)]


def tlsgate_conf(policy_dir: Path, policyd_port: int) -> str:
    return f"""\
# tlsgate.conf of the demo (see tlsgate.conf(5))
policy  = {policy_dir}
message = "{MESSAGE}"
log_tls = yes
failure = tempfail

# tlsgate-policyd (run in the foreground by the demo: no pidfile)
listen  = inet:{ms.SERVER_ADDR}:{policyd_port}
user    = nobody
group   = nogroup
smtp_reply = 530 5.7.0
unauthenticated = dunno
"""


def dovecot_passdb(conf: Path) -> str:
    """The tlsgate passdb as docs/dovecot.md has it, after the real one
    (which the harness writes with result_success = continue-ok): it runs
    only once the password was verified. (For Dovecot 2.4 the harness
    writes it in 2.4's syntax: `passdb tlsgate { ... tlsgate_config = }`.)"""
    return f"""\
passdb {{
  driver = tlsgate
  args = {conf}
  skip = unauthenticated
}}
"""


def pid_alive(pid: int) -> bool:
    """Whether pid runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2] != "Z"


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: SIGTERM when the demo dies. Dropping privileges
    clears it, so tlsgate-policyd is still stopped explicitly."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


_running: "set[Policyd]" = set()


@atexit.register
def _stop_all() -> None:
    for p in list(_running):
        p.stop()


class Policyd:
    """tlsgate-policyd in the foreground (-f), its log in a file.

    It is stopped explicitly by stop() and, failing that, at exit."""

    def __init__(self, build: Path | None, conf: Path, log: Path):
        self.bin = artifacts(build)["tlsgate-policyd"]
        self.conf = conf
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.port = None

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self, timeout: float = 10) -> None:
        text = self.conf.read_text()
        for line in text.splitlines():
            if line.strip().startswith("listen"):
                self.port = int(line.rsplit(":", 1)[1])
        self.proc = subprocess.Popen([str(self.bin), "-c", str(self.conf), "-f"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        _running.add(self)
        self._copier = threading.Thread(target=self._copy_log, daemon=True)
        self._copier.start()
        try:
            ms.wait_for(lambda: self.proc.poll() is not None or
                        self.port in ms.listening_ports(), timeout,
                        what="tlsgate-policyd to listen")
        except TimeoutError:
            pass
        if self.proc.poll() is not None or self.port not in ms.listening_ports():
            self.stop()
            raise ms.HarnessError("tlsgate-policyd did not start:\n"
                                  + self.log.read_text(errors="replace")[-2000:])

    def _copy_log(self) -> None:
        """In the foreground the daemon logs to stderr without a time; give
        each line a syslog-style time stamp, as in /var/log/mail.log."""
        with open(self.log, "ab", buffering=0) as out:
            for line in self.proc.stdout:
                stamp = time.strftime("%b %d %H:%M:%S ").encode()
                out.write(stamp + line)

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._copier.join(5)
        self.proc.stdout.close()
        self.proc = None
        _running.discard(self)
