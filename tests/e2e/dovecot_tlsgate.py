"""dovecot_tlsgate - what the Dovecot passdb tests and benchmark share.

The passdb block that loads the module (build/dovecot-plugin/ for Debian's
Dovecot, build/dovecot-VERSION/ for the one $TLSGATE_DOVECOT names), a
tlsgate.conf + policy directory written below a test directory, and the
reading of tlsgate event lines from Dovecot's log.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Optional

import dovecot24

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def module_for(install: dovecot24.Install) -> Path:
    """The module built for `install` (dovecot-plugin/build.mk's folders):
    build/dovecot-plugin/ for the system's Dovecot, build/dovecot-VERSION/
    for another one."""
    sub = "dovecot-plugin" if install == dovecot24.SYSTEM else f"dovecot-{install.version}"
    return REPO / "build" / sub / "libauthdb_tlsgate.so"


# The module for the Dovecot the tests run against ($TLSGATE_DOVECOT).
MODULE = module_for(dovecot24.selected())

# Messages the tests configure, so that replies can be matched exactly.
MESSAGE = "TLS required for this mailbox: use port 993/995/465 or STARTTLS"


def passdb_block(conf: Path, extra: str = "") -> str:
    """The documented passdb block (docs/dovecot.md) for tlsgate.conf `conf`."""
    return f"""passdb {{
  driver = tlsgate
  args = {conf}
  skip = unauthenticated
{extra}}}
"""


class PolicyDir:
    """tlsgate.conf + policy.d/ below `directory`, trusted (root, 0644)."""

    def __init__(self, directory: Path, rules: str = "", *, message: str = MESSAGE,
                 failure: str = "tempfail", log_tls: bool = True,
                 policy_name: str = "policy.d"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.policy = self.dir / policy_name
        self.conf = self.dir / "tlsgate.conf"
        self.conf.write_text(
            f"policy = {self.policy}\n"
            f"message = \"{message}\"\n"
            f"failure = {failure}\n"
            f"log_tls = {'yes' if log_tls else 'no'}\n")
        os.chmod(self.conf, 0o644)
        if rules is not None and policy_name == "policy.d":
            self.policy.mkdir(exist_ok=True)
            os.chmod(self.policy, 0o755)
            self.write("main.conf", rules)

    def path(self, name: str) -> Path:
        return self.policy / name

    def write(self, name: str, text: str) -> Path:
        """Replaces policy.d/<name> atomically (new inode: always noticed)."""
        p = self.policy / name
        tmp = self.policy / ("." + name + ".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
        return p

    def remove(self, name: str) -> None:
        (self.policy / name).unlink()


EVENT_RE = re.compile(r"tlsgate: (service=\S+ .*)$", re.M)


def parse_event(text: str) -> dict[str, str]:
    """Fields of one event line body ("service=imap user=... ")."""
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', text):
        v = m.group(2)
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out[m.group(1)] = v
    return out


def events(log_text: str) -> list[dict[str, str]]:
    return [parse_event(m.group(1)) for m in EVENT_RE.finditer(log_text)]


def wait_event(server, since: int, timeout: float = 10.0, **want) -> dict[str, str]:
    """The first event after log mark `since` whose fields match `want`."""
    deadline = time.monotonic() + timeout
    while True:
        for ev in events(server.log(since)):
            if all(ev.get(k) == v for k, v in want.items()):
                return ev
        if time.monotonic() > deadline:
            raise AssertionError(f"no tlsgate event {want} in log:\n{server.log(since)[-3000:]}")
        time.sleep(0.05)


def no_event(server, since: int, **want) -> Optional[dict[str, str]]:
    for ev in events(server.log(since)):
        if all(ev.get(k) == v for k, v in want.items()):
            return ev
    return None


class pop3:
    """`with pop3(stack, mode) as c:` - mailstack's Pop3Client, closed after."""

    def __init__(self, stack, mode: str = "plain", **kw):
        self.client = stack.pop3(mode, **kw)

    def __enter__(self):
        return self.client

    def __exit__(self, *exc):
        try:
            self.client.close()
        except OSError:
            pass
